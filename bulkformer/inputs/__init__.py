"""Stage 1, inputs: from a user's file to the model's input matrix.

read (:mod:`bulkformer.io`) → map genes (:mod:`bulkformer.genes`) → normalise to log1p TPM with
the model's gene lengths → align to the model's gene order → QC report. :func:`prepare` runs the
whole chain and returns a :class:`PreparedInput`.

Modules: ``_pipeline`` (:func:`prepare`), ``_normalise`` (value types, → log1p TPM),
``_gene_lengths`` (the length tables counts are divided by), ``_align`` (the model's gene
order, the missing-gene placeholder), ``_qc`` (:class:`QCReport`), ``_sample_names`` (matching a
sample sheet's names to the table's).
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_align": ("MIN_MEASURED_GENES", "AlignedMatrix", "align", "require_enough_genes",),
    "_gene_lengths": (
        "UPSTREAM", "ANNOTATION", "TABLE_NAMES", "LEGACY_DEFAULT", "UPSTREAM_FILE",
        "GeneLengthTable", "check_name", "load_gene_lengths",
    ),
    "_normalise": (
        "VALUE_TYPES", "DEFAULT_LENGTH_BP", "check_values", "detect_value_type", "check_value_type",
        "log1p_tpm", "value_type_warning",
    ),
    "_pipeline": ("Guesses", "PreparedInput", "prepare",),
    "_qc": (
        "LOW_COVERAGE", "LOW_DEPTH_READS", "OUTLIER_Z", "MIN_SAMPLES_FOR_OUTLIERS", "QCReport",
        "low_coverage_warning", "robust_z", "make_report", "outliers_checkable",
    ),
    "_sample_names": ("MIN_CONTAINED_LENGTH", "MAX_CONTAINMENT_PAIRS", "near_matches",),
})
