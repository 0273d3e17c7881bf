"""Reading expression tables and sample sheets, in the formats biologists actually have.

Every reader returns the table as laid out in the file (:class:`RawTable`); deciding which axis
holds genes needs the gene annotation and happens in :func:`bulkformer.genes.orient`. The file
type is decided by content (magic bytes), not by the name alone, so a renamed file is caught.
Sizes are checked before reading (and while decompressing), so an oversized upload is refused
without being loaded.

Modules: ``_budget`` (byte and cell budgets), ``_source`` (opening a path or upload, gzip, the
file type), ``_raw`` (:class:`RawTable`, columns → values), ``_text`` (CSV/TSV, featureCounts,
RSEM, salmon), ``_excel``, ``_parquet``, ``_h5ad``, ``_table`` (:func:`read_table`), ``_sheet``
(sample sheets).
"""

from __future__ import annotations

from bulkformer.io._budget import (
    ARROW_COLUMN_CELLS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CELLS,
    LABEL_CELLS,
    MAX_CELLS_ENV,
    check_cells,
    max_cells,
)
from bulkformer.io._raw import Guess, RawTable
from bulkformer.io._sheet import SampleSheet, read_sample_sheet, sample_sheet_columns
from bulkformer.io._source import Source
from bulkformer.io._table import read_table

__all__ = [
    "ARROW_COLUMN_CELLS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CELLS",
    "LABEL_CELLS",
    "MAX_CELLS_ENV",
    "Guess",
    "RawTable",
    "SampleSheet",
    "Source",
    "check_cells",
    "max_cells",
    "read_sample_sheet",
    "read_table",
    "sample_sheet_columns",
]
