"""Excel workbooks (.xlsx): the first non-empty worksheet, read through the text path."""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import replace

import numpy as np

from bulkformer.errors import InputError
from bulkformer.io._budget import (
    _cells_cost,
    _check_budget,
    _too_large,
    check_cells,
    max_cells,
)
from bulkformer.io._raw import RawTable
from bulkformer.io._source import _Input
from bulkformer.io._text import _read_text


def _read_xlsx(inp: _Input) -> RawTable:
    """First non-empty worksheet → the text path, so that checks and messages are shared
    (line numbers are then the sheet's row numbers)."""
    import openpyxl  # imported here: only Excel uploads need it

    _check_workbook_budget(inp)
    try:
        workbook = openpyxl.load_workbook(inp.readable_binary(), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a damaged workbook
        raise InputError(f"{inp.name} is not a readable Excel workbook: {err}",
                         hint="Open it in Excel and save it again as .xlsx, or export CSV.") from err
    try:
        text = next((t for t in (_sheet_as_csv(inp.name, s) for s in workbook.worksheets) if t.strip()), "")
    except InputError:
        raise
    except Exception as err:  # sheets are parsed lazily: damaged XML shows up only here
        raise InputError(f"{inp.name} is a damaged Excel workbook: its sheet cannot be read "
                         f"({type(err).__name__}: {err}).",
                         hint="Open it in Excel and save it again as .xlsx, or export CSV.") from err
    finally:
        workbook.close()
    if not text.strip():
        raise InputError(f"{inp.name} has no filled cells.", hint="Upload the workbook with data.")
    data = text.encode("utf-8")
    table = _read_text(_Input.of(data, filename=inp.name, max_bytes=inp.max_bytes), delimiter=",")
    return replace(table, source_format="xlsx")


def _sheet_as_csv(name: str, sheet: object) -> str:
    """The sheet as CSV text, refusing (before and while reading) a sheet over the cell budget:
    the declared dimension can be missing or wrong, so cells are also counted as they come
    (after :func:`_check_workbook_budget` counted them in the XML)."""
    rows, columns = sheet.max_row, sheet.max_column  # type: ignore[attr-defined]
    if isinstance(rows, int) and isinstance(columns, int):
        check_cells(name, rows, columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    n_rows = width = 0
    for row in sheet.iter_rows(values_only=True):  # type: ignore[attr-defined]
        cells = [_cell_text(v) for v in row]
        while cells and cells[-1] == "":
            cells.pop()
        n_rows, width = n_rows + 1, max(width, len(cells))
        if _cells_cost(n_rows, width) > max_cells():
            check_cells(name, n_rows, width)
        if cells:
            writer.writerow(cells)
    return out.getvalue()


#: How a cell element starts in sheet XML (``<c r="A1">``, ``<c>``, ``<c/>``); rows and columns
#: (``<row``, ``<col``) do not match. A sheet whose elements carry a namespace prefix
#: (``<x:worksheet>``, ``<x:c r="A1">``) is counted with the prefixed forms.
_CELL_TAGS = (b"<c ", b"<c>", b"<c/")
_PREFIXED_CELL_TAGS = (b":c ", b":c>", b":c/")
_XML_CHUNK = 1 << 24


def _check_workbook_budget(inp: _Input) -> None:
    """Refuse, before openpyxl opens it, a workbook over the byte or cell budget, in bounded
    time: the zip's members may declare at most ``max_bytes`` together (zipfile never reads a
    member past its declared size), and the cell elements of its XML are counted as it streams
    (bytes counted, not parsed), stopping once past the budget. openpyxl parses a sheet without
    ``<dimension>`` to its end just to open it (a 10,000 × 16,000 sheet ran for minutes)."""
    try:
        archive = zipfile.ZipFile(inp.readable_binary())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # openpyxl words the damage
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if sum(info.file_size for info in members) > inp.max_bytes:
            raise _too_large(inp.name, inp.max_bytes, decompressed=True)
        limit, cells = max_cells(), 0
        for info in members:
            if info.filename.lower().endswith(".xml") and cells <= limit:
                try:
                    cells += _count_xml_cells(archive, info, limit - cells)
                except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, RuntimeError,
                        NotImplementedError):
                    return  # a damaged, encrypted or oddly compressed member: openpyxl words it
    if cells > limit:
        _check_budget(inp.name, f"at least {cells:,} cells", cells)


def _count_xml_cells(archive: zipfile.ZipFile, info: zipfile.ZipInfo, left: int) -> int:
    """Cell elements in one XML member, counted until more than ``left`` were seen."""
    cells, tail, tags = 0, b"", _CELL_TAGS
    with archive.open(info) as stream:
        while cells <= left and (chunk := stream.read(_XML_CHUNK)):
            if not tail and b":worksheet" in chunk[:4096]:
                tags = _PREFIXED_CELL_TAGS
            window = tail + chunk
            cells += sum(window.count(tag) - tail.count(tag) for tag in tags)
            tail = window[-3:]
    return cells


def _cell_text(value: object) -> str:
    """A spreadsheet cell as text: Excel's 7.0 → "7", empty cells → ""."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
