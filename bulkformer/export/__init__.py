"""Every result as a file a biologist can open: tables, arrays, AnnData and a run report.

Conventions for every file written here:

* CSV/TSV files hold a header row and data rows only: ``pandas.read_csv(path, index_col=0)``,
  R's ``read.csv(path, row.names = 1, check.names = FALSE)`` and a spreadsheet open them as they
  are. What a file holds and the notes about its run (the demo model, low coverage, the hold-out
  verdict; :func:`file_notes`) go where each format keeps metadata: Parquet's key-value metadata
  (key ``bulkformer``, JSON), an h5ad's ``uns["bulkformer"]``, and for every file the run-report
  sidecar ``<name>.report.md`` beside it (:func:`sidecar_path`, :func:`sidecar_report`);
* sample tables (embeddings) run samples as rows, the sample ID the row key (index
  ``sample_id``; long tables with one row per sample and gene have the column ``sample_id``);
* expression tables always run genes as rows, samples as columns (:data:`EXPRESSION_LAYOUT`):
  row key ``gene`` = ``SYMBOL_ENSG…`` (:func:`gene_labels`), every other column a sample;
* values are log1p TPM (:data:`VALUE_SCALE`), as the model reads and writes them; embeddings and
  imputed values are never NaN (a result with NaN is refused rather than written);
* expression comes in three kinds (:data:`~bulkformer.choices.IMPUTE_MODE`): ``filled``
  (measured values kept, only the genes the table did not measure predicted; the default),
  ``model`` (the model's reconstruction of every gene) and ``missing`` (only the genes the table
  did not measure); "measured" means the gene is a column of the input (``AlignedMatrix.observed``);
* every format is one entry of :data:`FORMATS` (writer, MIME type, the kinds of data it holds),
  keyed by :data:`~bulkformer.choices.OUTPUT_FORMAT`; which data a kind of result becomes in
  which format is :func:`result_file`.

Files are written to a temporary file in the target folder and renamed into place, so an
output file either is complete or does not exist.

The pieces, one module each: ``_formats`` (the format table), ``_tables`` (results as tables),
``_anndata`` (runs as AnnData), ``_results`` (which data for which result and format),
``_files`` (writing to disk and to bytes; functions that write return what they wrote and never
print) and ``_report`` (:class:`RunFacts`, the notes every file carries, the run report and the
sidecar).
"""

from __future__ import annotations

from bulkformer.export._anndata import (
    EMBEDDING_KEY,
    embedding_anndata,
    gene_embedding_anndata,
    to_anndata,
)
from bulkformer.export._files import (
    ANNDATA_FORMATS,
    ARRAY_FORMATS,
    TABLE_FORMATS,
    part_path,
    to_bytes,
    write_output,
    written_in_full,
)
from bulkformer.export._formats import (
    FORMATS,
    VALUE_SCALE,
    FileFormat,
    FileInfo,
    formats_for,
    mime_of,
    sidecar_path,
    write_h5ad,
)
from bulkformer.export._report import (
    CITATION,
    DEMO_NOTICE,
    DEMO_WARNING,
    REPORTED_PACKAGES,
    RunFacts,
    file_notes,
    methods_paragraph,
    package_versions,
    run_report,
    sidecar_report,
)
from bulkformer.export._results import ResultFile, result_file, write_ids, write_result
from bulkformer.export._tables import (
    EXCEL_MAX_COLUMNS,
    EXPRESSION_LAYOUT,
    embedding_frame,
    expression_frame,
    expression_values,
    gene_embedding_frame,
    gene_labels,
    projection_frame,
    too_wide_for_excel,
    unique_symbols,
)

__all__ = [
    "ANNDATA_FORMATS", "ARRAY_FORMATS", "CITATION", "DEMO_NOTICE", "DEMO_WARNING", "EMBEDDING_KEY",
    "EXCEL_MAX_COLUMNS", "EXPRESSION_LAYOUT", "FORMATS", "REPORTED_PACKAGES", "TABLE_FORMATS", "VALUE_SCALE",
    "FileFormat", "FileInfo", "ResultFile", "RunFacts",
    "embedding_anndata", "embedding_frame", "expression_frame", "expression_values", "file_notes",
    "formats_for", "gene_embedding_anndata", "gene_embedding_frame", "gene_labels", "methods_paragraph",
    "mime_of", "package_versions", "part_path", "projection_frame", "result_file", "run_report",
    "sidecar_path", "sidecar_report", "to_anndata", "to_bytes", "too_wide_for_excel", "unique_symbols",
    "write_h5ad", "write_ids", "write_output", "write_result", "written_in_full",
]
