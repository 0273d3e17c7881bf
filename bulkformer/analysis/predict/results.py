"""What an evaluation found, as tables, plots' numbers and a report section."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from bulkformer.analysis.predict.metrics import METRIC_LABELS, PRIMARY, format_p
from bulkformer.analysis.predict.models import FEATURE_LABELS, CVPlan
from bulkformer.analysis.predict.targets import Target
from bulkformer.analysis.predict.work import EvaluationWork, FitPace
from bulkformer.choices import Tone

P_COLUMN = "p vs shuffled labels"
"""The comparison table's column of permutation p-values (:meth:`PredictionResult.table`)."""


@dataclass(frozen=True)
class Score:
    """A metric's value (mean over the outer test folds) and its spread (SD over them)."""

    metric: str
    value: float
    spread: float


@dataclass(frozen=True, eq=False)
class FeatureSummary:
    """How well one feature set predicts the target: scores, permutation test, chosen settings."""

    features: str
    scores: tuple[Score, ...]
    p_value: float
    null_mean: float
    per_fold: np.ndarray  # primary metric per outer fold
    chosen: str

    def score(self, metric: str) -> Score:
        return next(s for s in self.scores if s.metric == metric)

    @property
    def label(self) -> str:
        return FEATURE_LABELS[self.features]


@dataclass(frozen=True)
class Comparison:
    """Embeddings minus PCA on the primary metric, paired over the same folds (or samples)."""

    difference: float
    spread: float
    p_value: float
    n_better: int
    n_folds: int
    method: str


@dataclass(frozen=True)
class ModelSummary:
    """The model fitted on all labelled samples for one feature set."""

    features: str
    params: dict[str, Any]
    n_inputs: int
    n_model_features: int
    description: str


@dataclass(frozen=True, eq=False)
class PredictionResult:
    """Everything :func:`evaluate` found. Tables:

    ``folds``: one row per feature set and outer fold (repeat, fold, sizes, metrics, settings);
    ``out_of_fold``: one row per feature set and labelled sample (first repetition), with its
    prediction made without its label; ``predictions``: one row per unlabelled sample, predicted
    by the best feature set's model fitted on all labelled samples.

    ``work``: the model fits it made; ``pace``: the seconds per fit it measured (the next
    evaluation's time estimate on this machine).
    """

    target: Target
    plan: CVPlan
    n_permutations: int
    seed: int
    summaries: tuple[FeatureSummary, ...]
    comparison: Comparison
    verdict: str
    tone: Tone
    best: str
    folds: pd.DataFrame
    out_of_fold: pd.DataFrame
    predictions: pd.DataFrame
    models: tuple[ModelSummary, ...]
    seconds: float
    work: EvaluationWork | None = None
    pace: FitPace | None = None

    @property
    def primary(self) -> str:
        return PRIMARY[self.target.kind]

    def summary(self, features: str) -> FeatureSummary:
        return next(s for s in self.summaries if s.features == features)

    def table(self) -> pd.DataFrame:
        """The comparison table as people read it: "value ± spread" per metric, p-value, settings."""
        rows = []
        for s in self.summaries:
            row: dict[str, Any] = {"features": s.label}
            for score in s.scores:
                row[METRIC_LABELS[score.metric]] = _pm(score.value, score.spread)
            row[P_COLUMN] = format_p(s.p_value, self.n_permutations)
            row["chosen settings"] = s.chosen
            rows.append(row)
        return pd.DataFrame(rows).set_index("features")


def _pm(value: float, spread: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.3f} ± {spread:.3f}" if np.isfinite(spread) else f"{value:.3f}"


def predictions_table(result: PredictionResult) -> pd.DataFrame:
    """One table to download: every labelled sample's out-of-fold prediction (per feature set,
    ``how`` = "out of fold") and every unlabelled sample's prediction by the final model."""
    oof = result.out_of_fold.assign(how="out of fold (its label unseen)")
    new = result.predictions.reset_index().assign(features=result.best, how="model fitted on all labelled samples")
    return pd.concat([oof, new], ignore_index=True) if len(new) else oof


def confusion(result: PredictionResult, features: str) -> pd.DataFrame:
    """Counts of observed (rows) × predicted (columns) classes, out of fold."""
    oof = result.out_of_fold[result.out_of_fold["features"] == features]
    classes = list(result.target.classes)
    matrix = confusion_matrix(oof["observed"], oof["predicted"], labels=classes)
    return pd.DataFrame(matrix, index=pd.Index(classes, name="observed"), columns=pd.Index(classes, name="predicted"))


@dataclass(frozen=True)
class MajorityBaseline:
    """What always predicting the most common class scores: the floor a confusion matrix is read
    against (its diagonal's accuracy beside it)."""

    label: str
    n_label: int
    n_samples: int
    n_classes: int
    accuracy: float  # share of the largest class
    balanced_accuracy: float  # 1 / k: that class all right, every other class all wrong
    matrix_accuracy: float  # the matrix's diagonal over all its samples

    def words(self) -> str:
        return (f"Baseline: always predicting the most common class ({self.label}, {self.n_label} of "
                f"{self.n_samples} samples) would score accuracy {self.accuracy:.2f} and balanced accuracy "
                f"{self.balanced_accuracy:.2f} (1 of {self.n_classes} classes right). This matrix's diagonal "
                f"holds {self.matrix_accuracy:.0%} of the samples (accuracy {self.matrix_accuracy:.2f}).")


def majority_baseline(matrix: pd.DataFrame) -> MajorityBaseline:
    """The majority-class baseline of a confusion matrix (observed rows × predicted columns);
    classes with no observed sample are not counted, ties go to the first class."""
    observed = matrix.sum(axis=1)
    observed = observed[observed > 0]
    total = int(observed.sum())
    label = str(observed.idxmax())
    return MajorityBaseline(label=label, n_label=int(observed[label]), n_samples=total, n_classes=len(observed),
                            accuracy=float(observed.max()) / total, balanced_accuracy=1.0 / len(observed),
                            matrix_accuracy=float(np.trace(matrix.to_numpy())) / total)


def roc(result: PredictionResult, features: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(false-positive rate, true-positive rate, AUROC) of the out-of-fold probabilities (two classes)."""
    oof = result.out_of_fold[result.out_of_fold["features"] == features]
    positive = result.target.classes[1]
    truth = (oof["observed"] == positive).to_numpy()
    score = oof[f"p_{positive}"].to_numpy(dtype=float)
    fpr, tpr, _ = roc_curve(truth, score)
    return fpr, tpr, float(roc_auc_score(truth, score))


@dataclass(frozen=True, eq=False)
class SurvivalCurves:
    """Kaplan–Meier curves of the out-of-fold risk groups and the log-rank p-value between them."""

    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # group → (times, survival probability)
    counts: dict[str, int]
    logrank_p: float

    def logrank_words(self, *, alpha: float) -> str:
        """The log-rank test in words, judged at ``alpha`` (the caller's significance level)."""
        if not np.isfinite(self.logrank_p):
            return "No log-rank test: one of the risk groups is empty."
        if self.logrank_p < alpha:
            return (f"Log-rank test between the groups: p = {self.logrank_p:.2g}, under {alpha:g}: the two "
                    "groups' curves differ (the plot shows which group has its events sooner).")
        return (f"Log-rank test between the groups: p = {self.logrank_p:.2g}, not under {alpha:g}: the two "
                "groups' curves do not differ clearly, so the predicted risk does not separate the outcomes.")


def risk_group_curves(result: PredictionResult, features: str) -> SurvivalCurves:
    """Kaplan–Meier estimates for the higher- and lower-risk groups of the out-of-fold risks."""
    from sksurv.compare import compare_survival
    from sksurv.nonparametric import kaplan_meier_estimator
    from sksurv.util import Surv

    oof = result.out_of_fold[result.out_of_fold["features"] == features]
    events = oof["event"].to_numpy(dtype=bool)
    times = oof["time"].to_numpy(dtype=float)
    groups = oof["risk_group"].to_numpy()
    curves, counts = {}, {}
    for group in ("lower risk", "higher risk"):
        pick = groups == group
        counts[group] = int(pick.sum())
        if pick.any():
            t, s = kaplan_meier_estimator(events[pick], times[pick])
            curves[group] = (np.asarray(t), np.asarray(s))
    p = np.nan
    if len(curves) == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(compare_survival(Surv.from_arrays(events, times), groups)[1])
    return SurvivalCurves(curves, counts, p)


def report_section(result: PredictionResult) -> str:
    """Markdown for the run report: the task, the evaluation, the table, the verdict, the models."""
    t = result.target
    table = result.table()
    header = "| features | " + " | ".join(table.columns) + " |"
    lines = [
        f"## Predicting {t.name} from the samples", "",
        (f"- Task: {t.kind} ({t.reason}); {t.n_labelled} labelled samples, "
         f"{len(t.sample_ids) - t.n_labelled} without a label (predicted)"
         + (f"; classes: {', '.join(t.classes)}" if t.classes else "")),
        (f"- Evaluation: {result.plan.description}; settings chosen by {result.plan.inner_folds}-fold inner CV "
         "on each training fold; PCA and scaling fitted inside the folds"),
        (f"- Permutation test: {result.n_permutations} label shuffles on the same folds (seed {result.seed}); "
         f"embeddings vs PCA {result.comparison.method}"),
        "", header, "|" + "---|" * (len(table.columns) + 1),
        *("| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in zip(table.index, table.to_numpy(),
                                                                               strict=True)),
        "", f"**Verdict:** {result.verdict}", "", "Fitted models (all labelled samples):",
        *(f"- {FEATURE_LABELS[m.features]}: {m.description}" for m in result.models),
        f"- Predictions for unlabelled samples come from: {FEATURE_LABELS[result.best]}", "",
    ]
    return "\n".join(lines)
