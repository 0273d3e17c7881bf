"""Text tables (CSV, TSV, TXT, each also gzipped): sniffing the encoding, delimiter, decimal mark
and header, parsing with Arrow, and the single-sample tool outputs recognised by their columns
(featureCounts, RSEM, salmon) or by their header-less shape (HTSeq-count, STAR's
``ReadsPerGene.out.tab``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from bulkformer.errors import InputError
from bulkformer.io._budget import (
    ARROW_COLUMN_CELLS,
    _cells_cost,
    check_cells,
    max_cells,
)
from bulkformer.io._raw import Guess, RawTable, _grid, _is_annotation, _labels, _lengths
from bulkformer.io._source import _Input

_BLOCK_BYTES = 16 * 1024**2  # CSV parse block: fastest on 2 cores for wide and long tables
_FEATURECOUNTS_COLUMNS = ("Geneid", "Chr", "Start", "End", "Strand", "Length")
_SALMON_COLUMNS = ("Name", "Length", "EffectiveLength", "TPM", "NumReads")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
#: First header cells that name the ID column: a first line starting with one is a header
#: even when every sample is named by a number.
_ID_HEADERS = frozenset({"", "gene", "genes", "gene_id", "geneid", "gene id", "gene_name", "genename",
                         "gene_symbol", "symbol", "id", "ids", "name", "names", "ensembl", "ensembl_id",
                         "ensembl_gene_id", "feature", "features", "target_id", "x", "unnamed: 0", "rowname",
                         "rownames", "sample", "sample_id"})
_STAR_FIRST = "N_unmapped"  # STAR's ReadsPerGene.out.tab starts with its four counters
#: A stranded library puts at least this many times more reads on genes with one strand's
#: column than with the other's; below it, STAR's unstranded column is the one to use.
STRANDED_RATIO = 3.0


@dataclass(frozen=True)
class _TextLayout:
    encoding: str
    delimiter: str
    decimal_point: str
    skip_lines: int
    header: tuple[str, ...]
    block_size: int
    #: False when the first line is data (HTSeq-count, STAR): ``header`` is then that line.
    has_header: bool = True


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
    _check_header_width(inp.name, body[0], delimiter)
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
    return _TextLayout(encoding, delimiter, decimal, skip, tuple(header), block_size,
                       has_header=not _first_line_is_data(header, data_rows))


def _first_line_is_data(first: list[str], rows: list[list[str]]) -> bool:
    """A first line of a label then numbers only, as wide as the lines after it, as HTSeq-count
    and STAR write their tables: data, not column names. A first cell such as ``gene`` or
    ``id`` (or none) names the ID column, so samples named by numbers keep their header; so
    does a first line of numbers only (a label made of digits is read as a column name, as
    before)."""
    return (first[0].strip().lower() not in _ID_HEADERS and not _NUMBER.fullmatch(first[0].strip())
            and all(_NUMBER.fullmatch(cell.strip()) for cell in first[1:])
            and all(len(row) == len(first) for row in rows))


def _check_header_width(name: str, header: str, delimiter: str | None) -> None:
    """Refuse a header with more columns than the budget allows even for one row, before it is
    split into Python strings (a 64 MB header line of ``a,a,a…`` is 32 million strings): the
    separators are counted in the raw line, an upper bound on the columns."""
    seps = (delimiter,) if delimiter else ("\t", ",", ";")
    n_columns = 1 + max(header.count(d) for d in seps)
    if _cells_cost(1, n_columns, column_cells=ARROW_COLUMN_CELLS) > max_cells():
        check_cells(name, 1, n_columns, at_least=True, column_cells=ARROW_COLUMN_CELLS)


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
                        skip_rows=layout.skip_lines + layout.has_header, column_names=names, encoding=encoding,
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


def _check_text_budget(inp: _Input, n_columns: int) -> None:
    """Refuse a text table over the cell budget before parsing it. Every cell takes at least
    one byte, so content no longer than the budget passes at once; otherwise (large or
    gzipped files) lines are counted in one streaming pass, stopped once past the budget."""
    limit = max_cells()

    def cost(rows: int) -> int:  # Arrow keeps ~9 KB of state per column, whatever the rows
        return _cells_cost(rows, n_columns, column_cells=ARROW_COLUMN_CELLS)

    size = len(inp.source) if isinstance(inp.source, bytes) else inp.source.stat().st_size
    if not inp.gzipped and cost(size) <= limit:  # never more lines than bytes
        return
    lines, chunk = 0, b"-"
    with inp.open() as stream:
        while cost(lines) <= limit and (chunk := stream.read(1 << 24)):
            lines += chunk.count(b"\n")
    # a table has at least one data row: never "at least 0 rows" when the header alone is over
    check_cells(inp.name, max(lines, 1), n_columns, at_least=bool(chunk),
                column_cells=ARROW_COLUMN_CELLS)


def _read_text(inp: _Input, *, delimiter: str | None = None) -> RawTable:
    layout = _sniff_text(inp, delimiter=delimiter)
    _check_text_budget(inp, len(layout.header))
    try:
        table = _read_arrow_csv(inp, layout, typed=True)
    except _TextCells:
        table = _read_arrow_csv(inp, layout, typed=False)
    header = layout.header
    first_line = layout.skip_lines + 1 + layout.has_header  # line number of the first data row
    if not layout.has_header:
        return _headerless(inp, table, first_line=first_line)
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


def _headerless(inp: _Input, table: pa.Table, *, first_line: int) -> RawTable:
    """A table without a header line: one sample of HTSeq-count (gene, count) or of STAR's
    ``ReadsPerGene.out.tab`` (gene, then counts for an unstranded, a forward- and a
    reverse-stranded library), named after the file. Any other shape has no sample names to
    give, so it is refused with what to add."""
    labels = _labels(inp.name, table.column(0)).to_pylist()
    if table.num_columns == 4 and labels[:1] == [_STAR_FIRST]:
        tool = "STAR"
    elif table.num_columns == 2:
        tool = "HTSeq-count"
    else:
        raise InputError(
            f"The first line of {inp.name} holds numbers, not column names, so its "
            f"{table.num_columns - 1} sample columns have no names.",
            hint="Add a header line: a name for the gene column, then one name per sample.")
    grid = _grid(inp.name, table, ("gene", *(f"counts {i + 1}" for i in range(1, table.num_columns))),
                 source_format=tool.lower().replace("-", ""), first_line=first_line)
    column, reason = _star_column(grid) if tool == "STAR" else (0, "its only count column")
    return replace(grid, values=np.ascontiguousarray(grid.values[:, [column]]),
                   column_labels=(_sample_name_from_file(inp),),
                   layout=Guess("genes_in_rows", f"{tool} output without a header: one row per gene"),
                   value_hint=Guess("counts", f"{tool} counts reads ({reason})"))


def _star_column(grid: RawTable) -> tuple[int, str]:
    """Which of STAR's three count columns of ``grid`` fits the library, from the reads each puts
    on genes (its own ``N_…`` counter rows left out): the forward or reverse column when it holds
    :data:`STRANDED_RATIO` times the other's, else the unstranded one (STAR's manual: column 2
    unstranded, 3 and 4 as ``htseq-count -s yes`` / ``-s reverse``)."""
    genes = [i for i, label in enumerate(grid.row_labels) if not label.startswith("N_")]
    forward, reverse = (float(grid.values[genes, i].sum(dtype=np.float64)) for i in (1, 2))
    on_genes = f"reads on genes: {forward:,.0f} forward-stranded, {reverse:,.0f} reverse-stranded"
    if forward >= STRANDED_RATIO * reverse and forward > 0:
        return 1, f"column 3, a forward-stranded library: {on_genes}"
    if reverse >= STRANDED_RATIO * forward and reverse > 0:
        return 2, f"column 4, a reverse-stranded library: {on_genes}"
    return 0, f"column 2, an unstranded library: {on_genes}"


def _sample_name_from_file(inp: _Input) -> str:
    name = Path(inp.name).name
    for suffix in (".gz", "ReadsPerGene.out.tab", ".genes.results", ".results", ".sf", ".tsv", ".txt", ".counts",
                   ".htseq", "_"):
        name = name.removesuffix(suffix)
    if name in ("quant", "quant.genes") and inp.path is not None and inp.path.parent.name:
        return inp.path.parent.name
    return name or "sample"
