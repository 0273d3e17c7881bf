"""Scores of out-of-fold predictions (scikit-learn's definitions in plain NumPy) and how
p-values are written."""

from __future__ import annotations

import numpy as np
from scipy import stats

from bulkformer.analysis.predict.targets import Target

METRIC_LABELS = {
    "balanced_accuracy": "balanced accuracy", "weighted_f1": "weighted F1", "auroc": "AUROC",
    "r2": "R²", "pearson": "Pearson r", "c_index": "C-index",
}
#: What each score means and its scale (the app's column help; :func:`chance_level` gives guessing's score).
METRIC_MEANINGS = {
    "balanced_accuracy": "Share of each class predicted right, averaged over classes: 1 = all right.",
    "weighted_f1": "F1 (precision and recall together) per class, weighted by class size: 1 = all right.",
    "auroc": "How well the predicted probabilities rank the samples of one class above the others: "
             "1 = perfectly, 0.5 = no better than a coin.",
    "r2": "Share of the variance explained: 1 = perfect, 0 = no better than predicting the average, "
          "below 0 = worse than that.",
    "pearson": "Correlation of predicted and observed values: 1 = a perfect straight line, 0 = none.",
    "c_index": "Share of sample pairs whose predicted risks order their event times right: 1 = all, "
               "0.5 = no better than a coin.",
}
PRIMARY = {"classification": "balanced_accuracy", "regression": "r2", "survival": "c_index"}
"""The metric the permutation test, the comparison and the verdict use."""


def fold_metrics(target: Target, rows: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """All metrics of ``target``'s kind for predictions ``output`` of labelled samples ``rows``.

    Plain NumPy (scikit-learn's definitions; tests compare them): the permutation test calls
    this thousands of times, where scikit-learn's input checks would dominate.
    """
    if target.kind == "classification":
        truth = target.values[rows]
        predicted = np.asarray(target.classes, dtype=object)[output.argmax(axis=1)]
        out = {"balanced_accuracy": balanced_accuracy(truth, predicted), "weighted_f1": weighted_f1(truth, predicted)}
        if len(target.classes) == 2:
            out["auroc"] = auroc(truth == target.classes[1], output[:, 1])
        return out
    if target.kind == "regression":
        truth = target.values[rows]
        output = np.asarray(output, dtype=np.float64)
        total = float(np.sum((truth - truth.mean()) ** 2))
        r2 = 1.0 - float(np.sum((truth - output) ** 2)) / total if len(rows) > 1 and total > 0 else np.nan
        ok = len(rows) > 2 and np.ptp(output) > 0 and np.ptp(truth) > 0
        return {"r2": r2, "pearson": float(np.corrcoef(truth, output)[0, 1]) if ok else np.nan}
    from sksurv.metrics import concordance_index_censored

    events, times = target.events[rows], target.values[rows]
    if events.sum() == 0:
        return {"c_index": np.nan}
    try:
        return {"c_index": float(concordance_index_censored(events, times, output)[0])}
    except ValueError:  # no comparable pair in this fold
        return {"c_index": np.nan}


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes in ``truth`` of the share of their samples predicted right."""
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))


def weighted_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """F1 of each class in ``truth``, weighted by its number of samples."""
    total = 0.0
    for c in np.unique(truth):
        tp = np.sum((truth == c) & (predicted == c))
        wrong = np.sum((truth == c) != (predicted == c))  # false positives + false negatives
        total += np.sum(truth == c) * 2 * tp / (2 * tp + wrong)
    return float(total / len(truth))


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U with tied ranks averaged); NaN with one class."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.nan
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def metric_names(target: Target) -> tuple[str, ...]:
    if target.kind == "classification":
        return ("balanced_accuracy", "weighted_f1", "auroc") if len(target.classes) == 2 else (
            "balanced_accuracy", "weighted_f1")
    return ("r2", "pearson") if target.kind == "regression" else ("c_index",)


def chance_level(target: Target, metric: str) -> float | None:
    """What guessing scores on ``metric`` (None where it depends on the class sizes)."""
    return {"balanced_accuracy": 1.0 / max(1, len(target.classes)), "auroc": 0.5, "r2": 0.0,
            "pearson": 0.0, "c_index": 0.5}.get(metric)


def format_p(p: float, n_permutations: int) -> str:
    """A permutation p-value; at the floor 1/(n+1) it is written as an upper bound."""
    floor = 1.0 / (n_permutations + 1)
    if not np.isfinite(p):
        return "n/a"
    return f"≤ {floor:.2g}" if p <= floor + 1e-12 else f"{p:.2g}"


def p_text(p: float, n_permutations: int) -> str:
    """"p = 0.23" or, at the permutation floor, "p ≤ 0.01"."""
    shown = format_p(p, n_permutations)
    return f"p {shown}" if shown.startswith("≤") else f"p = {shown}"
