"""Stage 3, analysis: judging what the model produced against honest baselines.

Maps of the samples (``_projection``: UMAP/PCA, clusters), group separation against a PCA of the
expression (``_separation``), the imputation hold-out check with baselines and a verdict
(``_holdout``), a model benchmarked on a cohort (``_benchmark``), and downstream prediction
(:mod:`bulkformer.analysis.predict`).

Loaded lazily: scikit-learn and umap load only when used.
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_benchmark": (
        "ImputationBenchmark", "SeparationBenchmark", "benchmark_imputation", "benchmark_separation",
    ),
    "_holdout": (
        "METRIC_COLUMNS", "Holdout", "hide_measured", "ImputationScore", "score_imputation",
        "MODEL", "GENE_MEAN", "KNN", "MAX_SAMPLES_WITHOUT_BASELINE", "KNN_NEIGHBOURS", "R_MARGIN",
        "MAE_MARGIN", "VERDICT_LEVELS", "CLOSE_TOLERANCE", "TABLE_COLUMNS", "HoldoutComparison",
        "compare_with_baselines", "Verdict", "verdict", "share_close", "describe_levels",
    ),
    "_projection": (
        "MIN_UMAP_SAMPLES", "UMAP_INPUT_DIMS", "MAX_CLUSTERS", "SILHOUETTE_SAMPLE",
        "NUMBA_CACHE_ENV", "Method", "Projection", "project", "numba_cache_dir", "use_numba_cache",
        "Clusters", "cluster",
    ),
    "_separation": (
        "BASELINE_COMPONENTS", "MARGIN", "OVERLAP", "MIN_GROUP_SIZE", "SMALL_GROUP", "Kind",
        "ExpressionBaseline", "GroupSeparation", "NotGroups", "expression_baseline", "group_labels",
        "group_separation", "separation_verdict",
    ),
})
