"""The imputation hold-out check: hide measured values, let the model fill them in, compare.

This is how a user sees, on their own cohort, how much to trust imputed values: a share of
each sample's measured genes is set to the missing-value placeholder, the model predicts them,
and the predictions are scored against the hidden truth, overall, per sample and by how highly
the gene was expressed. Two simple baselines fill in the same hidden values from the user's
other samples (each gene's mean; k nearest samples), and :func:`verdict` says in words whether
the model beats them, with the thresholds stated as constants below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bulkformer.errors import BulkFormerError
from bulkformer.model._config import MISSING
from bulkformer.model._masking import hidden_count

METRIC_COLUMNS = ("pearson", "spearman", "mae", "n")


@dataclass(frozen=True)
class Holdout:
    """``values``: the input with hidden entries set to -10; ``hidden``: which entries those are;
    ``fraction``: the share of each sample's measured genes that was hidden."""

    values: np.ndarray
    hidden: np.ndarray
    fraction: float


def hide_measured(values: np.ndarray, observed: np.ndarray, *, fraction: float = 0.1, seed: int = 0) -> Holdout:
    """Per sample, hide :func:`~bulkformer.model._masking.hidden_count` of its measured genes at random
    (``fraction × measured`` rounded half up, at least one).

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
    counts = hidden_count(measured.sum(axis=1), fraction)
    for row, (where, k) in enumerate(zip(measured, counts, strict=True)):
        hidden[row, rng.choice(np.flatnonzero(where), size=k, replace=False)] = True
    masked = values.copy()
    masked[hidden] = MISSING
    return Holdout(masked, hidden, fraction)


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


# --- baselines and the verdict -------------------------------------------------------------

#: Names of the methods in :class:`HoldoutComparison` tables, the model first.
MODEL = "BulkFormer"
GENE_MEAN = "gene mean"
KNN = "kNN"
#: With this many samples or fewer there are too few other samples for an across-sample
#: baseline, and no verdict.
MAX_SAMPLES_WITHOUT_BASELINE = 3
#: The kNN baseline averages this many nearest samples (``n_samples - 1`` in a smaller cohort).
KNN_NEIGHBOURS = 5
#: The model clearly beats (trails) the best baseline when its pooled Pearson r is higher
#: (lower) by at least this much …
R_MARGIN = 0.02
#: … or its mean absolute error is lower (higher) by at least this share of the baseline's.
MAE_MARGIN = 0.05
VERDICT_LEVELS = ("better", "no better", "worse", "cannot judge")
#: A filled-in value this close to the real one (log(TPM + 1)) counts as close: a factor of about 1.6 in TPM.
CLOSE_TOLERANCE = 0.5
TABLE_COLUMNS = ("method", "scope", "group", *METRIC_COLUMNS)


@dataclass(frozen=True, eq=False)
class HoldoutComparison:
    """The model and the baselines scored on the same hidden values.

    ``scores`` maps each method (:data:`MODEL`, then :data:`GENE_MEAN` and :data:`KNN` when the
    cohort is big enough) to its :class:`ImputationScore`; ``truth`` ``[n]`` holds the hidden
    true values that were scored and ``guesses`` each method's values for them (same order).
    ``baseline_note`` says why there are no baselines ("" when there are).
    """

    fraction: float
    n_samples: int
    n_model_genes: int
    n_measured_genes: int
    knn_neighbours: int | None
    scores: dict[str, ImputationScore]
    truth: np.ndarray
    guesses: dict[str, np.ndarray]
    baseline_note: str

    @property
    def baselines(self) -> tuple[str, ...]:
        return tuple(m for m in self.scores if m != MODEL)

    def best_baseline(self, metric: str) -> str | None:
        """The baseline with the best ``metric`` (highest correlation, lowest ``mae``), or ``None``."""
        if not self.baselines:
            return None
        if metric == "mae":
            return min(self.baselines, key=lambda m: self.scores[m].mae)
        return max(self.baselines, key=lambda m: _r(getattr(self.scores[m], metric)))

    @property
    def table(self) -> pd.DataFrame:
        """One tidy table: ``method``, ``scope`` (overall / level / sample), ``group`` (``all``,
        the expression level or the sample ID), then ``pearson``, ``spearman``, ``mae``, ``n``."""
        parts = []
        for method, score in self.scores.items():
            overall = pd.DataFrame([[method, "overall", "all", score.pearson, score.spearman, score.mae, score.n]],
                                   columns=list(TABLE_COLUMNS))
            levels = score.by_level.rename(columns={"level": "group"}).assign(method=method, scope="level")
            samples = (score.per_sample.rename_axis("group").reset_index()
                       .assign(method=method, scope="sample"))
            parts += [overall, levels[list(TABLE_COLUMNS)], samples[list(TABLE_COLUMNS)]]
        return pd.concat(parts, ignore_index=True).astype({"n": np.int64})


def compare_with_baselines(
    values: np.ndarray,
    holdout: Holdout,
    imputed: np.ndarray,
    *,
    observed: np.ndarray,
    sample_ids: Sequence[str],
) -> HoldoutComparison:
    """Score the model's ``imputed`` values and two baselines on the entries ``holdout`` hid.

    Baselines see exactly what the model saw (``holdout.values``), across samples: each gene's
    mean over the other samples that measured it, and scikit-learn's ``KNNImputer`` over the
    samples (k = min(:data:`KNN_NEIGHBOURS`, samples - 1)). With at most
    :data:`MAX_SAMPLES_WITHOUT_BASELINE` samples only the model is scored. An entry is scored
    for every method or for none: entries whose gene no other sample shows are left out.

    Shapes:
        values, imputed: ``[samples, genes]`` log1p TPM (``values`` with -10 where not measured);
        observed: ``[genes]`` bool, the genes the table measured.
    """
    from sklearn.impute import KNNImputer

    values = np.asarray(values, dtype=np.float64)
    imputed = np.asarray(imputed, dtype=np.float64)
    observed = np.asarray(observed, dtype=bool)
    hidden = np.asarray(holdout.hidden, dtype=bool)
    if not values.shape == imputed.shape == hidden.shape or observed.shape != values.shape[1:]:
        raise BulkFormerError(f"Shapes do not match: values {values.shape}, imputed {imputed.shape}, "
                              f"hidden {hidden.shape}, observed {observed.shape}.")
    n_samples = values.shape[0]
    guesses = {MODEL: imputed}
    note, k = "", None
    if n_samples <= MAX_SAMPLES_WITHOUT_BASELINE:
        note = (f"With {n_samples} sample(s) there are too few other samples to fill in a value from "
                f"(the baselines need at least {MAX_SAMPLES_WITHOUT_BASELINE + 1}), so the model cannot be "
                "compared with anything.")
    else:
        shown = np.where(holdout.values == MISSING, np.nan, holdout.values).astype(np.float64)[:, observed]
        # A hidden entry is NaN in its own row, so the column mean is over the other samples.
        seen = ~np.isnan(shown)
        column_mean = np.divide(np.nansum(shown, axis=0), seen.sum(axis=0),
                                out=np.full(shown.shape[1], np.nan), where=seen.any(axis=0))
        gene_mean = np.full_like(values, np.nan)
        gene_mean[:, observed] = column_mean
        k = min(KNN_NEIGHBOURS, n_samples - 1)
        knn = np.full_like(values, np.nan)
        knn[:, observed] = KNNImputer(n_neighbors=k, keep_empty_features=True).fit_transform(shown)
        hidden = hidden & ~np.isnan(gene_mean)  # a gene no other sample shows: no baseline guess
        guesses |= {GENE_MEAN: gene_mean, KNN: knn}
    scores = {method: score_imputation(values, guess, hidden, sample_ids=sample_ids)
              for method, guess in guesses.items()}
    return HoldoutComparison(
        fraction=holdout.fraction, n_samples=n_samples, n_model_genes=int(observed.size),
        n_measured_genes=int(observed.sum()), knn_neighbours=k, scores=scores,
        truth=values[hidden].astype(np.float32),
        guesses={m: g[hidden].astype(np.float32) for m, g in guesses.items()}, baseline_note=note)


@dataclass(frozen=True)
class Verdict:
    """What the hold-out check means, in words.

    ``level`` is one of :data:`VERDICT_LEVELS`; ``headline`` says it in one phrase, ``sentence``
    gives the numbers, ``meaning`` what follows for the imputed values, ``warnings`` anything
    that weakens the check (low coverage).
    """

    level: str
    headline: str
    sentence: str
    meaning: str
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Plain-text lines (CLI, run report)."""
        return [f"Verdict: {self.headline}", self.sentence, self.meaning, *(f"Warning: {w}" for w in self.warnings)]


def verdict(comparison: HoldoutComparison) -> Verdict:
    """Judge the model against the best baseline with :data:`R_MARGIN` and :data:`MAE_MARGIN`.

    Clearly better on Pearson r or MAE and clearly worse on neither: ``better``; the reverse:
    ``worse``; otherwise ``no better``. An undefined correlation (a model whose values do not
    vary) counts as r = 0. No baselines (tiny cohort): ``cannot judge``.
    """
    from bulkformer.inputs._qc import low_coverage_warning

    warnings = tuple(w for w in [low_coverage_warning(comparison.n_measured_genes, comparison.n_model_genes)] if w)
    model = comparison.scores[MODEL]
    model_words = _describe(MODEL, comparison)
    hidden_words = (f"Scored on {model.n:,} measured values hidden across {comparison.n_samples:,} samples "
                    f"({comparison.fraction:.0%} of each sample's measured genes)")
    if not comparison.baselines:
        return Verdict("cannot judge", "cannot judge: no baseline to compare with",
                       f"{hidden_words}. {model_words}. {comparison.baseline_note}",
                       "Without a baseline these numbers cannot tell whether the imputed values are better than "
                       "a simple guess: treat imputed genes from this model as unverified for this data.", warnings)
    if model.n == 0:
        return Verdict("cannot judge", "cannot judge: no values could be scored",
                       f"No hidden value could be scored: {comparison.n_samples:,} samples, "
                       f"{comparison.fraction:.0%} of each sample's measured genes hidden.",
                       "Hide a larger share of the measured genes, or add samples.", warnings)
    r_model = _r(model.pearson)
    r_gain = r_model - _r(comparison.scores[comparison.best_baseline("pearson")].pearson)
    mae_base = comparison.scores[comparison.best_baseline("mae")].mae
    better = (r_gain >= R_MARGIN) or (model.mae <= (1 - MAE_MARGIN) * mae_base)
    worse = (r_gain <= -R_MARGIN) or (model.mae >= (1 + MAE_MARGIN) * mae_base)
    level = "better" if better and not worse else "worse" if worse and not better else "no better"
    baseline_words = "; ".join(_describe(m, comparison) for m in comparison.baselines)
    sentence = f"{hidden_words}, the same values for every method. {model_words}; {baseline_words}."
    headline, meaning = {
        "better": ("the model clearly beats the simple baselines",
                   ("The imputed values carry information beyond each gene's level in your other samples; "
                    "still check the genes you rely on (see the levels and samples below).")),
        "no better": ("the model is no better than the simple baselines",
                      ("Imputed genes from this model add nothing over a simple guess from your other "
                       "samples (a gene's average there, or its value in the most similar samples): do not "
                       "rely on imputed genes from this model for this data.")),
        "worse": ("the model is worse than the simple baselines",
                  ("A simple guess from your other samples is better than the model: do not rely on imputed "
                   "genes from this model for this data.")),
    }[level]
    return Verdict(level, headline, sentence, meaning, warnings)


def share_close(comparison: HoldoutComparison, method: str, *, tolerance: float = CLOSE_TOLERANCE) -> float:
    """Share of ``method``'s filled-in values within ``tolerance`` of the hidden truth (NaN when
    nothing was scored), so that the model's share can be read beside a baseline's."""
    if not comparison.truth.size:
        return float("nan")
    return float(np.mean(np.abs(comparison.guesses[method] - comparison.truth) <= tolerance))


def _r(value: float) -> float:
    """A correlation for comparing: undefined (NaN) counts as no correlation."""
    return 0.0 if math.isnan(value) else value


def _describe(method: str, comparison: HoldoutComparison) -> str:
    """``BulkFormer: Pearson r 0.960, MAE 0.310, within expression levels r 0.63 to 0.89``."""
    score = comparison.scores[method]
    label = {GENE_MEAN: "gene mean over your other samples",
             KNN: f"kNN ({comparison.knn_neighbours} nearest samples)"}.get(method, method)
    r = "undefined (its values do not vary)" if math.isnan(score.pearson) else f"{score.pearson:.3f}"
    words = f"{label}: Pearson r {r}, MAE {score.mae:.3f}"
    within = score.by_level["pearson"].dropna()
    if len(within) > 1:
        words += f", within expression levels r {within.min():.2f} to {within.max():.2f}"
    return words


def describe_levels(comparison: HoldoutComparison) -> str:
    """What the per-level rows say, computed from them (never fixed text that can contradict them)."""
    model = comparison.scores[MODEL]
    levels = model.by_level
    sentences = []
    within = levels["pearson"].dropna()
    if len(within) and not math.isnan(model.pearson):
        sentence = (f"Within expression levels the model's Pearson r is {within.min():.2f} to {within.max():.2f}, "
                    f"against {model.pearson:.2f} over all hidden values")
        if model.pearson > within.max():
            sentence += ("; the overall number is higher because it also rewards knowing which genes are "
                         "typically high or low, which a gene's average already knows")
        sentences.append(sentence + ".")
    unexpressed = levels[levels["level"].str.startswith("0")]
    expressed = levels[~levels["level"].str.startswith("0")]
    if len(unexpressed) and len(expressed) and expressed["n"].sum():
        mae_zero = float(unexpressed["mae"].iloc[0])
        mae_expressed = float(np.average(expressed["mae"], weights=expressed["n"]))
        words = ("about the same as" if round(mae_zero, 2) == round(mae_expressed, 2)
                 else "smaller than" if mae_zero < mae_expressed else "larger than")
        sentences.append(f"For genes that were not expressed (true value 0) the model's mean absolute error is "
                         f"{mae_zero:.2f}, {words} for expressed genes ({mae_expressed:.2f}).")
    if comparison.baselines:
        best = []
        for row, level in enumerate(levels["level"]):
            rs = {m: s.by_level["pearson"].iloc[row] for m, s in comparison.scores.items()}
            if not all(math.isnan(r) for r in rs.values()):  # a constant level has no correlation
                winner = max(rs, key=lambda m: _r(rs[m]))
                best.append(f"{level.split(' (')[0]}: {winner}")
        if best:
            sentences.append("Highest Pearson r per expression level: " + "; ".join(best) + ".")
    return " ".join(sentences)
