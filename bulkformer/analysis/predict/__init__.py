"""Does a sample-sheet column follow from the expression? Downstream models, honestly evaluated.

A column of the sample sheet becomes a prediction task: categories → classification, numbers
→ regression, a time + event pair → survival (a penalised Cox model). Three sets of features
are compared on exactly the same cross-validation folds:

- ``embeddings``: the BulkFormer sample embeddings;
- ``pca``: PCA of the log1p TPM input (measured genes only), the baseline a bioinformatician
  would use, with the number of components chosen inside the folds;
- ``both``: the two side by side.

Every feature set feeds a regularised linear model (logistic regression, ridge regression or
a ridge-penalised Cox model) in a scikit-learn :class:`~sklearn.pipeline.Pipeline`, so PCA and
scaling are fitted on each training fold only. Hyperparameters are chosen by an inner
cross-validation (``GridSearchCV``) on the training fold, never on the test fold. Each score
comes with its spread over folds and a permutation-test p-value (is it better than chance?),
and the embeddings are compared with PCA fold by fold before a verdict is put into words.

Samples whose label is empty are predicted by the model fitted on all labelled samples.

Across cohorts: :func:`validate_external` fits each feature set's model on one cohort and scores
it once on another (bootstrap intervals, a baseline, shift warnings); :func:`fit_predictor`,
:func:`save_predictor` and :func:`load_predictor` keep a fitted model as plain numbers (JSON +
NumPy arrays, no pickle) to apply to new samples later.

Modules: ``targets`` (the task and its refusals), ``models`` (features, pipelines, folds),
``metrics``, ``work`` (an evaluation's model fits and their measured pace), ``evaluation``
(:func:`evaluate`), ``results`` (tables, plots' numbers, report),
``external`` (scoring on a second cohort), ``saved`` (a predictor to keep and reuse).
"""

from __future__ import annotations

from bulkformer.analysis.predict.evaluation import (
    ALPHA,
    DEFAULT_PERMUTATIONS,
    ProgressFn,
    StopFn,
    evaluate,
    make_verdict,
)
from bulkformer.analysis.predict.external import (
    DEFAULT_BOOTSTRAP,
    CohortData,
    ExternalResult,
    ExternalScore,
    external_verdict,
    read_test_target,
    shift_warnings,
    validate_external,
)
from bulkformer.analysis.predict.metrics import (
    METRIC_LABELS,
    METRIC_MEANINGS,
    PRIMARY,
    auroc,
    balanced_accuracy,
    chance_level,
    fold_metrics,
    format_p,
    metric_names,
    p_text,
    weighted_f1,
)
from bulkformer.analysis.predict.models import (
    C_GRID,
    COX_GRID,
    FEATURE_LABELS,
    FEATURE_SETS,
    INNER_FOLDS,
    N_FOLDS,
    N_REPEATS,
    PCA_GRID,
    REPEATS_BELOW,
    RIDGE_GRID,
    CVPlan,
    FoldFit,
    expression_features,
    fit_fold,
    make_pipeline,
    param_grid,
    plan_cv,
    sample_space,
)
from bulkformer.analysis.predict.results import (
    P_COLUMN,
    Comparison,
    FeatureSummary,
    MajorityBaseline,
    ModelSummary,
    PredictionResult,
    Score,
    SurvivalCurves,
    confusion,
    majority_baseline,
    predictions_table,
    report_section,
    risk_group_curves,
    roc,
)
from bulkformer.analysis.predict.saved import (
    Predictor,
    fit_predictor,
    genes_digest,
    load_predictor,
    predictor_zip,
    save_predictor,
)
from bulkformer.analysis.predict.targets import (
    KINDS,
    MAX_NUMBER_CLASSES,
    MIN_LABELLED,
    MIN_PER_CLASS,
    Kind,
    Target,
    make_target,
)
from bulkformer.analysis.predict.work import (
    LOAD_FACTOR,
    EvaluationWork,
    FitPace,
    planned_work,
    time_range,
)

__all__ = [
    "ALPHA",
    "COX_GRID",
    "C_GRID",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PERMUTATIONS",
    "FEATURE_LABELS",
    "FEATURE_SETS",
    "INNER_FOLDS",
    "KINDS",
    "LOAD_FACTOR",
    "MAX_NUMBER_CLASSES",
    "METRIC_LABELS",
    "METRIC_MEANINGS",
    "MIN_LABELLED",
    "MIN_PER_CLASS",
    "N_FOLDS",
    "N_REPEATS",
    "PCA_GRID",
    "PRIMARY",
    "P_COLUMN",
    "REPEATS_BELOW",
    "RIDGE_GRID",
    "CVPlan",
    "CohortData",
    "Comparison",
    "EvaluationWork",
    "ExternalResult",
    "ExternalScore",
    "FeatureSummary",
    "FitPace",
    "FoldFit",
    "Kind",
    "MajorityBaseline",
    "ModelSummary",
    "PredictionResult",
    "Predictor",
    "ProgressFn",
    "Score",
    "StopFn",
    "SurvivalCurves",
    "Target",
    "auroc",
    "balanced_accuracy",
    "chance_level",
    "confusion",
    "evaluate",
    "expression_features",
    "external_verdict",
    "fit_fold",
    "fit_predictor",
    "fold_metrics",
    "format_p",
    "genes_digest",
    "load_predictor",
    "majority_baseline",
    "make_pipeline",
    "make_target",
    "make_verdict",
    "metric_names",
    "p_text",
    "param_grid",
    "plan_cv",
    "planned_work",
    "predictions_table",
    "predictor_zip",
    "read_test_target",
    "report_section",
    "risk_group_curves",
    "roc",
    "sample_space",
    "save_predictor",
    "shift_warnings",
    "time_range",
    "validate_external",
    "weighted_f1",
]
