"""Reading an expression table: the reader is chosen by the file's content."""

from __future__ import annotations

from bulkformer.io._budget import DEFAULT_MAX_BYTES
from bulkformer.io._excel import _read_xlsx
from bulkformer.io._h5ad import _read_h5ad
from bulkformer.io._parquet import _read_parquet
from bulkformer.io._raw import RawTable
from bulkformer.io._source import Source, _Input
from bulkformer.io._text import _read_text


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
