"""Property: whatever file a user uploads, ``prepare`` either works or raises a BulkFormerError.

Random tables are written in every supported format (CSV/TSV/semicolon text, gzip, XLSX,
Parquet, AnnData, featureCounts, RSEM, salmon) with random labels, cells and options, and
then often damaged: cut short, bytes flipped, garbage appended, compressed twice, a workbook's
sheet XML truncated or its shared-string index pointed past the end, Parquet pandas metadata
replaced. ``scripts/fuzz_prepare.py`` runs the same strategy for ten thousand and more tables.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_io import write_h5ad  # as a user's anndata writes it, on pandas 2 and 3

from bulkformer import prepare
from bulkformer.errors import BulkFormerError

#: The model's genes in these tests: few, so that random tables can cover them all and reach
#: every stage of ``prepare`` (normalising, merging duplicates, aligning, QC).
GENE_ORDER = ("ENSG00000141510", "ENSG00000075624", "ENSG00000111640")
GENE_LABELS = ("TP53", "ACTB", "GAPDH", "ENSG00000141510.17", "ENSG00000075624", "gapdh",
               "ENSG00000111640|GAPDH", "Actb", "ENSMUSG00000029580", "NM_000546", "12345", "",
               " TP53 ", "1-Mar", "x" * 300, "ENST00000269305", "é", "None", "nan")
SAMPLE_LABELS = ("S1", "S2", "sample 3", "", " ", "GSM1", "NA", "1", "ñ", "a,b", '"q"', "S1")

CELLS = st.one_of(
    st.integers(0, 10**6), st.integers(-5, 10**18),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(0, 20), st.none(), st.booleans(),
    st.text(max_size=5), st.sampled_from(["", "NA", "1,5", "1e400", "-0", "0x10", " 3 "]),
)


@dataclass(frozen=True)
class Table:
    """A random table: labels of the first column, the header and the cells (any Python type)."""

    labels: list[Any]
    header: list[Any]
    cells: list[list[Any]]


@st.composite
def tables(draw: st.DrawFn) -> Table:
    if draw(st.booleans()):
        return draw(plausible_tables())
    n_rows, n_columns = draw(st.integers(0, 7)), draw(st.integers(0, 4))
    genes_in_rows = draw(st.booleans())
    label = st.one_of(st.sampled_from(GENE_LABELS if genes_in_rows else SAMPLE_LABELS),
                      st.text(max_size=6), st.none(), st.integers())
    name = st.one_of(st.sampled_from(SAMPLE_LABELS if genes_in_rows else GENE_LABELS),
                     st.text(max_size=6), st.sampled_from(["length", "gene_name", "_index", "Length"]))
    whole = draw(st.booleans())  # a table of plain counts reaches every stage more often
    cell = st.integers(0, 5000) if whole else CELLS
    return Table(draw(st.lists(label, min_size=n_rows, max_size=n_rows)),
                 draw(st.lists(name, min_size=n_columns + 1, max_size=n_columns + 1)),
                 draw(st.lists(st.lists(cell, min_size=n_columns, max_size=n_columns),
                               min_size=n_rows, max_size=n_rows)))


@st.composite
def plausible_tables(draw: st.DrawFn) -> Table:
    """A table much like a real one (the model's genes, unique sample names, counts or
    fractions), so that damage and options hit every later stage of ``prepare``."""
    genes = draw(st.permutations(list(GENE_LABELS[:3]))) + draw(st.lists(st.sampled_from(GENE_LABELS), max_size=3))
    samples = [f"S{i}" for i in range(draw(st.integers(1, 4)))]
    cell = draw(st.sampled_from([st.integers(0, 10**5), st.floats(0, 1e4), st.floats(0, 14), CELLS]))
    cells = draw(st.lists(st.lists(cell, min_size=len(samples), max_size=len(samples)),
                          min_size=len(genes), max_size=len(genes)))
    table = Table(genes, ["gene", *samples], cells)
    if draw(st.booleans()):  # samples as rows
        table = Table(samples, ["sample", *genes], [list(column) for column in zip(*cells)])
    return table


def _text(table: Table, sep: str) -> str:
    rows = [table.header, *([lab, *row] for lab, row in zip(table.labels, table.cells))]
    return "\n".join(sep.join("" if c is None else str(c) for c in row) for row in rows) + "\n"


def _frame(table: Table) -> pd.DataFrame:
    columns = [str(c) for c in table.header[1:]]
    return pd.DataFrame([list(r) for r in table.cells], columns=pd.Index(columns, dtype=object),
                        index=pd.Index([None if x is None else str(x) for x in table.labels], dtype=object))


def _excel_safe(value: Any) -> Any:
    """A cell openpyxl can write: control characters dropped, other types as text."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value if not isinstance(value, int) or abs(value) < 2**53 else str(value)
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _xlsx(table: Table) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in [table.header, *([lab, *row] for lab, row in zip(table.labels, table.cells))]:
        sheet.append([_excel_safe(c) for c in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _parquet(table: Table, variant: str) -> bytes:
    frame = _frame(table).astype(str) if variant == "text" else _frame(table)
    frame.columns = [f"{c}_{i}" for i, c in enumerate(frame.columns)]  # pyarrow needs unique names
    try:
        arrow = pa.Table.from_pandas(frame, preserve_index=True)
    except (pa.ArrowException, TypeError, ValueError):
        arrow = pa.Table.from_pandas(frame.astype(str), preserve_index=True)
    n = arrow.num_rows
    if variant == "list_index":
        arrow = arrow.set_column(arrow.num_columns - 1, arrow.schema.names[-1],
                                 pa.array([[str(i)] for i in range(n)]))
    elif variant == "struct_length":
        arrow = arrow.append_column("length", pa.array([{"a": i} for i in range(n)], pa.struct([("a", pa.int64())])))
    elif variant == "list_length":
        arrow = arrow.append_column("length", pa.array([[i] for i in range(n)], pa.list_(pa.int64())))
    metadata = dict(arrow.schema.metadata or {})
    pandas_meta = json.loads(metadata.get(b"pandas", b"{}"))
    replaced = {"not_json": b"{index_columns: [", "json_list": b"[1, 2]",
                "int_index": json.dumps({**pandas_meta, "index_columns": [0]}).encode(),
                "scalar_index": json.dumps({**pandas_meta, "index_columns": 7}).encode(),
                "missing_index": json.dumps({**pandas_meta, "index_columns": ["nope"]}).encode()}
    if variant in replaced:
        metadata[b"pandas"] = replaced[variant]
    elif variant == "no_metadata":
        metadata.pop(b"pandas", None)
    out = io.BytesIO()
    pq.write_table(arrow.replace_schema_metadata(metadata), out)
    return out.getvalue()


def _h5ad(table: Table, variant: str) -> bytes:
    import anndata
    import scipy.sparse

    frame = _frame(table).apply(pd.to_numeric, errors="coerce")
    values = frame.to_numpy(dtype=np.float32)
    matrix = scipy.sparse.csr_matrix(np.nan_to_num(values)) if variant == "sparse" else values
    obs = pd.DataFrame(index=pd.Index([str(x).replace("\0", "") for x in frame.index]))  # HDF5 text has no NUL
    var = pd.DataFrame(index=pd.Index([str(x).replace("\0", "") for x in frame.columns]))
    if obs.index.has_duplicates:
        obs.index = [f"{x}-{i}" for i, x in enumerate(obs.index)]
    if var.index.has_duplicates:
        var.index = [f"{x}-{i}" for i, x in enumerate(var.index)]
    adata = anndata.AnnData(matrix, obs=obs, var=var)
    if variant == "counts_layer":
        adata.layers["counts"] = np.rint(np.abs(np.nan_to_num(values)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.h5ad"
        write_h5ad(adata, path)
        return path.read_bytes()


def _tool_output(table: Table, tool: str) -> str:
    labels = ["" if x is None else str(x) for x in table.labels]
    first = [row[0] if row else "" for row in table.cells]
    if tool == "featurecounts":
        lines = ["# Program:featureCounts v2.0.6", "\t".join(["Geneid", "Chr", "Start", "End", "Strand", "Length",
                                                              *map(str, table.header[1:])])]
        lines += ["\t".join([lab, "chr1", "1", "100", "+", "100", *map(str, row)])
                  for lab, row in zip(labels, table.cells)]
    elif tool == "rsem":
        lines = ["gene_id\ttranscript_id(s)\tlength\teffective_length\texpected_count\tTPM\tFPKM"]
        lines += [f"{lab}\tT1\t{v}\t100\t{v}\t1\t1" for lab, v in zip(labels, first)]
    else:
        lines = ["Name\tLength\tEffectiveLength\tTPM\tNumReads"]
        lines += [f"{lab}\t{v}\t100\t1\t{v}" for lab, v in zip(labels, first)]
    return "\n".join(lines) + "\n"


FORMATS = ("csv", "tsv", "semicolon", "utf16", "latin1", "xlsx", "parquet", "h5ad",
           "featurecounts", "rsem", "salmon")
PARQUET_VARIANTS = ("plain", "text", "list_index", "struct_length", "list_length", "not_json", "json_list",
                    "int_index", "scalar_index", "missing_index", "no_metadata")
H5AD_VARIANTS = ("dense", "sparse", "counts_layer")
DAMAGE = ("none", "none", "none", "truncate", "flip", "append", "gzip", "gzip_twice", "xlsx_cut_sheet",
          "xlsx_bad_shared_string")


def encode(table: Table, fmt: str, variant: str) -> tuple[bytes, str]:
    """The table written as ``fmt`` (bytes, and the file name an upload would carry)."""
    if fmt in ("csv", "tsv", "semicolon", "utf16", "latin1"):
        sep = {"csv": ",", "semicolon": ";"}.get(fmt, "\t")
        text = _text(table, sep)
        data = text.encode("utf-16") if fmt == "utf16" else text.encode("latin-1", "replace") \
            if fmt == "latin1" else text.encode()
        return data, "table.csv" if fmt in ("csv", "semicolon") else "table.tsv"
    if fmt == "xlsx":
        return _xlsx(table), "table.xlsx"
    if fmt == "parquet":
        return _parquet(table, variant), "table.parquet"
    if fmt == "h5ad":
        return _h5ad(table, variant), "table.h5ad"
    name = {"featurecounts": "counts.txt", "rsem": "s1.genes.results", "salmon": "quant.genes.sf"}[fmt]
    return _tool_output(table, fmt).encode(), name


def _zip_members(data: bytes, change: Any) -> bytes:
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, change(info.filename, source.read(info.filename)))
    return out.getvalue()


def damage(data: bytes, name: str, how: str, where: float) -> tuple[bytes, str]:
    """``data`` damaged in one of the ways files get damaged (``where`` in [0, 1) picks a spot)."""
    spot = int(len(data) * where)
    if how == "truncate":
        return data[:spot], name
    if how == "flip":
        return data[:spot] + bytes([data[spot] ^ 0x5A]) + data[spot + 1:] if data else data, name
    if how == "append":
        return data + b"\x00garbage\xff" * 3, name
    if how == "gzip":
        return gzip.compress(data), name + ".gz"
    if how == "gzip_twice":
        return gzip.compress(gzip.compress(data)), name + ".gz"
    if how == "xlsx_cut_sheet":
        return _zip_members(data, lambda n, b: b[: int(len(b) * where)] if n.endswith("sheet1.xml") else b), name
    if how == "xlsx_bad_shared_string":
        return _zip_members(data, lambda n, b: b.replace(b't="inlineStr"><is><t>', b't="s"><v>99</v><is><t>')
                            if n.endswith("sheet1.xml") else b), name
    return data, name


#: Formats (and variants) a clean table is written in for :func:`clean_uploads`, each with the
#: orientation its writer needs: AnnData and featureCounts say which axis holds genes.
CLEAN_FORMATS = (("csv", ""), ("tsv", ""), ("semicolon", ""), ("utf16", ""), ("xlsx", ""),
                 ("parquet", "plain"), ("parquet", "no_metadata"), ("h5ad", "dense"), ("h5ad", "sparse"),
                 ("h5ad", "counts_layer"), ("featurecounts", ""))


@st.composite
def clean_uploads(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ``prepare`` that must be ACCEPTED: a well-formed table of counts
    (the model's genes, unique sample names, whole numbers, every sample with reads) in a
    supported format, maybe gzipped, with the options left to guess or given rightly. Without
    them the fuzzing never reached the success path (issue #28: 0 of 3,000 tables accepted)."""
    genes = draw(st.permutations(list(GENE_LABELS[:3])))
    genes += draw(st.lists(st.sampled_from(["ENSG00000000003", "ENSG00000000005", "ENSG00000000419"]),
                           max_size=3, unique=True))
    n_samples = draw(st.integers(1, 5))
    samples = [draw(st.sampled_from(["S", "GSM", "sample_", "patient "])) + str(i) for i in range(n_samples)]
    cells = draw(st.lists(st.lists(st.integers(1, 10**5), min_size=n_samples, max_size=n_samples),
                          min_size=len(genes), max_size=len(genes)))
    fmt, variant = draw(st.sampled_from(CLEAN_FORMATS))
    # featureCounts has genes in rows; AnnData samples as observations; the Parquet writer here
    # makes column names unique with a suffix, so genes go in its rows
    genes_in_rows = fmt in ("featurecounts", "parquet") or (fmt != "h5ad" and draw(st.booleans()))
    table = Table(genes, ["gene_id", *samples], cells) if genes_in_rows else \
        Table(samples, ["sample", *genes], [list(column) for column in zip(*cells)])
    data, name = encode(table, fmt, variant)
    if fmt not in ("xlsx", "parquet", "h5ad") and draw(st.booleans()):
        data, name = damage(data, name, "gzip", 0.0)
    return {"source": data, "filename": name,
            "orientation": draw(st.sampled_from(["auto", "genes_in_rows" if genes_in_rows else "genes_in_columns"])),
            "id_type": "auto", "value_type": draw(st.sampled_from(["auto", "counts"]))}


@st.composite
def uploads(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ``prepare``: a random table, written, maybe damaged, with options;
    one in five a clean upload that must be accepted (:func:`clean_uploads`)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(clean_uploads())
    table = draw(tables())
    fmt = draw(st.sampled_from(FORMATS))
    variant = draw(st.sampled_from(PARQUET_VARIANTS if fmt == "parquet" else H5AD_VARIANTS if fmt == "h5ad"
                                   else ("",)))
    data, name = encode(table, fmt, variant)
    data, name = damage(data, name, draw(st.sampled_from(DAMAGE)), draw(st.floats(0, 0.999)))
    kwargs: dict[str, Any] = {
        "source": data, "filename": name,
        "orientation": draw(st.sampled_from(["auto", "auto", "genes_in_rows", "genes_in_columns"])),
        "id_type": draw(st.sampled_from(["auto", "auto", "ensembl", "symbol"])),
        "value_type": draw(st.sampled_from(["auto", "auto", "counts", "tpm", "fpkm", "log1p_tpm", "log2_tpm"])),
    }
    sheet = draw(st.sampled_from(["none", "none", "csv", "xlsx", "frame", "bytes"]))
    if sheet != "none":
        ids = [None if x is None else str(x) for x in table.header[1:] + table.labels]
        frame = pd.DataFrame({"sample": ids, "_index": ["a"] * len(ids), "group": ["x"] * len(ids)})
        if sheet == "csv":
            kwargs["sample_sheet"], kwargs["sample_sheet_filename"] = frame.to_csv(index=False).encode(), "s.csv"
        elif sheet == "xlsx":
            out = io.BytesIO()
            frame.map(_excel_safe).to_excel(out, index=False)
            kwargs["sample_sheet"], kwargs["sample_sheet_filename"] = out.getvalue(), "s.xlsx"
        elif sheet == "frame":
            kwargs["sample_sheet"] = frame
        else:
            kwargs["sample_sheet"], kwargs["sample_sheet_filename"] = data, name
        kwargs["sample_id_column"] = draw(st.sampled_from([None, "sample", "missing"]))
    return kwargs


def prepare_only_raises_user_errors(kwargs: dict[str, Any]) -> None:
    """Run ``prepare``; a BulkFormerError is a fine answer, any other exception a bug."""
    source = kwargs.pop("source")
    try:
        prepared = prepare(source, gene_order=GENE_ORDER, **kwargs)
    except BulkFormerError as err:
        assert err.message
        return
    values = prepared.aligned.values
    assert values.shape == (len(prepared.aligned.sample_ids), len(GENE_ORDER))
    assert np.isfinite(values).all()


@settings(max_examples=150, deadline=None, database=None, derandomize=True,  # the same tables every run;
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # the script explores
@given(kwargs=uploads())
def test_prepare_only_raises_bulkformer_errors(kwargs: dict[str, Any]) -> None:
    prepare_only_raises_user_errors(kwargs)


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kwargs=clean_uploads())
def test_clean_uploads_are_accepted(kwargs: dict[str, Any]) -> None:
    """The success path, fuzzed: every well-formed table is read, whatever its format."""
    source = kwargs.pop("source")
    prepared = prepare(source, gene_order=GENE_ORDER, **kwargs)
    assert prepared.aligned.values.shape[1] == len(GENE_ORDER)
    assert np.isfinite(prepared.aligned.values).all()
    assert len(prepared.aligned.sample_ids) >= 1
