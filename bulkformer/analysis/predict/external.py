"""External validation: models chosen and fitted on one cohort, scored once on another.

Cross-validation inside one cohort shares everything the cohort's samples share (the lab, the
protocol, the batch, how the labels were assigned), so its score says how well a model carries
to *more samples like these*. Scoring once on a second cohort (another study, another lab) says
how well it carries to *new data*, which is the claim people want to make. Here each feature
set's model is tuned and fitted on cohort A exactly as :func:`~bulkformer.analysis.predict.evaluate`
fits its final models, then applied to cohort B: the embeddings of B come from the same BulkFormer
model; B's PCA scores from A's fitted PCA (no peeking at B). Genes measured in one cohort and not
the other cannot enter a PCA fitted on A and applied to B, so the PCA baseline is refitted on A over
the genes both measured; the embeddings need no shared genes.

The scores on B come with 95 % bootstrap intervals over B's samples, beside what a model that
always predicts A's majority class (or A's mean) scores on B.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bulkformer.analysis.predict.metrics import (
    METRIC_LABELS,
    PRIMARY,
    fold_metrics,
    metric_names,
)
from bulkformer.analysis.predict.models import FEATURE_LABELS, FEATURE_SETS
from bulkformer.analysis.predict.results import PredictionResult
from bulkformer.analysis.predict.saved import Predictor, fit_predictor
from bulkformer.analysis.predict.targets import (
    MIN_LABELLED,
    Target,
    _blank_to_missing,
    _label_text,
    _survival_target,
)
from bulkformer.choices import Tone
from bulkformer.errors import InputError

DEFAULT_BOOTSTRAP = 1000
"""Resamples of the test cohort's samples for the 95 % intervals."""
MIN_SHARED_GENES = 2
"""Fewest genes measured in both cohorts for a PCA baseline at all."""
COVERAGE_RATIO = 0.5
"""Warn when one cohort measures fewer than this share of the other's genes (or of A's, shared)."""
LIBRARY_RATIO = 5.0
"""Warn when the cohorts' median library sizes differ by more than this factor."""
OVERSTATED = 0.05
"""A within-cohort score above the external one by more than this is called overstated."""


@dataclass(frozen=True, eq=False)
class CohortData:
    """One cohort as external validation reads it: embeddings, log1p TPM aligned to the model's
    genes (``values`` ``[n, genes]``, ``observed`` ``[genes]``), the sample sheet and, for the
    shift warnings, how the table was read."""

    embedding: np.ndarray
    values: np.ndarray
    observed: np.ndarray
    sample_ids: tuple[str, ...]
    gene_ids: tuple[str, ...]
    metadata: pd.DataFrame | None
    value_type: str = ""
    library_sizes: np.ndarray | None = None
    name: str = ""

    @classmethod
    def of(cls, prepared: Any, embedding: np.ndarray, *, name: str = "") -> CohortData:
        """From a :class:`~bulkformer.inputs.PreparedInput` and its sample embeddings."""
        aligned = prepared.aligned
        qc = getattr(prepared, "qc", None)
        sizes = None
        if qc is not None and "library_size" in getattr(qc, "per_sample", pd.DataFrame()).columns:
            sizes = qc.per_sample["library_size"].to_numpy(dtype=np.float64)
        return cls(np.asarray(embedding, dtype=np.float64), aligned.values, aligned.observed,
                   tuple(aligned.sample_ids), tuple(aligned.gene_ids), prepared.metadata,
                   value_type=str(getattr(qc, "value_type", "") or ""), library_sizes=sizes, name=name)


@dataclass(frozen=True)
class ExternalScore:
    """One metric of one feature set on the test cohort: value, 95 % bootstrap interval, and
    the within-cohort cross-validated mean on the training cohort (NaN when unknown)."""

    features: str
    metric: str
    value: float
    low: float
    high: float
    cv_value: float


@dataclass(frozen=True, eq=False)
class ExternalResult:
    """What scoring cohort A's models once on cohort B found.

    ``predictions``: one row per test sample and feature set (observed label where known);
    ``predictors``: the models fitted on A, one per feature set scored; ``difference``:
    embeddings minus PCA on the primary metric with its paired-bootstrap 95 % interval.
    """

    target: Target
    n_train: int
    scores: tuple[ExternalScore, ...]
    baseline: dict[str, float]
    baseline_words: str
    difference: tuple[float, float, float]
    n_genes_train: int
    n_genes_test: int
    n_shared_genes: int
    gene_note: str
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    verdict: str
    tone: Tone
    predictions: pd.DataFrame
    predictors: tuple[Predictor, ...]
    n_bootstrap: int
    seed: int

    @property
    def primary(self) -> str:
        return PRIMARY[self.target.kind]

    @property
    def feature_sets(self) -> tuple[str, ...]:
        return tuple(p.features for p in self.predictors)

    def score(self, features: str, metric: str | None = None) -> ExternalScore:
        metric = metric or self.primary
        return next(s for s in self.scores if s.features == features and s.metric == metric)

    def predictor(self, features: str) -> Predictor:
        return next(p for p in self.predictors if p.features == features)

    def table(self) -> pd.DataFrame:
        """Per feature set: each metric on the test cohort "value [low–high]" and, for the
        primary metric, the within-cohort CV score beside it; then the baseline row."""
        rows = []
        for features in self.feature_sets:
            row: dict[str, Any] = {"features": FEATURE_LABELS[features]}
            for metric in metric_names(self.target):
                s = self.score(features, metric)
                row[f"{METRIC_LABELS[metric]} on test cohort"] = _interval(s.value, s.low, s.high)
            cv = self.score(features).cv_value
            row[f"{METRIC_LABELS[self.primary]} within training cohort (CV)"] = (
                f"{cv:.3f}" if np.isfinite(cv) else "n/a")
            rows.append(row)
        base: dict[str, Any] = {"features": "baseline (" + self._baseline_name() + ")"}
        for metric in metric_names(self.target):
            v = self.baseline.get(metric, np.nan)
            base[f"{METRIC_LABELS[metric]} on test cohort"] = f"{v:.3f}" if np.isfinite(v) else "n/a"
        base[f"{METRIC_LABELS[self.primary]} within training cohort (CV)"] = ""
        rows.append(base)
        return pd.DataFrame(rows).set_index("features")

    def _baseline_name(self) -> str:
        return {"classification": "always the training cohort's most common class",
                "regression": "always the training cohort's mean",
                "survival": "the same risk for everyone"}[self.target.kind]

    def report_section(self) -> str:
        """Markdown for the run report."""
        table = self.table()
        return "\n".join([
            f"## Predicting {self.target.name} on a second cohort", "",
            (f"- Models chosen and fitted on the training cohort ({self.n_train} labelled samples), scored once on "
             f"the test cohort ({self.target.n_labelled} labelled samples); 95 % intervals from "
             f"{self.n_bootstrap} bootstrap resamples of the test samples (seed {self.seed})"),
            f"- Genes: {self.gene_note}",
            *(f"- Warning: {w}" for w in self.warnings), *(f"- Note: {n}" for n in self.notes),
            "", "| features | " + " | ".join(table.columns) + " |", "|" + "---|" * (len(table.columns) + 1),
            *("| " + " | ".join([str(i), *map(str, row)]) + " |"
              for i, row in zip(table.index, table.to_numpy(), strict=True)),
            "", f"**Verdict on the test cohort:** {self.verdict}", "", f"Baseline: {self.baseline_words}", "",
        ])


def _interval(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.3f} [{low:.3f}–{high:.3f}]" if np.isfinite(low) and np.isfinite(high) else f"{value:.3f}"


def read_test_target(metadata: pd.DataFrame | None, train: Target) -> tuple[Target, tuple[str, ...]]:
    """The training task's column read from the test cohort's sample sheet, with notes.

    Classes the training cohort never saw cannot be predicted right: their samples are left out
    of the scores (and said so). Rare classes are fine here: nothing is trained on B.
    """
    columns = [c for c in (train.column, train.event_column) if c]
    if metadata is None or metadata.shape[1] == 0:
        raise InputError("The test cohort has no sample sheet, so its predictions cannot be scored.",
                         hint=f"Add a sample sheet for the test cohort with the column {train.column!r}.")
    for column in columns:
        if column not in metadata.columns:
            raise InputError(f"The test cohort's sample sheet has no column {column!r}.",
                             hint=f"Name the column as in the training cohort's sheet ({column!r}); it has: "
                                  f"{', '.join(map(str, metadata.columns))}.")
    ids = tuple(str(s) for s in metadata.index)
    notes: list[str] = []
    if train.kind == "survival":
        target = _survival_target(_blank_to_missing(metadata[train.column]),
                                  _blank_to_missing(metadata[train.event_column]), train.column,
                                  str(train.event_column), ids)
        return target, ()
    raw = _blank_to_missing(metadata[train.column])
    labelled = raw.notna().to_numpy()
    if train.kind == "regression":
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & numbers.isna()
        if bad.any():
            raise InputError(f"The test cohort's {train.column!r} has values that are not numbers "
                             f"(e.g. {raw[bad].iloc[0]!r}).", hint="Give one number per sample, or leave the cell empty.")
        values = numbers[labelled].to_numpy(dtype=np.float64)
        target = Target("regression", train.column, None, ids, labelled, values, None, (), train.reason)
    else:
        text = np.array([_label_text(v) if ok else "" for v, ok in zip(raw, labelled, strict=True)], dtype=object)
        unknown = labelled & ~np.isin(text, np.asarray(train.classes, dtype=object))
        if unknown.any():
            counts = Counter(text[unknown])
            notes.append(f"{int(unknown.sum())} test samples belong to classes the training cohort does not have "
                         f"({', '.join(f'{c!r} ({n})' for c, n in counts.most_common(5))}): they are predicted but "
                         "left out of the scores.")
        labelled = labelled & ~unknown
        target = Target("classification", train.column, None, ids, labelled, text[labelled], None, train.classes,
                        train.reason)
    if target.n_labelled < MIN_LABELLED:
        raise InputError(f"Only {target.n_labelled} test samples have a usable {train.column!r}; at least "
                         f"{MIN_LABELLED} are needed to score the models.",
                         hint="Fill in the labels of the test cohort's sample sheet.")
    return target, tuple(notes)


def validate_external(
    result: PredictionResult,
    train: CohortData,
    test: CohortData,
    *,
    model_checksum: str,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ExternalResult:
    """Fit each feature set's model on ``train`` (the cohort ``result`` cross-validated) and
    score it once on ``test``.

    Parameters
    ----------
    result
        :func:`~bulkformer.analysis.predict.evaluate` on ``train``: its task, settings and
        within-cohort scores.
    train, test
        The two cohorts, aligned to the same BulkFormer model (same gene order); ``test`` has a
        sample sheet with the task's column.
    model_checksum
        The model's checksum, written into the fitted predictors.
    n_bootstrap
        Resamples of ``test``'s labelled samples for the 95 % intervals.
    seed
        Inner-CV folds and bootstrap resamples.
    progress, should_stop
        Called as work proceeds (``progress(done, total)``); ``should_stop()`` cancels.

    Returns
    -------
    :class:`ExternalResult`. The PCA (and "both") models are fitted on ``train`` over the genes
    measured in both cohorts; with fewer than :data:`MIN_SHARED_GENES` of them only the
    embeddings are scored.
    """
    target = result.target
    if tuple(train.gene_ids) != tuple(test.gene_ids):
        raise InputError("The two cohorts were aligned to different gene lists.",
                         hint="Read both tables with the same BulkFormer model.")
    if tuple(train.sample_ids) != tuple(target.sample_ids):
        raise InputError("The training cohort's samples are not the ones the cross-validation used.",
                         hint="Pass the same table for the cross-validation and the external validation.")
    test_labels, notes = read_test_target(test.metadata, target)
    stop = should_stop or (lambda: False)
    observed_a, observed_b = np.asarray(train.observed, bool), np.asarray(test.observed, bool)
    shared = observed_a & observed_b
    genes = tuple(g for g, keep in zip(train.gene_ids, shared, strict=True) if keep)
    feature_sets = FEATURE_SETS if len(genes) >= MIN_SHARED_GENES else ("embeddings",)
    gene_note = _gene_note(int(observed_a.sum()), int(observed_b.sum()), len(genes), scored=feature_sets)
    total = len(feature_sets) + 1
    predictors, outputs = [], {}
    options = {"seed": seed, "n_permutations": result.n_permutations, "plan": result.plan.description,
               "n_labelled": target.n_labelled, "genes": gene_note}
    for i, features in enumerate(feature_sets):
        if stop():
            from bulkformer.model._inference import InferenceCancelled

            raise InferenceCancelled("The external validation was cancelled.")
        summary = result.summary(features)
        cv_scores = {m.metric: {"value": m.value, "spread": m.spread} for m in summary.scores}
        cv_scores["p_value"] = summary.p_value
        predictor, _ = fit_predictor(
            target, train.embedding, np.asarray(train.values, np.float64)[:, shared], features=features,
            genes=genes, model_checksum=model_checksum, model_gene_ids=train.gene_ids, seed=seed,
            cv_scores=cv_scores, options=options)
        predictors.append(predictor)
        outputs[features] = predictor.output(test.embedding, np.asarray(test.values, np.float64)[:, shared])
        if progress is not None:
            progress(i + 1, total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores, difference, baseline = _score(result, test_labels, outputs, n_bootstrap=n_bootstrap, seed=seed)
    if progress is not None:
        progress(total, total)
    tone, verdict = external_verdict(test_labels, scores, baseline, difference, feature_sets)
    return ExternalResult(
        target=test_labels, n_train=target.n_labelled, scores=scores, baseline=baseline,
        baseline_words=_baseline_words(target, test_labels, baseline), difference=difference,
        n_genes_train=int(observed_a.sum()), n_genes_test=int(observed_b.sum()), n_shared_genes=len(genes),
        gene_note=gene_note, warnings=shift_warnings(train, test), notes=notes, verdict=verdict, tone=tone,
        predictions=_predictions(test, test_labels, predictors, outputs), predictors=tuple(predictors),
        n_bootstrap=n_bootstrap, seed=seed)


def _gene_note(n_a: int, n_b: int, n_shared: int, *, scored: Sequence[str]) -> str:
    """Which genes each feature set used, in words (stated wherever the scores are)."""
    text = (f"the training cohort measured {n_a:,} of the model's genes, the test cohort {n_b:,}; "
            f"{n_shared:,} in both. ")
    if "pca" not in scored:
        return text + (f"Too few genes in common (under {MIN_SHARED_GENES}) for a PCA baseline: only the embeddings "
                       "were scored. The BulkFormer model makes embeddings from whatever genes a table has, so "
                       "they need no shared genes.")
    refit = (f"The PCA baseline was refitted on the training cohort over those {n_shared:,} shared genes"
             if n_shared < n_a else "The PCA baseline used all the training cohort's genes (the test cohort has "
                                    "them all)")
    return text + refit + (" (a gene the test cohort lacks cannot enter a PCA applied to it); the embeddings need no "
                           "shared genes: the model makes them from whatever genes each table has, an honest "
                           "advantage of the model when cohorts measure different genes.")


def _score(result: PredictionResult, target: Target, outputs: dict[str, np.ndarray], *, n_bootstrap: int,
           seed: int) -> tuple[tuple[ExternalScore, ...], tuple[float, float, float], dict[str, float]]:
    """Each feature set's metrics on the labelled test samples, with percentile intervals over
    the same bootstrap resamples for all (so the embeddings − PCA difference is paired)."""
    rows = np.flatnonzero(target.labelled)
    n = len(rows)
    local = np.arange(n)
    labelled_out = {f: o[rows] for f, o in outputs.items()}
    names = metric_names(target)
    point = {f: fold_metrics(target, local, o) for f, o in labelled_out.items()}
    rng = np.random.default_rng(seed)
    boot = {f: {m: np.full(n_bootstrap, np.nan) for m in names} for f in outputs}
    for b in range(n_bootstrap):
        pick = rng.integers(0, n, n)
        for f, o in labelled_out.items():
            for m, v in fold_metrics(target, pick, o[pick]).items():
                boot[f][m][b] = v
    scores = []
    for f in outputs:
        cv = result.summary(f)
        for m in names:
            low, high = _percentiles(boot[f][m])
            cv_value = cv.score(m).value if any(s.metric == m for s in cv.scores) else np.nan
            scores.append(ExternalScore(f, m, float(point[f].get(m, np.nan)), low, high, float(cv_value)))
    primary = PRIMARY[target.kind]
    if "pca" in outputs:
        diff = boot["embeddings"][primary] - boot["pca"][primary]
        difference = (float(point["embeddings"][primary] - point["pca"][primary]), *_percentiles(diff))
    else:
        difference = (np.nan, np.nan, np.nan)
    return tuple(scores), difference, _baseline(result.target, target)


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    ok = values[np.isfinite(values)]
    if len(ok) < 10:
        return np.nan, np.nan
    low, high = np.percentile(ok, [2.5, 97.5])
    return float(low), float(high)


def _baseline(train: Target, test: Target) -> dict[str, float]:
    """What a model that learned nothing from the expression scores on the test cohort: the
    training cohort's most common class (or mean, or one risk for all) for every sample."""
    n = test.n_labelled
    if train.kind == "classification":
        counts = Counter(train.values)
        majority = max(train.classes, key=lambda c: (counts[c], -train.classes.index(c)))
        output = np.zeros((n, len(train.classes)))
        output[:, train.classes.index(majority)] = 1.0
        # AUROC of one score for all is 0.5 by definition (ties); the formula gives it too.
    elif train.kind == "regression":
        output = np.full(n, float(np.mean(train.values)))
    else:
        output = np.zeros(n)
    return {k: float(v) for k, v in fold_metrics(test, np.arange(n), output).items()}


def _baseline_words(train: Target, test: Target, baseline: dict[str, float]) -> str:
    primary = PRIMARY[test.kind]
    label = METRIC_LABELS[primary]
    value = baseline.get(primary, np.nan)
    if test.kind == "classification":
        counts = Counter(train.values)
        majority = max(train.classes, key=lambda c: (counts[c], -train.classes.index(c)))
        return (f"always predicting the training cohort's most common class ({majority}) scores {label} "
                f"{value:.2f} on the test cohort.")
    if test.kind == "regression":
        return (f"predicting the training cohort's mean ({np.mean(train.values):.3g}) for every test sample scores "
                f"{label} {value:.2f} (0 or below: the test cohort's own mean differs).")
    return f"giving every test sample the same risk scores {label} {value:.2f}."


def external_verdict(target: Target, scores: Sequence[ExternalScore], baseline: dict[str, float],
                     difference: tuple[float, float, float], feature_sets: Sequence[str]) -> tuple[Tone, str]:
    """The external scores in words: better than the baseline? as good as within the cohort?
    embeddings vs PCA on the test cohort?"""
    primary = PRIMARY[target.kind]
    label = METRIC_LABELS[primary]
    emb = next(s for s in scores if s.features == "embeddings" and s.metric == primary)
    base = baseline.get(primary, np.nan)
    column = target.name
    shown = _interval(emb.value, emb.low, emb.high)
    beats_base = np.isfinite(emb.low) and emb.low > base
    if beats_base:
        text = (f"On the test cohort the embeddings' model predicts {column} better than the baseline "
                f"({label} {shown} against {base:.2f}).")
    else:
        text = (f"On the test cohort the embeddings' model predicts {column} no better than the baseline "
                f"({label} {shown} against {base:.2f}: the interval reaches it).")
    if np.isfinite(emb.cv_value):
        drop = emb.cv_value - emb.value
        if drop > OVERSTATED:
            text += (f" Within the training cohort it scored {emb.cv_value:.2f}: the within-cohort score overstated "
                     f"how well it carries to a new cohort by {drop:.2f}.")
        else:
            text += f" Within the training cohort it scored {emb.cv_value:.2f}: it carries over about as well."
    pca_better = False
    if "pca" in feature_sets:
        d, low, high = difference
        pca = next(s for s in scores if s.features == "pca" and s.metric == primary)
        if np.isfinite(low) and low > 0:
            text += f" The embeddings beat PCA on the test cohort ({emb.value:.2f} vs {pca.value:.2f}; " \
                    f"difference {d:+.2f}, 95 % interval {low:+.2f} to {high:+.2f})."
        elif np.isfinite(high) and high < 0:
            pca_better = True
            text += f" PCA of the expression beats the embeddings on the test cohort ({pca.value:.2f} vs " \
                    f"{emb.value:.2f}; difference {d:+.2f}, 95 % interval {low:+.2f} to {high:+.2f})."
        else:
            text += (f" Embeddings and PCA do about as well on the test cohort ({emb.value:.2f} vs {pca.value:.2f}; "
                     f"the difference's interval {low:+.2f} to {high:+.2f} includes 0).")
    tone: Tone = "bad" if not beats_base or pca_better else ("good" if "pca" not in feature_sets
                                                             or difference[1] > 0 else "neutral")
    return tone, text


def shift_warnings(train: CohortData, test: CohortData) -> tuple[str, ...]:
    """Gross differences between the cohorts that a model fitted on one may not survive."""
    out = []
    a, b = np.asarray(train.observed, bool), np.asarray(test.observed, bool)
    n_a, n_b, n_shared = int(a.sum()), int(b.sum()), int((a & b).sum())
    if max(n_a, n_b) > 0 and (min(n_a, n_b) < COVERAGE_RATIO * max(n_a, n_b) or n_shared < COVERAGE_RATIO * n_a):
        out.append(f"The cohorts measure different genes: {n_a:,} and {n_b:,} of the model's genes, {n_shared:,} "
                   "in both (a gene panel against a whole transcriptome?). The PCA baseline can only use the "
                   "shared genes; the embeddings of a table with few genes carry less.")
    if train.value_type and test.value_type and train.value_type != test.value_type:
        out.append(f"The tables hold different kinds of values ({train.value_type} and {test.value_type}); both "
                   "are turned into log1p TPM, but counts, TPM and normalised values from different pipelines "
                   "rarely agree exactly.")
    la, lb = _median(train.library_sizes), _median(test.library_sizes)
    if np.isfinite(la) and np.isfinite(lb) and la > 0 and lb > 0 and max(la, lb) / min(la, lb) > LIBRARY_RATIO:
        out.append(f"The median library sizes differ {max(la, lb) / min(la, lb):.0f}-fold ({la:,.0f} and {lb:,.0f} "
                   "reads): shallow sequencing measures low genes as zero more often.")
    shared = a & b
    if shared.sum() >= MIN_SHARED_GENES and len(train.sample_ids) > 1 and len(test.sample_ids) > 1:
        xa = np.asarray(train.values, np.float64)[:, shared]
        xb = np.asarray(test.values, np.float64)[:, shared]
        ca, cb = xa.mean(axis=0), xb.mean(axis=0)
        within = 0.5 * (np.mean(np.sum((xa - ca) ** 2, axis=1)) + np.mean(np.sum((xb - cb) ** 2, axis=1)))
        between = float(np.sum((ca - cb) ** 2))
        if within > 0 and between > within:
            out.append(f"The cohorts' average profiles lie further apart than a typical sample lies from its own "
                       f"cohort's average ({between / within:.1f}× the within-cohort spread, over the {int(shared.sum()):,} "
                       "shared genes): a batch effect, another protocol or other tissues. A model can fail on the "
                       "test cohort for that reason alone.")
    return tuple(out)


def _median(values: np.ndarray | None) -> float:
    if values is None:
        return np.nan
    ok = np.asarray(values, np.float64)
    ok = ok[np.isfinite(ok)]
    return float(np.median(ok)) if len(ok) else np.nan


def _predictions(test: CohortData, target: Target, predictors: Sequence[Predictor],
                 outputs: dict[str, np.ndarray]) -> pd.DataFrame:
    """Every test sample's prediction by every feature set's model, with its observed label."""
    observed = pd.Series(np.nan, index=pd.Index(target.sample_ids), dtype=object)
    observed[np.asarray(target.labelled)] = target.values
    parts = []
    for p in predictors:
        frame = p.table(test.sample_ids, outputs[p.features]).reset_index()
        frame.insert(1, "observed", observed.reindex(frame["sample_id"]).to_numpy())
        if target.kind == "survival":
            frame.insert(2, "event", pd.Series(np.nan, index=frame.index, dtype=object))
            frame.loc[np.asarray(target.labelled), "event"] = target.events
        parts.append(frame.assign(features=p.features))
    return pd.concat(parts, ignore_index=True)
