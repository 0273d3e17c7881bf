"""Files that once killed the process (issue #28): each is refused with an InputError, before
the reader allocates what it cannot hold. The crashing cases run in a child process under an
address-space limit, so that a regression fails the test instead of the machine."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from test_io import write_h5ad

from bulkformer.errors import InputError
from bulkformer.io import read_table

#: What a child may map: far below what the bombs needed (6.8 GB), far above a refusal's needs.
_CHILD_LIMIT = 3 * 1024**3


def _read_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    """``read_table(path)`` in a fresh interpreter limited to :data:`_CHILD_LIMIT` bytes; its
    output is the error's type and message, or ``accepted``."""
    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({_CHILD_LIMIT}, {_CHILD_LIMIT}))\n"
            "from bulkformer.io import read_table\n"
            "try:\n"
            f"    read_table({str(path)!r})\n"
            "    print('accepted')\n"
            "except Exception as err:\n"
            "    print(type(err).__name__, err)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("first", ["gene_id", "sample"])
def test_one_row_of_four_million_columns_is_refused(tmp_path: Path, first: str) -> None:
    """43 MB, 1 row × 4,000,000 columns: Arrow's CSV reader keeps ~9 KB per column, so this
    died in std::bad_alloc at ~6.8 GB although its cells (132 M with labels) were under budget."""
    n = 4_000_000
    path = tmp_path / "wide.csv"
    with path.open("w") as out:
        out.write(first + "," + ",".join(f"S{i}" for i in range(n)) + "\n")
        out.write("G0," + ",".join("1" for _ in range(n)) + "\n")
    done = _read_in_child(path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("InputError"), done.stdout
    assert "4,000,001 columns" in done.stdout
    assert "at least 0 rows" not in done.stdout


def test_header_alone_over_budget_never_says_zero_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "1000")
    content = ("gene_id," + ",".join(f"S{i}" for i in range(5000)) + "\n").encode()
    content += b"G," + b",".join(b"1" for _ in range(5000)) + b"\n"
    with pytest.raises(InputError, match="5,001 columns") as caught:
        read_table(content, filename="wide.csv")
    assert "0 rows" not in str(caught.value)


def test_wide_but_reasonable_tables_still_read() -> None:
    """The column cost must not refuse a real wide table: 20 samples × 60,000 genes in columns."""
    genes = [f"G{i}" for i in range(60_000)]
    content = ("sample," + ",".join(genes) + "\n"
               + "".join(f"S{r}," + ",".join("3" for _ in genes) + "\n" for r in range(20))).encode()
    raw = read_table(content, filename="wide.csv")
    assert raw.values.shape == (20, 60_000)
    assert float(raw.values.sum()) == 3 * 20 * 60_000


def _damaged_sparse_h5ad(path: Path, *, indices: list[int], indptr: list[int],
                         data: list[float]) -> None:
    """A valid AnnData with a 3 × 3 sparse X, then its index arrays replaced as an attacker
    (or a broken writer) would."""
    adata = anndata.AnnData(scipy.sparse.csr_matrix(np.eye(3, dtype=np.float32)),
                            obs=pd.DataFrame(index=["S1", "S2", "S3"]),
                            var=pd.DataFrame(index=["A", "B", "C"]))
    write_h5ad(adata, path)
    with h5py.File(path, "r+") as file:
        group = file["X"]
        for key, values in (("indices", indices), ("indptr", indptr), ("data", data)):
            del group[key]
            group[key] = np.asarray(values, dtype=np.float32 if key == "data" else np.int64)


@pytest.mark.parametrize(("indices", "indptr", "data", "what"), [
    ([0, 1_000_000_000, 2], [0, 1, 2, 3], [1, 1, 1], "outside"),   # the segfault of issue #28
    ([0, -5, 2], [0, 1, 2, 3], [1, 1, 1], "outside"),
    ([0, 1, 2], [0, 2, 1, 3], [1, 1, 1], "rise"),
    ([0, 1, 2], [0, 1, 2, 9], [1, 1, 1], "ends at"),
    ([0, 1, 2], [0, 1, 3], [1, 1, 1], "indptr has"),
    ([0, 1, 2], [0, 1, 2, 3], [1, 1], "values"),
])
def test_sparse_h5ad_with_damaged_indices_is_refused(tmp_path: Path, indices: list[int],
                                                     indptr: list[int], data: list[float],
                                                     what: str) -> None:
    path = tmp_path / "bad.h5ad"
    _damaged_sparse_h5ad(path, indices=indices, indptr=indptr, data=data)
    done = _read_in_child(path)  # a segfault shows as a negative return code, not a failure here
    assert done.returncode == 0, f"child died: {done.returncode} {done.stderr[-2000:]}"
    assert done.stdout.startswith("InputError"), done.stdout
    assert "damaged" in done.stdout or "not a readable" in done.stdout


def _xlsx_without_dimension(n_rows: int, n_columns: int) -> bytes:
    """A workbook whose sheet has no ``<dimension>`` element, written as raw XML (what
    openpyxl reads as an unknown size), every cell the number 1."""
    def column(i: int) -> str:
        name = ""
        i += 1
        while i:
            i, rest = divmod(i - 1, 26)
            name = chr(65 + rest) + name
        return name
    letters = [column(c) for c in range(n_columns)]
    rows = "".join(f'<row r="{r + 1}">' + "".join(f'<c r="{letter}{r + 1}"><v>1</v></c>'
                                                   for letter in letters) + "</row>"
                   for r in range(n_rows))
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"),
        "xl/worksheets/sheet1.xml": (
            '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{rows}</sheetData></worksheet>"),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_xlsx_without_dimension_is_refused_before_openpyxl_parses_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells are counted in the sheet's XML as it streams (fast), so the refusal comes
    before openpyxl parses the sheet (it did so to its end just to open the workbook: minutes
    for 10,000 × 16,000 cells)."""
    import openpyxl.worksheet._read_only as read_only

    content = _xlsx_without_dimension(200, 100)
    assert b"<dimension" not in zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")

    def no_parse(*_: object, **__: object) -> None:
        raise AssertionError("openpyxl parsed a sheet over the budget")

    # openpyxl parses a sheet without <dimension> to its end already when opening the workbook
    monkeypatch.setattr(read_only.ReadOnlyWorksheet, "_get_size", no_parse)
    monkeypatch.setattr(read_only.ReadOnlyWorksheet, "_cells_by_row", no_parse)
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "10000")
    with pytest.raises(InputError, match="more than the 10,000"):
        read_table(content, filename="big.xlsx")


def test_xlsx_without_dimension_under_budget_still_reads() -> None:
    raw = read_table(_xlsx_without_dimension(4, 3), filename="small.xlsx")
    assert raw.values.shape == (3, 2)  # first row is the header, first column the labels
    assert (raw.values == 1).all()


def test_xlsx_whose_parts_declare_more_than_the_byte_limit_is_refused_unread() -> None:
    content = _xlsx_without_dimension(20, 20)
    with pytest.raises(InputError, match="decompresses to more than"):
        read_table(content, filename="big.xlsx", max_bytes=len(content) + 100)


def test_xlsx_with_damaged_compressed_sheet_data_is_an_input_error() -> None:
    """The fuzzer (scripts/fuzz_prepare.py) found the new XML count raising zlib.error on a
    flipped byte in a sheet's compressed data: every such damage must be an InputError."""
    content = _xlsx_without_dimension(30, 30)
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start, start + info.compress_size, max(1, info.compress_size // 64)):
        damaged = content[:offset] + bytes([content[offset] ^ 0x5A]) + content[offset + 1:]
        try:
            read_table(damaged, filename="damaged.xlsx")
        except InputError:
            pass
