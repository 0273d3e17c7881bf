"""The imputation hold-out check: hide measured values, let the model fill them in, compare.

This is how a user sees, on their own cohort, how much to trust imputed values: a share of
each sample's measured genes is set to the missing-value placeholder, the model predicts them,
and the predictions are scored against the hidden truth, overall, per sample and by how highly
the gene was expressed (imputing an unexpressed gene as unexpressed is easy; the levels show
where the model is right and where it is not).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bulkformer.errors import BulkFormerError
from bulkformer.model import MISSING

METRIC_COLUMNS = ("pearson", "spearman", "mae", "n")


@dataclass(frozen=True)
class Holdout:
    """``values``: the input with hidden entries set to -10; ``hidden``: which entries those are."""

    values: np.ndarray
    hidden: np.ndarray


def hide_measured(values: np.ndarray, observed: np.ndarray, *, fraction: float = 0.1, seed: int = 0) -> Holdout:
    """Per sample, hide ``round(fraction × measured genes)`` of its measured genes at random.

    A gene counts as measured where ``observed`` is True (``[genes]`` or ``[samples, genes]``)
    and the value is not already the placeholder.
    """
    if not 0 < fraction < 1:
        raise BulkFormerError(f"The share of genes to hide must be between 0 and 1; got {fraction}.",
                              hint="For example 0.1 hides 10% of each sample's measured genes.")
    values = np.asarray(values, dtype=np.float32)
    measured = np.broadcast_to(np.asarray(observed, dtype=bool), values.shape) & (values != MISSING)
    rng = np.random.default_rng(seed)
    hidden = np.zeros(values.shape, dtype=bool)
    for row, where in enumerate(measured):
        candidates = np.flatnonzero(where)
        k = math.floor(fraction * len(candidates) + 0.5)
        hidden[row, rng.choice(candidates, size=k, replace=False)] = True
    masked = values.copy()
    masked[hidden] = MISSING
    return Holdout(masked, hidden)


@dataclass(frozen=True)
class ImputationScore:
    """Agreement of imputed with hidden true values (log1p TPM), over the hidden entries only.

    ``per_sample`` is indexed by sample ID; ``by_level`` has one row per expression level of the
    true value: ``0`` (not expressed), then low / mid / high thirds of the expressed values.
    Correlations are NaN where undefined (fewer than two values, or a constant vector).
    """

    pearson: float
    spearman: float
    mae: float
    n: int
    per_sample: pd.DataFrame
    by_level: pd.DataFrame


def score_imputation(
    truth: np.ndarray, imputed: np.ndarray, hidden: np.ndarray, *, sample_ids: Sequence[str]
) -> ImputationScore:
    """Pearson, Spearman and mean absolute error between ``truth`` and ``imputed`` where ``hidden``."""
    truth, imputed = np.asarray(truth, dtype=np.float64), np.asarray(imputed, dtype=np.float64)
    hidden = np.asarray(hidden, dtype=bool)
    if not truth.shape == imputed.shape == hidden.shape or truth.ndim != 2 or len(sample_ids) != truth.shape[0]:
        raise BulkFormerError(
            f"Shapes do not match: truth {truth.shape}, imputed {imputed.shape}, hidden {hidden.shape}, "
            f"{len(sample_ids)} sample IDs.")
    pooled = _metrics(truth[hidden], imputed[hidden])
    per_sample = pd.DataFrame(
        [_metrics(t[h], i[h]) for t, i, h in zip(truth, imputed, hidden, strict=True)],
        index=pd.Index(list(sample_ids), name="sample_id"), columns=list(METRIC_COLUMNS),
    ).astype({"n": np.int64})
    return ImputationScore(*pooled, per_sample=per_sample, by_level=_by_level(truth[hidden], imputed[hidden]))


def _by_level(truth: np.ndarray, imputed: np.ndarray) -> pd.DataFrame:
    """Metrics for unexpressed genes (true value 0) and for thirds of the expressed ones."""
    rows = [("0 (not expressed)", truth == 0)] if (truth == 0).any() else []
    expressed = truth > 0
    if expressed.any():
        low, high = np.quantile(truth[expressed], [1 / 3, 2 / 3])
        bins = (("low", truth <= low), ("mid", (truth > low) & (truth <= high)), ("high", truth > high))
        for name, where in bins:
            where = where & expressed
            if where.any():
                rows.append((f"{name} ({truth[where].min():.2f}–{truth[where].max():.2f})", where))
    table = pd.DataFrame(
        [(name, *_metrics(truth[where], imputed[where])) for name, where in rows],
        columns=["level", *METRIC_COLUMNS],
    )
    return table.astype({"n": np.int64})


def _metrics(truth: np.ndarray, guess: np.ndarray) -> tuple[float, float, float, int]:
    """(Pearson, Spearman, MAE, n); correlations NaN where undefined, without scipy's warnings."""
    n = int(truth.size)
    mae = float(np.abs(truth - guess).mean()) if n else math.nan
    if n < 2 or np.ptp(truth) == 0 or np.ptp(guess) == 0:
        return math.nan, math.nan, mae, n
    pearson = float(stats.pearsonr(truth, guess).statistic)
    spearman = float(stats.spearmanr(truth, guess).statistic)
    return pearson, spearman, mae, n
