"""Reading every supported format, and every way a file can be wrong."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import string
import zipfile
from collections.abc import Callable
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkformer import io as bio
from bulkformer.errors import InputError
from bulkformer.io import RawTable, read_sample_sheet, read_table

GENES = ["ENSG00000141510", "TP53", "actb", "ENSG00000111640.15"]
SAMPLES = ["S1", "sample 2", "GSM000003"]


@pytest.fixture
def frame() -> pd.DataFrame:
    """Genes × samples with whole and fractional values; names with spaces kept exactly."""
    values = np.array([[0, 1.5, 2], [3, 4, 5.25], [6, 7, 8], [9, 10, 11000]], dtype=np.float32)
    return pd.DataFrame(values, index=pd.Index(GENES, name="gene_id"), columns=SAMPLES)


def assert_same(raw: RawTable, frame: pd.DataFrame) -> None:
    assert raw.row_labels == tuple(frame.index)
    assert raw.column_labels == tuple(frame.columns)
    np.testing.assert_array_equal(raw.values, frame.to_numpy(dtype=np.float32))


WRITERS = {
    "csv": lambda f, p: f.to_csv(p),
    "csv.gz": lambda f, p: f.to_csv(p, compression="gzip"),
    "tsv": lambda f, p: f.to_csv(p, sep="\t"),
    "tsv.gz": lambda f, p: f.to_csv(p, sep="\t", compression="gzip"),
    "txt": lambda f, p: f.to_csv(p, sep="\t"),
    "xlsx": lambda f, p: f.to_excel(p),
    "xlsx.gz": lambda f, p: gzipped(f.to_excel, p),
    "parquet": lambda f, p: f.to_parquet(p),
    "parquet.gz": lambda f, p: gzipped(f.to_parquet, p),
}


def gzipped(write: Callable[[Path], object], path: Path) -> None:
    """Write with ``write`` to a plain file, then gzip it to ``path``."""
    plain = path.with_suffix("")
    write(plain)
    path.write_bytes(gzip.compress(plain.read_bytes()))


def write_h5ad(adata: anndata.AnnData, path: Path) -> None:
    """As anndata writes it for a user on pandas 3, who must opt in to its string arrays."""
    with contextlib.ExitStack() as stack:
        if hasattr(anndata.settings, "allow_write_nullable_strings"):  # anndata >= 0.11
            stack.enter_context(anndata.settings.override(allow_write_nullable_strings=True))
        adata.write_h5ad(path)


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_round_trip(suffix: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / f"table.{suffix}"
    WRITERS[suffix](frame, path)
    raw = read_table(path)
    assert_same(raw, frame)
    assert raw.layout is None  # plain matrices leave the orientation open
    # the web app passes bytes plus the upload's name: same result
    assert_same(read_table(path.read_bytes(), filename=path.name), frame)


@pytest.mark.parametrize(("compressed", "sparse"), [(False, False), (True, False), (False, True)])
def test_round_trip_h5ad(frame: pd.DataFrame, tmp_path: Path, compressed: bool, sparse: bool) -> None:
    matrix = scipy.sparse.csr_matrix(frame.T.to_numpy()) if sparse else frame.T.to_numpy()
    adata = anndata.AnnData(matrix, obs=pd.DataFrame(index=SAMPLES), var=pd.DataFrame(index=GENES))
    path = tmp_path / "table.h5ad"
    write_h5ad(adata, path)
    if compressed:
        path = tmp_path / "table.h5ad.gz"
        path.write_bytes(gzip.compress((tmp_path / "table.h5ad").read_bytes()))
    raw = read_table(path)
    assert_same(raw, frame.T)
    assert raw.layout is not None and raw.layout.value == "genes_in_columns"


def test_h5ad_prefers_counts_layer(frame: pd.DataFrame, tmp_path: Path) -> None:
    adata = anndata.AnnData(np.log1p(frame.T.to_numpy()), obs=pd.DataFrame(index=SAMPLES),
                            var=pd.DataFrame(index=GENES))
    adata.layers["counts"] = frame.T.to_numpy()
    write_h5ad(adata, tmp_path / "a.h5ad")
    raw = read_table(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(raw.values, frame.T.to_numpy())
    assert raw.value_hint is not None and raw.value_hint.value == "counts"


def test_featurecounts() -> None:
    text = ("# Program:featureCounts v2.0.6; Command:\"featureCounts\" -a genes.gtf\n"
            "Geneid\tChr\tStart\tEnd\tStrand\tLength\t/data/S1.sorted.bam\t/data/S2.sorted.bam\n"
            "ENSG00000141510.17\tchr17;chr17\t7661779;7668000\t7662000;7687538\t-;-\t2579\t10\t20\n"
            "ENSG00000075624.17\tchr7\t5527148\t5530601\t-\t1812\t0\t5\n")
    raw = read_table(text.encode(), filename="counts.txt")
    assert raw.source_format == "featurecounts"
    assert raw.column_labels == ("/data/S1.sorted.bam", "/data/S2.sorted.bam")
    np.testing.assert_array_equal(raw.row_lengths, [2579, 1812])
    np.testing.assert_array_equal(raw.values, [[10, 20], [0, 5]])
    assert raw.layout.value == "genes_in_rows" and raw.value_hint.value == "counts"


def test_rsem_and_salmon(tmp_path: Path) -> None:
    rsem = ("gene_id\ttranscript_id(s)\tlength\teffective_length\texpected_count\tTPM\tFPKM\n"
            "ENSG00000141510.17\tENST1,ENST2\t2500.50\t2300.5\t12.50\t3.10\t2.00\n"
            "ENSG00000075624.17\tENST3\t1500.00\t1300.0\t100.00\t50.00\t40.00\n")
    raw = read_table(rsem.encode(), filename="patient7.genes.results")
    assert (raw.source_format, raw.column_labels) == ("rsem", ("patient7",))
    np.testing.assert_array_equal(raw.values[:, 0], [12.5, 100])
    np.testing.assert_array_equal(raw.row_lengths, [2500.5, 1500])

    salmon = ("Name\tLength\tEffectiveLength\tTPM\tNumReads\n"
              "ENSG00000141510.17\t2500\t2300\t3.1\t12.5\n"
              "ENSG00000075624.17\t1500\t1300\t50\t100\n")
    folder = tmp_path / "patient8"
    folder.mkdir()
    (folder / "quant.genes.sf").write_text(salmon)
    raw = read_table(folder / "quant.genes.sf")
    assert (raw.source_format, raw.column_labels) == ("salmon", ("patient8",))
    np.testing.assert_array_equal(raw.values[:, 0], [12.5, 100])
    np.testing.assert_array_equal(raw.row_lengths, [2500, 1500])

    isoforms = rsem.replace("gene_id\ttranscript_id(s)", "transcript_id\tgene_id")
    with pytest.raises(InputError, match="isoform"):
        read_table(isoforms.encode(), filename="x.isoforms.results")


def test_text_dialects() -> None:
    # R's write.table: no header cell above the row names
    raw = read_table(b"S1\tS2\nTP53\t1\t2\nACTB\t3\t4\n", filename="r.txt")
    assert raw.row_labels == ("TP53", "ACTB") and raw.column_labels == ("S1", "S2")
    # European Excel: semicolons and decimal commas
    raw = read_table(b"gene;S1;S2\nTP53;1,5;2\nACTB;3;4,25\n", filename="eu.csv")
    np.testing.assert_array_equal(raw.values, [[1.5, 2], [3, 4.25]])
    # Excel "Unicode text": UTF-16 with a byte-order mark
    raw = read_table("gene\tS1\nTP53\t1.5\n".encode("utf-16"), filename="u.txt")
    assert raw.row_labels == ("TP53",) and raw.values[0, 0] == 1.5
    # Latin-1 sample names, a UTF-8 BOM, and quoted names with the delimiter inside
    latin = read_table("gene,Sämple\nTP53,1\n".encode("latin-1"), filename="l.csv")
    assert latin.column_labels == ("Sämple",)
    raw = read_table(b'\xef\xbb\xbfgene,"a, b"\nTP53,1\n', filename="b.csv")
    assert raw.row_labels == ("TP53",) and raw.column_labels == ("a, b",)


def test_text_columns_are_set_aside() -> None:
    raw = read_table(b"gene_id,gene_name,length,S1,S2\nENSG00000141510,TP53,2500,1,2\n"
                     b"ENSG00000075624,ACTB,1800,3,4\n", filename="t.csv")
    assert raw.column_labels == ("S1", "S2")
    assert raw.ignored_columns == ("gene_name", "length")
    np.testing.assert_array_equal(raw.row_lengths, [2500, 1800])


def test_wide_table_with_long_header() -> None:
    """Samples as rows, 20,000 genes as columns: the header alone is longer than the
    first block the sniffer reads."""
    genes = [f"ENSG{i:011d}" for i in range(20000)]
    lines = ["sample," + ",".join(genes)] + [f"S{j}," + ",".join(["1"] * 20000) for j in range(3)]
    raw = read_table("\n".join(lines).encode(), filename="wide.csv")
    assert raw.values.shape == (3, 20000) and raw.column_labels[-1] == genes[-1]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (b"# only a comment\n", "only comment"),
    (b"gene,S1,S2\n", "no data rows"),
    (b"genes\nTP53\nACTB\n", "single column"),
    (b"gene,S1\nTP53,1\nACTB,abc\nGAPDH,3\n",
     r"non-numeric value 'abc' in line 3 \(row 'ACTB'\), column 'S1'"),
    (b"gene,S1\nTP53,1\nACTB,\n", r"empty / NA cell in line 3 \(row 'ACTB'\), column 'S1'"),
    (b"gene,S1\nTP53,NA\nACTB,1\n", r"empty / NA cell in line 2 \(row 'TP53'\)"),
    (b"gene,S1\nTP53,1\nACTB,inf\n", "infinite value"),
    (b"gene,S1,S2\nTP53,1,2\nACTB,3\n", "2 fields where the header has 3"),
    (b"gene,note\nTP53,high\nACTB,low\n", "no numeric columns"),
    (b"gene,S1,\nTP53,1,2\n", "column 3 has values but no name"),
    (b"\x00\x01\x02\x03binary data", "is named like a text table but is a binary file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old excel", "legacy Excel"),
    (gzip.compress(gzip.compress(b"gene,S1\nTP53,1\n")), "compressed twice"),
])
def test_bad_text_files(content: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        read_table(content, filename="upload.csv")
    assert err.value.hint


def test_binary_file_renamed(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame.to_excel(tmp_path / "t.xlsx")
    (tmp_path / "t.csv").write_bytes((tmp_path / "t.xlsx").read_bytes())
    with pytest.raises(InputError, match="named like a text table but is an Excel workbook"):
        read_table(tmp_path / "t.csv")
    with pytest.raises(InputError, match="zip archive"):
        read_table((tmp_path / "t.xlsx").read_bytes(), filename="t.zip")
    whole = gzip.compress(b"gene,S1\n" + b"".join(b"G%d,%d\n" % (i, i) for i in range(5000)))
    with pytest.raises(InputError, match="damaged"):
        read_table(whole[: len(whole) // 2], filename="cut.csv.gz")


def test_size_limit(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    frame.to_csv(path)
    with pytest.raises(InputError, match="larger than the 100 bytes limit"):
        read_table(path, max_bytes=100)
    with pytest.raises(InputError, match="larger than the 100 bytes limit"):
        read_table(path.read_bytes(), filename="t.csv", max_bytes=100)
    bomb = gzip.compress(b"gene,S1\n" + b"TP53,1\n" * 200_000)  # 1.4 MB from ~3 kB
    with pytest.raises(InputError, match=r"decompresses to more than the 97.7 KiB limit"):
        read_table(bomb, filename="bomb.csv.gz", max_bytes=100_000)
    assert read_table(path, max_bytes=path.stat().st_size).values.shape == (4, 3)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- sample sheets


def test_sample_sheet_finds_id_column(tmp_path: Path) -> None:
    sheet = pd.DataFrame({"patient": ["p1", "p2", "p3", "p4"],
                          "library": ["S1", "sample 2", "X", "GSM000003"],
                          "age": ["61", "", "70", "55"], "group": ["a", "b", "a", "b"]})
    sheet.to_csv(tmp_path / "s.csv", index=False)
    result = read_sample_sheet(tmp_path / "s.csv", sample_ids=[*SAMPLES, "S4"])
    assert result.id_column.value == "library"
    assert list(result.table.index) == ["S1", "sample 2", "X", "GSM000003"]
    assert result.table["age"].dtype.kind == "f" and np.isnan(result.table.loc["sample 2", "age"])
    assert result.missing == ("S4",) and result.unused == ("X",)

    sheet.to_excel(tmp_path / "s.xlsx", index=False)
    chosen = read_sample_sheet((tmp_path / "s.xlsx").read_bytes(), filename="s.xlsx",
                               sample_ids=SAMPLES, id_column="patient")
    assert chosen.id_column.value == "patient" and chosen.table.index[0] == "p1"
    assert set(chosen.missing) == set(SAMPLES)


def test_sample_sheet_errors() -> None:
    with pytest.raises(InputError, match=r"No column of .* matches"):
        read_sample_sheet(b"id,group\na,x\nb,y\n", filename="s.csv", sample_ids=["S1", "S2"])
    with pytest.raises(InputError, match="more than once"):
        read_sample_sheet(b"id,group\nS1,x\nS1,y\n", filename="s.csv", sample_ids=["S1"])
    with pytest.raises(InputError, match="has no column 'batch'"):
        read_sample_sheet(b"id,group\nS1,x\n", filename="s.csv", id_column="batch")


# --------------------------------------------------------------------------- fuzzing

CELL = st.one_of(
    st.integers(-5, 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.ascii_letters + string.digits + " ._-\"'#;\t,", max_size=6),
    st.sampled_from(["", "NA", "nan", "ENSG00000141510.3", "TP53", "Actb", "1e400", "-0"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=5), min_size=0, max_size=6),
       delimiter=st.sampled_from([",", "\t", ";"]), suffix=st.sampled_from(["csv", "tsv", "txt.gz"]))
def test_random_text_only_raises_input_error(rows: list[list[str]], delimiter: str, suffix: str) -> None:
    content = "\n".join(delimiter.join(row) for row in rows).encode()
    if suffix.endswith(".gz"):
        content = gzip.compress(content)
    try:
        raw = read_table(content, filename=f"fuzz.{suffix}")
    except InputError:
        return
    assert raw.values.dtype == np.float32 and np.isfinite(raw.values).all()
    assert raw.values.shape == (len(raw.row_labels), len(raw.column_labels))


@settings(max_examples=30, deadline=None)
@given(content=st.binary(max_size=300))
def test_random_bytes_only_raise_input_error(content: bytes) -> None:
    for name in ("x.csv", "x.xlsx", "x.parquet", "x.h5ad"):
        with contextlib.suppress(InputError):
            read_table(content, filename=name)


def test_sample_sheet_from_frame_skips_rows_without_id() -> None:
    frame = pd.DataFrame({"group": ["a", "b", "c"]}, index=pd.Index(["S1", "", "sample 2"], name="id"))
    result = read_sample_sheet(frame, sample_ids=SAMPLES)
    assert result.id_column.value == "id" and list(result.table.index) == ["S1", "sample 2"]
    assert result.missing == ("GSM000003",) and result.unused == ()


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=0, max_size=5),
       delimiter=st.sampled_from([",", "\t"]), id_column=st.sampled_from([None, "id"]))
def test_random_sample_sheets_only_raise_input_error(rows: list[list[str]], delimiter: str,
                                                     id_column: str | None) -> None:
    content = "\n".join(delimiter.join(row) for row in rows).encode()
    try:
        sheet = read_sample_sheet(content, filename="sheet.txt", sample_ids=SAMPLES, id_column=id_column)
    except InputError:
        return
    assert sheet.table.index.is_unique


# --------------------------------------------------------------------------- damaged containers


def _xlsx_with_shared_strings(rows_xml: str, shared: list[str]) -> bytes:
    """A minimal workbook written by hand, whose cells point into a shared-string table
    (openpyxl writes inline strings, so it cannot make the damaged kind)."""
    main = "http://schemas.openxmlformats.org"
    rel = f"{main}/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml":
            f'<Types xmlns="{main}/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        "_rels/.rels":
            f'<Relationships xmlns="{main}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml":
            f'<workbook xmlns="{main}/spreadsheetml/2006/main" xmlns:r="{rel}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            f'<Relationships xmlns="{main}/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        "xl/sharedStrings.xml":
            f'<sst xmlns="{main}/spreadsheetml/2006/main">'
            + "".join(f"<si><t>{s}</t></si>" for s in shared) + "</sst>",
        "xl/worksheets/sheet1.xml":
            f'<worksheet xmlns="{main}/spreadsheetml/2006/main"><sheetData>{rows_xml}</sheetData></worksheet>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


SHEET_ROWS = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
              '<row r="2"><c r="A2" t="s"><v>{index}</v></c><c r="B2"><v>5</v></c></row>')


def test_xlsx_with_damaged_sheet(frame: pd.DataFrame) -> None:
    good = _xlsx_with_shared_strings(SHEET_ROWS.format(index=2), ["gene", "S1", "TP53"])
    raw = read_table(good, filename="t.xlsx")  # the hand-made workbook itself is fine
    assert raw.row_labels == ("TP53",) and raw.values.tolist() == [[5.0]]

    bad_index = _xlsx_with_shared_strings(SHEET_ROWS.format(index=99), ["gene", "S1", "TP53"])
    with pytest.raises(InputError, match="damaged Excel workbook: its sheet cannot be read") as err:
        read_table(bad_index, filename="t.xlsx")
    assert "save it again" in err.value.hint

    buffer = io.BytesIO()
    frame.to_excel(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    cut = io.BytesIO()
    with zipfile.ZipFile(cut, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info, data[: len(data) // 2] if info.filename.endswith("sheet1.xml") else data)
    with pytest.raises(InputError, match="damaged Excel workbook"):
        read_table(cut.getvalue(), filename="t.xlsx")


def _parquet_bytes(table: pa.Table, pandas_metadata: bytes | None = None) -> bytes:
    metadata = dict(table.schema.metadata or {})
    if pandas_metadata is not None:
        metadata[b"pandas"] = pandas_metadata
    out = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), out)
    return out.getvalue()


@pytest.mark.parametrize(("meta", "columns"), [
    (b"{index_columns: [", None),            # not JSON
    (b"[1, 2]", None),                       # JSON, but a list
    (None, [0]),                             # an integer where a column name belongs
    (None, 3),                               # not a list at all
    (None, ["no such column"]),
])
def test_parquet_with_damaged_pandas_metadata(frame: pd.DataFrame, meta: bytes | None,
                                              columns: object) -> None:
    table = pa.Table.from_pandas(frame)
    if meta is None:
        meta = json.dumps({**json.loads(table.schema.metadata[b"pandas"]), "index_columns": columns}).encode()
    with pytest.raises(InputError, match="damaged pandas metadata") as err:
        read_table(_parquet_bytes(table, meta), filename="t.parquet")
    assert "to_parquet" in err.value.hint


def test_parquet_with_nested_columns() -> None:
    genes = pa.array(["TP53", "ACTB"])
    as_lists = pa.table({"gene": pa.array([["TP53"], ["ACTB"]]), "S1": [1.0, 2.0]})
    meta = json.dumps({"index_columns": ["gene"]}).encode()
    with pytest.raises(InputError, match=r"ID column holds list<element: string>"):
        read_table(_parquet_bytes(as_lists, meta), filename="t.parquet")
    for length in (pa.array([[2500], [1800]]), pa.array([{"bp": 2500}, {"bp": 1800}])):
        table = pa.table({"gene": genes, "length": length, "S1": [1.0, 2.0]})
        with pytest.raises(InputError, match="column 'length' holds .*not one gene length per row"):
            read_table(_parquet_bytes(table), filename="t.parquet")


def test_parquet_null_sample_name() -> None:
    from bulkformer.genes import orient

    table = pa.table({"sample": pa.array(["S1", None]), "TP53": [1.0, 2.0], "ACTB": [3.0, 4.0]})
    raw = read_table(_parquet_bytes(table), filename="t.parquet")
    assert raw.row_labels == ("S1", "")  # a missing name is an empty one
    with pytest.raises(InputError, match="A sample has no name"):
        orient(raw, orientation="genes_in_columns")


def test_damaged_utf16_text() -> None:
    content = "gene\tS1\n".encode("utf-16") + "TP53\t1\n".encode("utf-16-le") * 20000 + b"\xff"
    with pytest.raises(InputError, match="not readable utf-16 text"):
        read_table(content, filename="u.txt")


# --------------------------------------------------------------------------- cell budget


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> int:
    """A budget of 10,000 cells, set the way a server administrator would."""
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "10_000")
    return 10_000


def test_budget_is_configurable(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    assert bio.max_cells() == budget
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "not a number")
    assert bio.max_cells() == bio.DEFAULT_MAX_CELLS
    monkeypatch.delenv("BULKFORMER_MAX_CELLS")
    assert bio.max_cells() == bio.DEFAULT_MAX_CELLS


def test_gzip_text_over_budget_is_refused_before_parsing(budget: int) -> None:
    # 1,000 lines × 2 columns + labels: 2,000 + 32 × 1,002 = 34,064 cells > 10,000; 2 kB gzipped
    small = gzip.compress(b"gene,S1\n" + b"TP53,1\n" * 1000)
    with pytest.raises(InputError, match=r"1,00\d rows × 2 columns .*more than the 10,000") as err:
        read_table(small, filename="big.csv.gz")
    assert "Split the samples" in err.value.hint and "BULKFORMER_MAX_CELLS" in err.value.hint
    assert read_table(gzip.compress(b"gene,S1\n" + b"TP53,1\n" * 100), filename="ok.csv.gz").values.shape == (100, 1)


def test_parquet_over_budget_is_refused_from_its_footer(budget: int) -> None:
    table = pa.table({"gene": [f"G{i}" for i in range(2000)], "S1": np.zeros(2000)})
    with pytest.raises(InputError, match=r"2,000 rows × 2 columns"):
        read_table(_parquet_bytes(table), filename="t.parquet")


def test_h5ad_over_budget_is_refused_from_its_shape(budget: int, tmp_path: Path) -> None:
    # one non-zero value, but 20 × 5,000 = 100,000 cells once dense: refused unread
    matrix = scipy.sparse.csr_matrix(([1.0], ([0], [0])), shape=(20, 5000))
    names = {axis: pd.Index([f"{axis}{i}" for i in range(n)], dtype=object) for axis, n in (("S", 20), ("G", 5000))}
    anndata.AnnData(matrix, obs=pd.DataFrame(index=names["S"]),  # plain strings on pandas 2 and 3 alike
                    var=pd.DataFrame(index=names["G"])).write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(InputError, match=r"20 rows × 5,000 columns .*more than the 10,000"):
        read_table(tmp_path / "a.h5ad")


def test_xlsx_over_budget_is_refused_from_its_dimension(budget: int) -> None:
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in (1, 2))
    declared = _xlsx_with_shared_strings(rows, [])
    # the sheet claims A1:Z2000 (52,000 cells): refused before its rows are read
    source = zipfile.ZipFile(io.BytesIO(declared))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("sheet1.xml"):
                data = data.replace(b"<sheetData>", b'<dimension ref="A1:Z2000"/><sheetData>')
            target.writestr(info, data)
    with pytest.raises(InputError, match=r"2,000 rows × 26 columns"):
        read_table(out.getvalue(), filename="t.xlsx")
