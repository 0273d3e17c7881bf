"""Reading expression tables and sample sheets, in the formats biologists actually have.

Every reader returns the table as laid out in the file (:class:`RawTable`); deciding which axis
holds genes needs the gene annotation and happens in :func:`bulkformer.genes.orient`. The file
type is decided by content (magic bytes), not by the name alone, so a renamed file is caught.
Sizes are checked before reading (and while decompressing), so an oversized upload is refused
without being loaded.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bulkformer.errors import InputError
from bulkformer.sample_names import near_matches

#: Default upper bound on a file's size (compressed and decompressed): 2 GiB.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Default upper bound on a table's cells (rows × columns) read at once: 150 million, room for
#: 2,000 samples × 60,000 genes (``prepare`` then peaks at ~2.2 GB; benchmarks/RESULTS.md).
#: Compressed files can be tiny and still huge once read, so the bound is checked from the
#: file's metadata before its values are loaded.
DEFAULT_MAX_CELLS = 150_000_000
#: Environment variable that overrides :data:`DEFAULT_MAX_CELLS` (for large servers).
MAX_CELLS_ENV = "BULKFORMER_MAX_CELLS"
#: What one row or column label costs, counted in cells: a Python string and its copies while
#: genes are mapped take some 30× the memory and time of a float32 value.
LABEL_CELLS = 32

#: A path, or the raw bytes of an upload.
Source = Union[str, "os.PathLike[str]", bytes, bytearray]

_HEAD_BYTES = 64 * 1024
_HEAD_LINES = 20  # lines wanted for sniffing; very wide tables need more than _HEAD_BYTES
_MAX_HEAD_BYTES = 64 * 1024**2
_BLOCK_BYTES = 16 * 1024**2  # CSV parse block: fastest on 2 cores for wide and long tables
_MAGIC = (  # (leading bytes, what the file is, the reader that takes it)
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a zip archive", "xlsx"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (for example AnnData .h5ad)", "h5ad"),
    (b"PAR1", "a Parquet file", "parquet"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel workbook (.xls)", None),
    (b"\x1f\x8b", "a gzip file compressed twice", None),
)
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".tab", ".sf", ".results", ".tabular"}
_FEATURECOUNTS_COLUMNS = ("Geneid", "Chr", "Start", "End", "Strand", "Length")
_SALMON_COLUMNS = ("Name", "Length", "EffectiveLength", "TPM", "NumReads")
#: Per-gene annotation columns that expression matrices often carry; never samples.
_ANNOTATION_COLUMNS = frozenset({
    "chr", "chrom", "chromosome", "seqnames", "start", "end", "strand", "width", "length",
    "gene_length", "effective_length", "gene_name", "gene_symbol", "symbol", "hgnc_symbol",
    "external_gene_name", "gene_type", "gene_biotype", "biotype", "description",
    "transcript_id", "transcript_id(s)", "geneid", "gene_id",
})
_LENGTH_COLUMNS = ("length", "gene_length")


@dataclass(frozen=True)
class Guess:
    """A decision the pipeline made on its own (``value``) and why (``reason``), so the user
    can check it and override it."""

    value: str
    reason: str


@dataclass(frozen=True, eq=False)
class RawTable:
    """An expression table exactly as laid out in the file.

    ``values`` is float32 ``[n_rows, n_columns]`` (only the numeric data cells);
    ``row_labels`` is the first column, ``column_labels`` the header of the data columns,
    both kept exactly as written. ``row_lengths`` (bp) comes from the file where the format
    has one (featureCounts ``Length``, RSEM ``length``, salmon ``Length``). ``layout`` and
    ``value_hint`` are set where the format itself says which axis holds genes and what the
    numbers are.
    """

    values: np.ndarray
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    source_format: str
    row_lengths: np.ndarray | None = None
    layout: Guess | None = None
    value_hint: Guess | None = None
    ignored_columns: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class SampleSheet:
    """A sample sheet indexed by sample ID, and how it lines up with the expression table."""

    table: pd.DataFrame
    id_column: Guess
    missing: tuple[str, ...]
    unused: tuple[str, ...]
    #: (name in the sheet, sample it was matched to) where the two are written differently.
    near_matched: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- opening files


class _LimitedReader(io.RawIOBase):
    """Passes reads through and fails once more than ``limit`` bytes came out (gzip bombs)."""

    def __init__(self, inner: BinaryIO | gzip.GzipFile, limit: int, name: str) -> None:
        self._inner, self._left, self._limit, self._name = inner, limit, limit, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            chunk = self._inner.read(len(buffer))
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(f"{self._name} is damaged: {err}.",
                             hint="Compress it again, or upload it uncompressed.") from err
        self._left -= len(chunk)
        if self._left < 0:
            raise _too_large(self._name, self._limit, decompressed=True)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._inner.close()
        super().close()


def _too_large(name: str, limit: int, *, decompressed: bool = False) -> InputError:
    what = "decompresses to more than" if decompressed else "is larger than"
    return InputError(f"{name} {what} the {_format_bytes(limit)} limit.",
                      hint="Split the samples over several files, or drop genes you do not need.")


def max_cells() -> int:
    """The cell budget: ``BULKFORMER_MAX_CELLS`` if set (a positive whole number), else
    :data:`DEFAULT_MAX_CELLS`. Read on every call, so a server can change it without a restart."""
    text = os.environ.get(MAX_CELLS_ENV, "").strip().replace("_", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_CELLS


def check_cells(name: str, n_rows: int, n_columns: int, *, at_least: bool = False) -> None:
    """Refuse a table of ``n_rows × n_columns`` cells over the budget, before it is loaded
    (``at_least``: the rows were counted only until the budget was passed)."""
    cells = _cells_cost(n_rows, n_columns)
    _check_budget(name, f"{'at least ' if at_least else ''}{n_rows:,} rows × {n_columns:,} columns "
                        f"(with their labels, as much as {cells:,} values)", cells)


def _cells_cost(n_rows: int, n_columns: int) -> int:
    return n_rows * n_columns + LABEL_CELLS * (n_rows + n_columns)


def _check_budget(name: str, what: str, cells: int) -> None:
    limit = max_cells()
    if cells > limit:
        raise InputError(
            f"{name} holds {what}, more than the {limit:,} that are read at once.",
            hint="Split the samples over several files, or keep only the genes the model uses "
                 "(about 20,000 protein-coding genes). A server administrator can raise the limit "
                 f"with the {MAX_CELLS_ENV} environment variable.")


def _open_raw(source: Path | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def _format_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:g} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.3g} {unit}"


@dataclass(frozen=True)
class _Input:
    """One source (a path, or the bytes of an upload), its display name, and the first bytes
    of its (decompressed) content."""

    name: str
    source: Path | bytes
    gzipped: bool
    head: bytes
    head_is_all: bool
    max_bytes: int

    @classmethod
    def of(cls, source: Source, *, filename: str | None, max_bytes: int) -> _Input:
        if isinstance(source, (bytes, bytearray)):
            source = bytes(source)
            name = filename or "the uploaded file"
            size = len(source)
        else:
            source = Path(source)
            name = filename or source.name
            if not source.is_file():
                raise InputError(f"{source} does not exist or is not a file.",
                                 hint="Check the path.")
            size = source.stat().st_size
        if size > max_bytes:
            raise _too_large(name, max_bytes)
        try:
            with _open_raw(source) as raw:
                gzipped = raw.read(2) == b"\x1f\x8b"
            with cls(name, source, gzipped, b"", False, max_bytes).open() as stream:
                head = stream.read(_HEAD_BYTES)
                more = head
                while more and head.count(b"\n") < _HEAD_LINES and len(head) < _MAX_HEAD_BYTES:
                    more = stream.read(len(head))
                    head += more
                is_all = not stream.peek(1)
        except OSError as err:  # unreadable path (permissions, a vanished mount)
            raise InputError(f"{name} cannot be read: {err.strerror or err}.",
                             hint="Check that the file is readable.") from err
        if not head.strip():
            raise InputError(f"{name} is empty.", hint="Upload the file again; it has no content.")
        return cls(name, source, gzipped, head, is_all, max_bytes)

    @property
    def path(self) -> Path | None:
        return self.source if isinstance(self.source, Path) else None

    def open(self) -> io.BufferedReader:
        """The (decompressed) content as a stream that refuses to exceed ``max_bytes``."""
        raw = _open_raw(self.source)
        inner: BinaryIO | gzip.GzipFile = gzip.GzipFile(fileobj=raw) if self.gzipped else raw
        return io.BufferedReader(_LimitedReader(inner, self.max_bytes, self.name), 1 << 20)

    def readable_binary(self) -> str | BinaryIO:
        """What a binary-format library should open: the path where possible, else bytes."""
        if self.gzipped:
            with self.open() as stream:
                return io.BytesIO(stream.read())
        return io.BytesIO(self.source) if isinstance(self.source, bytes) else str(self.source)

    @property
    def suffix(self) -> str:
        """The name's extension, lower case, without a trailing ``.gz``."""
        name = self.name.lower().removesuffix(".gz")
        return Path(name).suffix

    def kind(self) -> str:
        """``xlsx`` / ``h5ad`` / ``parquet`` / ``text`` from the content; binary files that
        carry a text name, or that no reader here understands, are refused."""
        found, kind = next(((what, kind) for magic, what, kind in _MAGIC
                            if self.head.startswith(magic)), (None, None))
        if found is None and self.head[:2] not in (b"\xff\xfe", b"\xfe\xff") and b"\0" in self.head:
            found = "a binary file"
        if found is None:
            return "text"
        if self.suffix in _TEXT_SUFFIXES:
            raise InputError(
                f"{self.name} is named like a text table but is {found}.",
                hint="Upload the original file under its real extension, or export the table "
                     "as CSV/TSV from the program that made it.")
        if kind is None:
            raise InputError(
                f"{self.name} is {found}, which cannot be read here.",
                hint="Supported: CSV, TSV/TXT, XLSX, AnnData .h5ad and Parquet (each also .gz).")
        if kind == "xlsx" and self.suffix == ".zip":
            raise InputError(f"{self.name} is a zip archive.",
                             hint="Unzip it and upload the table inside.")
        return kind


# --------------------------------------------------------------------------- text tables


@dataclass(frozen=True)
class _TextLayout:
    encoding: str
    delimiter: str
    decimal_point: str
    skip_lines: int
    header: tuple[str, ...]
    block_size: int


def _decode_head(head: bytes) -> tuple[str, str]:
    """(encoding, text) of the first bytes; undecodable UTF-8 falls back to Latin-1."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16", head.decode("utf-16", errors="ignore")
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8", head[3:].decode("utf-8", errors="ignore")
    try:
        return "utf-8", head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 4:  # only a character cut off at the end of the sample
            return "utf-8", head[: err.start].decode("utf-8")
        return "latin-1", head.decode("latin-1")


def _sniff_text(inp: _Input, *, delimiter: str | None = None) -> _TextLayout:
    """Encoding, delimiter, decimal mark, leading ``#`` comment lines and the header."""
    encoding, text = _decode_head(inp.head)
    lines = text.splitlines()
    if not inp.head_is_all and len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut off
    skip = 0
    while skip < len(lines) and (lines[skip].startswith("#") or not lines[skip].strip()):
        skip += 1
    body = [line for line in lines[skip: skip + 50] if line.strip()]
    if not body:
        raise InputError(f"{inp.name} has no table in it, only comment lines.",
                         hint="Upload the file that holds the expression values.")
    if delimiter is None:
        delimiter = _sniff_delimiter(body, preferred="," if inp.suffix == ".csv" else "\t")
    rows = _split(body, delimiter)
    if rows is None:
        raise InputError(f"{inp.name}: the first lines cannot be split into cells.",
                         hint="Save the table as plain CSV or TSV.")
    header, data_rows = rows[0], rows[1:]
    if len(header) < 2:
        raise InputError(
            f"{inp.name} has a single column: no separator (tab, comma or semicolon) found.",
            hint="A table needs gene IDs in the first column and one column per sample.")
    if data_rows and all(len(row) == len(header) + 1 for row in data_rows):
        header = ["", *header]  # R's write.table: no header cell above the row names
    decimal = "."
    if delimiter != "," and any(
            _looks_like_decimal_comma(cell) for row in data_rows for cell in row[1:]):
        decimal = ","
    block_size = max(_BLOCK_BYTES, 4 * max(len(line.encode(encoding, "replace")) for line in body))
    return _TextLayout(encoding, delimiter, decimal, skip, tuple(header), block_size)


def _sniff_delimiter(body: list[str], *, preferred: str) -> str:
    """The first of tab / comma / semicolon (``preferred`` first) that splits every line into
    the same number (> 1) of fields (or one more, for R-style row names); else the one that
    splits the header most."""
    candidates = [preferred] + [d for d in ("\t", ",", ";") if d != preferred]
    widths = {d: [len(row) for row in _split(body, d) or [[""]]] for d in candidates}
    for d in candidates:
        w = widths[d]
        if w[0] > 1 and all(x in (w[0], w[0] + 1) for x in w[1:]):
            return d
    return max(candidates, key=lambda d: widths[d][0])


def _split(lines: list[str], delimiter: str) -> list[list[str]] | None:
    """Lines split into cells (quotes honoured), or ``None`` where the csv module gives up
    (a cell over its size limit: the delimiter is wrong, or the line is garbage)."""
    try:
        return list(csv.reader(lines, delimiter=delimiter))
    except csv.Error:
        return None


def _looks_like_decimal_comma(cell: str) -> bool:
    head, _, tail = cell.strip().partition(",")
    return bool(tail) and head.lstrip("-").isdigit() and tail.isdigit()


def _read_arrow_csv(inp: _Input, layout: _TextLayout, *, typed: bool) -> pa.Table:
    """The whole table with column names ``c0..cN`` (the real header is kept apart, so
    duplicated or empty names cannot confuse the parser); the first column as text.

    ``typed`` parses every other column straight to float32 (half the memory of inferred
    int64), except annotation columns; it fails on any text cell, and the caller then reads
    again with inferred types to find out what the text is.
    """
    names = [f"c{i}" for i in range(len(layout.header))]
    types = {"c0": pa.string()}
    if typed:
        types |= {name: pa.string() if _is_annotation(header) else pa.float32()
                  for name, header in zip(names[1:], layout.header[1:])}
    invalid: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(f"{row.actual_columns} fields where the header has "
                       f"{row.expected_columns}: {row.text[:80]!r}")
        return "error"

    encoding = layout.encoding
    while True:
        try:
            with inp.open() as stream:
                return pacsv.read_csv(
                    stream,
                    read_options=pacsv.ReadOptions(
                        skip_rows=layout.skip_lines + 1, column_names=names, encoding=encoding,
                        block_size=layout.block_size),
                    parse_options=pacsv.ParseOptions(
                        delimiter=layout.delimiter, invalid_row_handler=on_invalid),
                    convert_options=pacsv.ConvertOptions(
                        column_types=types, decimal_point=layout.decimal_point,
                        strings_can_be_null=False, quoted_strings_can_be_null=False),
                )
        except pa.ArrowInvalid as err:
            if invalid:
                raise InputError(f"{inp.name}: a row has {invalid[0]}.",
                                 hint="Every row needs one value per column.") from err
            if "UTF8" in str(err) and encoding == "utf-8":
                encoding = "latin-1"  # a stray non-UTF-8 byte beyond the sniffed sample
                continue
            if typed and "conversion error" in str(err):
                raise _TextCells from err
            raise InputError(f"{inp.name} could not be parsed: {str(err).splitlines()[0]}",
                             hint="Save the table as plain CSV or TSV.") from err
        except UnicodeDecodeError as err:  # damaged UTF-16 (an odd byte, a broken surrogate)
            raise InputError(f"{inp.name} is not readable {encoding} text: {err.reason} at byte "
                             f"{err.start} of a block.",
                             hint="Save the table again as UTF-8 CSV or TSV.") from err


class _TextCells(Exception):
    """A column meant to hold numbers holds text: read again and look closer."""


def _is_annotation(column_name: str) -> bool:
    return column_name.strip().lower() in _ANNOTATION_COLUMNS


def _check_text_budget(inp: _Input, n_columns: int) -> None:
    """Refuse a text table over the cell budget before parsing it. Every cell takes at least
    one byte, so content no longer than the budget passes at once; otherwise (large or
    gzipped files) lines are counted in one streaming pass, stopped once past the budget."""
    limit = max_cells()
    size = len(inp.source) if isinstance(inp.source, bytes) else inp.source.stat().st_size
    if not inp.gzipped and _cells_cost(size, n_columns) <= limit:  # never more lines than bytes
        return
    lines, chunk = 0, b"-"
    with inp.open() as stream:
        while _cells_cost(lines, n_columns) <= limit and (chunk := stream.read(1 << 24)):
            lines += chunk.count(b"\n")
    check_cells(inp.name, lines, n_columns, at_least=bool(chunk))


def _read_text(inp: _Input, *, delimiter: str | None = None) -> RawTable:
    layout = _sniff_text(inp, delimiter=delimiter)
    _check_text_budget(inp, len(layout.header))
    try:
        table = _read_arrow_csv(inp, layout, typed=True)
    except _TextCells:
        table = _read_arrow_csv(inp, layout, typed=False)
    header = layout.header
    first_line = layout.skip_lines + 2  # line number of the first data row
    if table.num_rows == 0:
        raise InputError(f"{inp.name} has column names but no data rows.",
                         hint="Upload the file with its values.")
    if header[: len(_FEATURECOUNTS_COLUMNS)] == _FEATURECOUNTS_COLUMNS:
        n = len(_FEATURECOUNTS_COLUMNS)
        grid = _grid(inp.name, table.select([0, *range(n, len(header))]),
                     (header[0], *header[n:]), source_format="featurecounts",
                     first_line=first_line)
        return replace(grid, row_lengths=_lengths(table.column(n - 1)),
                       layout=Guess("genes_in_rows", "featureCounts table: one row per gene"),
                       value_hint=Guess("counts", "featureCounts reports read counts"))
    if header[:1] == ("transcript_id",) and "expected_count" in header:
        raise InputError(f"{inp.name} is an RSEM isoform (transcript) table.",
                         hint="Upload the gene-level file (*.genes.results) instead.")
    if {"gene_id", "expected_count", "length"} <= set(header):
        return _single_sample(inp, table, header, "RSEM", ids="gene_id", counts="expected_count",
                              length="length", first_line=first_line)
    if set(_SALMON_COLUMNS) <= set(header):
        return _single_sample(inp, table, header, "salmon", ids="Name", counts="NumReads",
                              length="Length", first_line=first_line)
    return _grid(inp.name, table, header, source_format="tsv" if layout.delimiter == "\t" else "csv",
                 first_line=first_line)


def _single_sample(inp: _Input, table: pa.Table, header: tuple[str, ...], tool: str, *,
                   ids: str, counts: str, length: str, first_line: int) -> RawTable:
    """RSEM ``*.genes.results`` / salmon ``quant.genes.sf``: one sample per file, named after
    the file (salmon: after its folder, since every salmon file is called ``quant.genes.sf``).
    The estimated counts are used, so that TPM comes out of the same formula as for every
    other input, with the file's own gene lengths."""
    idx = {name: i for i, name in enumerate(header)}
    grid = _grid(inp.name, table.select([idx[ids], idx[counts]]), (ids, counts),
                 source_format=tool.lower(), first_line=first_line)
    return replace(grid, column_labels=(_sample_name_from_file(inp),),
                   row_lengths=_lengths(table.column(idx[length])),
                   layout=Guess("genes_in_rows", f"{tool} output: one row per gene"),
                   value_hint=Guess("counts", f"the {tool} {counts} column (estimated counts)"))


def _sample_name_from_file(inp: _Input) -> str:
    name = Path(inp.name).name
    for suffix in (".gz", ".genes.results", ".results", ".sf", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    if name in ("quant", "quant.genes") and inp.path is not None and inp.path.parent.name:
        return inp.path.parent.name
    return name or "sample"


def _lengths(column: pa.ChunkedArray) -> np.ndarray:
    """Gene lengths in bp from a file column; anything not a positive number is unknown (NaN)."""
    text = pd.Series(column.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    lengths = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    lengths[~(lengths > 0)] = np.nan  # on our own copy: pandas 3 (copy-on-write) hands out read-only views
    return lengths


def _grid(name: str, table: pa.Table, header: Sequence[str], *, source_format: str,
          first_line: int) -> RawTable:
    """Labels from the first column; every other column is data, a per-gene annotation column
    (ignored; a ``length`` one taken as gene lengths) or a text column (ignored). A column of
    numbers with a stray word or an empty cell is an error naming the cell."""
    labels = _labels(name, table.column(0))
    stacked = np.empty((table.num_columns - 1, table.num_rows), dtype=np.float32)
    names: list[str] = []
    ignored: list[str] = []
    lengths: np.ndarray | None = None
    for i in range(1, table.num_columns):
        column_name, column = header[i], table.column(i)
        if column.null_count == len(column) and not column_name.strip():
            continue  # a trailing separator on every line
        values = None if _is_annotation(column_name) else _column_values(
            name, column, column_name, labels, first_line=first_line)
        if values is None:
            if column_name.strip().lower() in _LENGTH_COLUMNS and lengths is None:
                if pa.types.is_nested(column.type):
                    raise InputError(f"{name}: column {column_name!r} holds {column.type}, not "
                                     f"one gene length per row.",
                                     hint="Store gene lengths as plain numbers, or drop the column.")
                lengths = _lengths(column)
            ignored.append(column_name)
            continue
        if not column_name.strip():
            raise InputError(f"{name}: column {i + 1} has values but no name.",
                             hint="Give every sample (or gene) column a name in the header.")
        stacked[len(names)] = values
        names.append(column_name)
    if not names:
        raise InputError(
            f"{name} has no numeric columns: every column after the first holds text.",
            hint="The first column should hold gene (or sample) IDs and the others numbers.")
    return RawTable(stacked[: len(names)].T, tuple(labels.to_pylist()), tuple(names),
                    source_format, row_lengths=lengths, ignored_columns=tuple(ignored))


def _labels(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The ID column as text, a missing ID as ""; nested values (lists, structs) are refused."""
    try:
        return column.cast(pa.string()).fill_null("")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise InputError(f"{name}: the ID column holds {column.type}, not one gene or sample "
                         f"ID per row.",
                         hint="Store the IDs as text, one per row, in the first column or the "
                              "index.") from err


def _column_values(name: str, column: pa.ChunkedArray, column_name: str,
                   labels: pa.ChunkedArray, *, first_line: int) -> np.ndarray | None:
    """float32 values of one column, or ``None`` for a text column (no numbers, or more words
    than numbers). Empty, non-finite or non-numeric cells among numbers raise an error that
    names the row and column."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = column.cast(pa.float32(), safe=False).to_numpy()
    elif _is_text(kind) or pa.types.is_null(kind):
        text = pd.Series(column.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
        stripped = text.str.strip()
        numbers = pd.to_numeric(stripped, errors="coerce")
        bad = stripped.notna() & (stripped != "") & numbers.isna()
        n_bad, n_numbers = int(bad.sum()), int(numbers.notna().sum())
        if n_bad and n_bad >= n_numbers:
            return None
        if n_bad:
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{name}: non-numeric value {text.iloc[row]!r} in "
                f"{_where(row, labels, column_name, first_line)}.",
                hint="Every cell outside the ID column and the header must be a number.")
        values = numbers.to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        return None  # dates, booleans: annotation, not expression
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        what = "an empty / NA cell" if np.isnan(values[row]) else "an infinite value"
        raise InputError(
            f"{name}: {what} in {_where(row, labels, column_name, first_line)}.",
            hint="Fill every cell with a number (0 for a gene that was not detected).")
    return values


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _where(row: int, labels: pa.ChunkedArray, column_name: str, first_line: int) -> str:
    where = f"line {first_line + row}" if first_line else f"data row {row + 1}"
    return f"{where} (row {labels[row].as_py()!r}), column {column_name!r}"


# --------------------------------------------------------------------------- binary formats


def _read_xlsx(inp: _Input) -> RawTable:
    """First non-empty worksheet → the text path, so that checks and messages are shared
    (line numbers are then the sheet's row numbers)."""
    import openpyxl  # imported here: only Excel uploads need it

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
    the declared dimension can be missing or wrong, so cells are also counted as they come."""
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


def _cell_text(value: object) -> str:
    """A spreadsheet cell as text: Excel's 7.0 → "7", empty cells → ""."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_parquet(inp: _Input) -> RawTable:
    try:
        file = pq.ParquetFile(inp.readable_binary())
        shape = (file.metadata.num_rows, file.metadata.num_columns)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{inp.name} is not a readable Parquet file: {err}",
                         hint="Write it again with pandas.DataFrame.to_parquet.") from err
    check_cells(inp.name, *shape)  # from the footer, before any value is decompressed
    try:
        table = file.read()
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{inp.name} is not a readable Parquet file: {err}",
                         hint="Write it again with pandas.DataFrame.to_parquet.") from err
    index_columns = _pandas_index_columns(inp.name, table.schema)
    if index_columns:
        first = table.schema.get_field_index(index_columns[0])
        order = [first, *[i for i in range(table.num_columns) if i != first]]
        table = table.select(order)
    elif table.num_columns and not _is_text(table.schema.field(0).type):
        raise InputError(f"{inp.name}: the first column holds no IDs.",
                         hint="Save the table with gene (or sample) IDs as the index or the "
                              "first column.")
    header = tuple(str(name) for name in table.column_names)
    if index_columns and header[0].startswith("__index_level_"):
        header = ("", *header[1:])
    if table.num_rows == 0:
        raise InputError(f"{inp.name} has column names but no data rows.",
                         hint="Upload the file with its values.")
    return _grid(inp.name, table, header, source_format="parquet", first_line=0)


def _pandas_index_columns(name: str, schema: pa.Schema) -> list[str]:
    """Names of the index columns pandas recorded (a range index is not a column: none);
    metadata that pandas cannot have written is refused rather than guessed around."""
    damaged = InputError(f"{name} has damaged pandas metadata (the record of its index).",
                         hint="Write it again with pandas.DataFrame.to_parquet, or with pyarrow "
                              "without pandas metadata.")
    try:
        meta = schema.pandas_metadata
    except ValueError as err:  # not JSON
        raise damaged from err
    if meta is None:
        return []
    columns = meta.get("index_columns", []) if isinstance(meta, dict) else None
    if not isinstance(columns, list) or not all(isinstance(c, (str, dict)) for c in columns):
        raise damaged
    names = [c for c in columns if isinstance(c, str)]
    if any(c not in schema.names for c in names):
        raise damaged
    return names


def _read_h5ad(inp: _Input) -> RawTable:
    """AnnData: samples are observations, genes variables; raw counts from
    ``layers['counts']`` when present, else ``X``. Read with h5py only, nothing unpickled."""
    import anndata  # imported here: slow to import, only .h5ad uploads need it

    readable = inp.readable_binary()
    _check_h5ad_budget(inp.name, readable)
    if isinstance(readable, io.BytesIO):
        readable.seek(0)
    try:
        adata = anndata.read_h5ad(readable)
    except Exception as err:  # h5py/anndata raise many types for a damaged file
        raise InputError(f"{inp.name} is not a readable AnnData (.h5ad) file: {err}",
                         hint="Write it again with anndata's write_h5ad.") from err
    use_layer = "counts" in adata.layers
    matrix = adata.layers["counts"] if use_layer else adata.X
    if matrix is None or adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"{inp.name} holds no expression matrix.",
                         hint="Store the values in X (samples × genes).")
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    try:
        values = np.asarray(dense, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"{inp.name}: the expression matrix is not numeric.",
                         hint="Store numbers in X.") from err
    finite = np.isfinite(values)
    if not finite.all():
        r, c = (int(i[0]) for i in np.nonzero(~finite))
        raise InputError(f"{inp.name}: a missing or infinite value at observation "
                         f"{adata.obs_names[r]!r}, variable {adata.var_names[c]!r}.",
                         hint="Fill every cell with a number.")
    return RawTable(values, tuple(map(str, adata.obs_names)), tuple(map(str, adata.var_names)),
                    "h5ad",
                    layout=Guess("genes_in_columns", "AnnData stores samples as observations "
                                                     "and genes as variables"),
                    value_hint=Guess("counts", "AnnData layers['counts']") if use_layer else None)


def _check_h5ad_budget(name: str, readable: str | BinaryIO) -> None:
    """Refuse, from the HDF5 structure alone, a file whose stored values or whose expression
    matrix once dense (sparse matrices record their dense shape) exceed the cell budget.
    A file h5py cannot walk is left to anndata, which words the damage."""
    import h5py

    try:
        with h5py.File(readable, "r") as file:
            stored = 0

            def count(_: str, obj: object) -> None:
                nonlocal stored
                if isinstance(obj, h5py.Dataset):
                    stored += int(obj.size or 0)

            file.visititems(count)
            layers = file.get("layers")
            matrix = layers.get("counts") if isinstance(layers, h5py.Group) else None
            shape = _h5_matrix_shape(file.get("X") if matrix is None else matrix)
    except Exception:  # noqa: BLE001 - any damage is reported by anndata next, in its own words
        return
    _check_budget(name, f"{stored:,} stored values", stored)
    if shape is not None:
        check_cells(name, *shape)


def _h5_matrix_shape(obj: object) -> tuple[int, int] | None:
    """(rows, columns) of an AnnData matrix: a dense dataset, or a sparse group's ``shape``."""
    import h5py

    if isinstance(obj, h5py.Dataset):
        shape = obj.shape
    elif isinstance(obj, h5py.Group):
        shape = obj.attrs.get("shape", obj.attrs.get("h5sparse_shape"))
    else:
        return None
    try:
        rows, columns = (int(n) for n in shape)
    except (TypeError, ValueError):
        return None
    return (rows, columns) if rows >= 0 and columns >= 0 else None


# --------------------------------------------------------------------------- public readers


def read_table(source: Source, *, filename: str | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES) -> RawTable:
    """Read an expression table from a path, or from bytes plus the upload's file name.

    CSV, TSV/TXT, XLSX, AnnData ``.h5ad`` and Parquet, each optionally gzipped; featureCounts
    tables, RSEM ``*.genes.results`` and salmon ``quant.genes.sf`` are recognised by their
    columns. Raises :class:`~bulkformer.errors.InputError` for anything a user can get wrong.
    """
    inp = _Input.of(source, filename=filename, max_bytes=max_bytes)
    kind = inp.kind()
    reader = {"text": _read_text, "xlsx": _read_xlsx, "parquet": _read_parquet,
              "h5ad": _read_h5ad}[kind]
    return reader(inp)


def read_sample_sheet(source: Source | pd.DataFrame, *, filename: str | None = None,
                      sample_ids: Sequence[str] | None = None, id_column: str | None = None,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> SampleSheet:
    """Read a sample sheet (CSV/TSV/XLSX, or a DataFrame) indexed by sample ID.

    The ID column is ``id_column`` if given, else the first column whose values match
    ``sample_ids`` best (else simply the first column). Columns whose values are all numbers
    become numeric. Samples without a row, and rows without a sample, are listed.
    """
    if isinstance(source, pd.DataFrame):
        frame, name = source, "the sample sheet"
    else:
        inp = _Input.of(source, filename=filename, max_bytes=max_bytes)
        frame, name = _read_sheet_frame(inp), inp.name
    frame = frame.reset_index() if _has_named_index(frame) else frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty or frame.shape[1] == 0:
        raise InputError(f"{name} has no rows.", hint="Upload a sheet with one row per sample.")
    column = _choose_id_column(frame, name=name, sample_ids=sample_ids, id_column=id_column)
    ids = frame[column.value].map(_id_text)
    frame, ids = frame[ids != ""], ids[ids != ""]  # rows without an ID describe no sample
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise InputError(f"{name}: sample ID(s) {', '.join(map(repr, duplicated[:5]))} appear "
                         f"more than once in column {column.value!r}.",
                         hint="Keep one row per sample.")
    table = frame.drop(columns=column.value).set_axis(pd.Index(ids, name="sample_id"))
    table = table.apply(_numeric_if_possible)
    near = {} if sample_ids is None else near_matches(list(table.index), list(sample_ids))
    table = table.rename(index=near)
    expected = list(table.index) if sample_ids is None else list(sample_ids)
    present, wanted = set(table.index), set(expected)
    missing = tuple(s for s in expected if s not in present)
    unused = tuple(s for s in table.index if s not in wanted)
    return SampleSheet(table, column, missing, unused, tuple(near.items()))


def sample_sheet_columns(source: Source, *, filename: str | None = None,
                         max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, ...]:
    """The column names of a sample sheet, for letting the user pick its ID column."""
    inp = _Input.of(source, filename=filename, max_bytes=max_bytes)
    return tuple(str(c) for c in _read_sheet_frame(inp).columns)


def _has_named_index(frame: pd.DataFrame) -> bool:
    return not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None


def _id_text(value: object) -> str:
    return _cell_text(value).strip()


def _read_sheet_frame(inp: _Input) -> pd.DataFrame:
    kind = inp.kind()
    if kind == "xlsx":
        try:
            return pd.read_excel(inp.readable_binary(), dtype=object, engine="openpyxl")
        except Exception as err:  # openpyxl raises many types for a damaged workbook
            raise InputError(f"{inp.name} is not a readable Excel workbook: {err}",
                             hint="Save it again as .xlsx, or export CSV.") from err
    if kind != "text":
        raise InputError(f"{inp.name} is not a sample sheet format.",
                         hint="Upload the sample sheet as CSV, TSV or XLSX.")
    layout = _sniff_text(inp)
    try:
        with inp.open() as stream:
            return pd.read_csv(stream, sep=layout.delimiter, dtype=str, keep_default_na=False,
                               skiprows=layout.skip_lines, encoding=layout.encoding,
                               encoding_errors="replace")
    except (pd.errors.ParserError, ValueError) as err:
        raise InputError(f"{inp.name} could not be parsed: {err}",
                         hint="Save the sample sheet as plain CSV or TSV.") from err


def _choose_id_column(frame: pd.DataFrame, *, name: str, sample_ids: Sequence[str] | None,
                      id_column: str | None) -> Guess:
    if id_column is not None:
        if id_column not in frame.columns:
            raise InputError(f"{name} has no column {id_column!r}.",
                             hint=f"Columns: {', '.join(map(repr, frame.columns[:10]))}.")
        return Guess(id_column, "chosen by you")
    if sample_ids is None:
        return Guess(frame.columns[0], "the first column")
    wanted = set(sample_ids)
    scores = [frame[c].map(_id_text).isin(wanted).sum() for c in frame.columns]
    how = ""
    if max(scores) == 0:
        scores = [len(near_matches(list(frame[c].map(_id_text)), list(sample_ids))) for c in frame.columns]
        how = " (written slightly differently)"
    best = int(np.argmax(scores))
    if scores[best] == 0:
        found = ", ".join(repr(_id_text(v)) for v in frame.iloc[:3, 0])
        expected = ", ".join(map(repr, list(sample_ids)[:3]))
        raise InputError(
            f"No column of {name} matches the sample names of the expression table "
            f"(first column has e.g. {found}; samples are e.g. {expected}).",
            hint="Use the same sample IDs in both files, or choose the ID column.")
    return Guess(frame.columns[best],
                 f"{scores[best]} of {len(wanted)} sample names found in this column{how}")


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):  # pandas 3 reads text as str
        return column
    text = column.map(_id_text)  # numbers may come padded with spaces
    filled = text != ""
    numbers = pd.to_numeric(text.where(filled), errors="coerce")
    if filled.any() and numbers[filled].notna().all():
        return numbers
    return text.where(filled)
