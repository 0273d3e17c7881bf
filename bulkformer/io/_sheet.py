"""Sample sheets indexed by sample ID and lined up with the table: every format and compression
an expression table may come in (CSV/TSV/TXT, XLSX, Parquet, the ``obs`` of an AnnData ``.h5ad``;
gzipped too), or a DataFrame. Yes/no columns become booleans, number columns numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer.errors import InputError
from bulkformer.inputs._sample_names import near_matches
from bulkformer.io._budget import DEFAULT_MAX_BYTES, check_cells
from bulkformer.io._excel import _cell_text
from bulkformer.io._raw import Guess
from bulkformer.io._source import Source, _Input
from bulkformer.io._text import _sniff_text


@dataclass(frozen=True, eq=False)
class SampleSheet:
    """A sample sheet indexed by sample ID, and how it lines up with the expression table."""

    table: pd.DataFrame
    id_column: Guess
    missing: tuple[str, ...]
    unused: tuple[str, ...]
    #: (name in the sheet, sample it was matched to) where the two are written differently.
    near_matched: tuple[tuple[str, str], ...] = ()


def read_sample_sheet(source: Source | pd.DataFrame, *, filename: str | None = None,
                      sample_ids: Sequence[str] | None = None, id_column: str | None = None,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> SampleSheet:
    """Read a sample sheet (CSV/TSV/TXT, XLSX, Parquet, an ``.h5ad``'s ``obs``, each also gzipped;
    or a DataFrame) indexed by sample ID.

    The ID column is ``id_column`` if given, else the first column whose values match
    ``sample_ids`` best (else simply the first column). Columns whose values are all numbers
    become numeric; columns of only true/false (any case; blanks allowed) become booleans
    (``boolean`` with gaps). Samples without a row, and rows without a sample, are listed.
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
    table = table.apply(_typed)
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
    if kind in ("parquet", "h5ad"):  # sample IDs kept in the index come out as the first column
        frame = _read_parquet_sheet(inp) if kind == "parquet" else _read_h5ad_obs(inp)
        return frame.reset_index() if _has_named_index(frame) else frame
    if kind != "text":
        raise InputError(f"{inp.name} is not a sample sheet format.",
                         hint="Upload the sample sheet as CSV, TSV, XLSX, Parquet or .h5ad (gzipped too).")
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


def _read_parquet_sheet(inp: _Input) -> pd.DataFrame:
    """A Parquet sample sheet, its size checked from the footer before it is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(inp.readable_binary())
        check_cells(inp.name, file.metadata.num_rows, file.metadata.num_columns)
        return file.read().to_pandas()
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{inp.name} is not a readable Parquet file: {err}",
                         hint="Write it again with pandas.DataFrame.to_parquet.") from err


def _read_h5ad_obs(inp: _Input) -> pd.DataFrame:
    """The ``obs`` table of an AnnData file (read with h5py and anndata's element reader: nothing
    is unpickled, the matrices are not loaded), sample IDs as its index."""
    import h5py

    try:
        from anndata.io import read_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import read_elem
    try:
        with h5py.File(inp.readable_binary(), "r") as file:
            if "obs" not in file:
                raise InputError(f"{inp.name} has no obs table.", hint="Save the AnnData with adata.write_h5ad.")
            obs = read_elem(file["obs"])
    except InputError:
        raise
    except Exception as err:  # h5py/anndata raise many types for a damaged file
        raise InputError(f"{inp.name} is not a readable .h5ad file: {err}",
                         hint="Save it again with adata.write_h5ad, or export the sample sheet as CSV.") from err
    check_cells(inp.name, *obs.shape)
    obs.index = obs.index.rename(obs.index.name or "sample_id")
    return obs


_TRUE, _FALSE = {"true"}, {"false"}


def _typed(column: pd.Series) -> pd.Series:
    """A text column as numbers when every filled cell is one, as booleans when every filled cell
    is true/false (any case), else as text; empty cells missing."""
    if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):  # pandas 3 reads text as str
        return column
    if column.map(lambda v: isinstance(v, (bool, np.bool_)) or pd.isna(v)).all() and column.notna().any():
        return column.astype(bool) if column.notna().all() else column.astype("boolean")
    text = column.map(_id_text)  # numbers may come padded with spaces
    filled = text != ""
    if filled.any() and text[filled].str.lower().isin(_TRUE | _FALSE).all():
        flags = text.str.lower().map({"true": True, "false": False})
        return flags.astype(bool) if filled.all() else flags.astype("boolean")
    numbers = pd.to_numeric(text.where(filled), errors="coerce")
    if filled.any() and numbers[filled].notna().all():
        return numbers
    return text.where(filled)
