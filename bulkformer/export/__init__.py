"""Every result as a file a biologist can open: tables, arrays, AnnData and a run report.

Conventions for every table written here:

* rows are samples and the sample ID is the row key (the index ``sample_id``, or the first
  column ``sample_id`` for long tables that have one row per sample and gene);
* gene columns are Ensembl gene IDs without version (``ENSG00000141510``); when a symbol map is
  given they read ``SYMBOL (ENSG…)``, e.g. ``TP53 (ENSG00000141510)``: friendly to read and
  still unique, since the Ensembl ID is always part of the name;
* values are log1p TPM, as the model reads and writes them; embeddings and imputed values are
  never NaN (a result with NaN is refused rather than written);
* expression comes in three kinds (:data:`~bulkformer.choices.IMPUTE_MODE`): ``filled`` (measured values kept,
  only the genes the table did not measure predicted; the default), ``model`` (the model's
  reconstruction of every gene) and ``missing`` (only the genes the table did not measure);
  "measured" means the gene is a column of the input (``AlignedMatrix.observed``);
* a gene table with more genes than Excel has columns (:data:`EXCEL_MAX_COLUMNS`) is written
  genes as rows (index ``ensembl_id``, then ``symbol``, then one column per sample);
* notes about a run (the demo model, low coverage; :func:`file_notes`) open a CSV/TSV as lines
  starting with ``#``: read such a file with ``pandas.read_csv(path, comment="#")``.

Files are written to a temporary file in the target folder and renamed into place, so an
output file either is complete or does not exist.

The pieces, one module each: ``_tables`` (results as tables), ``_anndata`` (the whole run as
one AnnData), ``_files`` (writing to disk and to bytes; functions that write return what they
wrote and never print) and ``_report`` (:class:`RunFacts`, the notes every file carries, the
run report).
"""

from __future__ import annotations

from bulkformer.export._anndata import to_anndata
from bulkformer.export._files import (
    ANNDATA_FORMATS,
    ARRAY_FORMATS,
    TABLE_FORMATS,
    part_path,
    to_bytes,
    write_output,
    written_in_full,
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
)
from bulkformer.export._tables import (
    EXCEL_MAX_COLUMNS,
    embedding_frame,
    expression_frame,
    expression_values,
    gene_embedding_frame,
    gene_labels,
    projection_frame,
    too_wide_for_excel,
)

__all__ = [
    "ANNDATA_FORMATS", "ARRAY_FORMATS", "CITATION", "DEMO_NOTICE", "DEMO_WARNING",
    "EXCEL_MAX_COLUMNS", "REPORTED_PACKAGES", "TABLE_FORMATS",
    "RunFacts",
    "embedding_frame", "expression_frame", "expression_values", "file_notes", "gene_embedding_frame",
    "gene_labels", "methods_paragraph", "package_versions", "part_path", "projection_frame", "run_report",
    "to_anndata", "to_bytes", "too_wide_for_excel", "write_output", "written_in_full",
]
