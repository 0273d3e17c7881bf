"""The table as laid out in the file (:class:`RawTable`), and how an Arrow table's columns become
one: IDs from the first column, numbers from the others, annotation and text columns set aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from bulkformer.errors import InputError

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


def _is_annotation(column_name: str) -> bool:
    return column_name.strip().lower() in _ANNOTATION_COLUMNS


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
