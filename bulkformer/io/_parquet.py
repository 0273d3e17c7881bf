"""Parquet files: the cell budget checked from the footer, the pandas index as the ID column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from bulkformer.errors import InputError
from bulkformer.io._budget import ARROW_COLUMN_CELLS, check_cells
from bulkformer.io._raw import RawTable, _grid, _is_text
from bulkformer.io._source import _Input


def _read_parquet(inp: _Input) -> RawTable:
    try:
        file = pq.ParquetFile(inp.readable_binary())
        shape = (file.metadata.num_rows, file.metadata.num_columns)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{inp.name} is not a readable Parquet file: {err}",
                         hint="Write it again with pandas.DataFrame.to_parquet.") from err
    check_cells(inp.name, *shape, column_cells=ARROW_COLUMN_CELLS)  # from the footer, before any value is read
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
