"""``evaluate``: the nested cross-validation of every feature set on the same folds, the
permutation test, the embeddings-vs-PCA comparison, the verdict and the final models."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from bulkformer.analysis.predict.metrics import (
    METRIC_LABELS,
    PRIMARY,
    chance_level,
    fold_metrics,
    metric_names,
    p_text,
)
from bulkformer.analysis.predict.models import (
    FEATURE_LABELS,
    FEATURE_SETS,
    CVPlan,
    FoldFit,
    class_probabilities,
    describe_params,
    designs,
    fit_fold,
    fold_outputs,
    make_pipeline,
    plan_cv,
    strata,
    tune,
)
from bulkformer.analysis.predict.results import (
    Comparison,
    FeatureSummary,
    ModelSummary,
    PredictionResult,
    Score,
)
from bulkformer.analysis.predict.targets import Target
from bulkformer.analysis.predict.work import EvaluationWork, FitPace, planned_work
from bulkformer.choices import Tone
from bulkformer.errors import InputError

DEFAULT_PERMUTATIONS = 99
"""Label shuffles of the permutation test: p-values down to 0.01. Each shuffle refits every outer
fold of every feature set, so the shuffles are most of an evaluation's model fits (how long they
take is measured, see :class:`~bulkformer.analysis.predict.work.FitPace`)."""
ALPHA = 0.05
ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


def evaluate(
    embedding: np.ndarray,
    expression: np.ndarray,
    target: Target,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> PredictionResult:
    """Compare embeddings, PCA of the expression and both at predicting ``target``.

    ``progress(done, total)`` counts model fits (:func:`~bulkformer.analysis.predict.work.planned_work`):
    a grid search of an outer fold weighs its settings × inner folds, a label shuffle its plain
    fits, so a pace measured on the first folds holds for the rest of the run.

    Shapes:
        embedding: ``[n_samples, d]`` sample embeddings, rows in ``target.sample_ids`` order.
        expression: ``[n_samples, g]`` log1p TPM of the measured genes, same rows.

    The permutation test shuffles the labels ``n_permutations`` times and re-fits every outer
    fold (the same folds) with the settings the real nested CV chose most often; re-tuning on
    every shuffle would multiply the time by the grid size times the inner folds, and a shuffled
    label scores at chance whatever the setting. p = (1 + shuffles scoring at least as well) /
    (1 + shuffles).
    """
    start = time.perf_counter()
    embedding = np.asarray(embedding, dtype=np.float64)
    _check_inputs(embedding, expression, target)
    stop = should_stop or (lambda: False)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and undefined-metric notes on tiny folds
        matrices = designs(embedding, expression)
        labelled = {k: v[target.labelled] for k, v in matrices.items()}
        d = embedding.shape[1]
        plan = plan_cv(target, seed=seed)
        work = planned_work(target, n_permutations=n_permutations, n_expression=matrices["pca"].shape[1],
                            n_embedding=d, seed=seed, plan=plan)
        step = _counter(progress, total=work.total)
        fits = _outer_fits(target, plan, labelled, work, n_embedding=d, seed=seed, stop=stop, step=step)
        outer_end = time.perf_counter()
        per_fold = {f: _scores_per_fold(target, plan, fits[f]) for f in FEATURE_SETS}
        observed = {f: _primary_value(target, per_fold[f]) for f in FEATURE_SETS}
        modal = {f: _modal_params(fits[f]) for f in FEATURE_SETS}
        nulls = _permutation_nulls(target, plan, labelled, modal, n_embedding=d, n_permutations=n_permutations,
                                   seed=seed, stop=stop, step=step)
        shuffles_end = time.perf_counter()
        summaries = tuple(_summary(target, f, per_fold[f], observed[f], nulls[f], modal[f]) for f in FEATURE_SETS)
        comparison = _compare(target, plan, per_fold)
        best = max(FEATURE_SETS, key=lambda f: (np.nan_to_num(observed[f], nan=-np.inf), -FEATURE_SETS.index(f)))
        finals = {}
        for features in FEATURE_SETS:
            _check_stop(stop)
            finals[features] = _final_model(target, matrices[features], features, plan, n_embedding=d, seed=seed)
            step(work.final_fits[FEATURE_SETS.index(features)])
    tone, verdict = make_verdict(target, summaries, comparison, n_permutations)
    return PredictionResult(
        target=target, plan=plan, n_permutations=n_permutations, seed=seed, summaries=summaries,
        comparison=comparison, verdict=verdict, tone=tone, best=best,
        folds=_folds_frame(target, plan, fits, per_fold),
        out_of_fold=_oof_frame(target, plan, fits),
        predictions=_predictions_frame(target, matrices[best], finals[best], best),
        models=tuple(finals[f][1] for f in FEATURE_SETS),
        seconds=(end := time.perf_counter()) - start, work=work,
        pace=FitPace.measured(work, tuned_seconds=(outer_end - start) + (end - shuffles_end),
                              shuffle_seconds=shuffles_end - outer_end),
    )


def _check_inputs(embedding: np.ndarray, expression: np.ndarray, target: Target) -> None:
    """One row per sample in both matrices, and finite embeddings."""
    n = len(target.sample_ids)
    if embedding.ndim != 2 or embedding.shape[0] != n or np.asarray(expression).shape[0] != n:
        raise InputError(f"The embeddings ({embedding.shape[0]} rows) and the expression "
                         f"({np.asarray(expression).shape[0]} rows) must have one row per sample ({n}).",
                         hint="Compute the embeddings on the same table as the sample sheet.")
    if not np.isfinite(embedding).all():
        raise InputError("The sample embeddings contain missing or infinite values.",
                         hint="Run the model again (with fp32 precision).")


def _counter(progress: ProgressFn | None, *, total: int) -> Callable[[int], None]:
    """A function to call after each piece of work, with its units (model fits): reports (units
    done, ``total``) to ``progress``."""
    done = 0

    def step(units: int) -> None:
        nonlocal done
        done += units
        if progress is not None:
            progress(done, total)

    return step


def _outer_fits(target: Target, plan: CVPlan, labelled: dict[str, np.ndarray], work: EvaluationWork, *,
                n_embedding: int, seed: int, stop: StopFn, step: Callable[[int], None]) -> dict[str, list[FoldFit]]:
    """Every feature set tuned (inner CV) and fitted on every outer fold of ``plan``."""
    fits: dict[str, list[FoldFit]] = {f: [] for f in FEATURE_SETS}
    for i, (train, test) in enumerate(plan.splits):
        for features in FEATURE_SETS:
            _check_stop(stop)
            fits[features].append(fit_fold(target, labelled[features], features, train, test,
                                           inner_folds=plan.inner_folds, n_embedding=n_embedding, seed=seed + i))
            step(work.fold_fits[i][FEATURE_SETS.index(features)])
    return fits


def _permutation_nulls(target: Target, plan: CVPlan, labelled: dict[str, np.ndarray], modal: dict[str, dict[str, Any]],
                       *, n_embedding: int, n_permutations: int, seed: int, stop: StopFn,
                       step: Callable[[int], None]) -> dict[str, np.ndarray]:
    """Each feature set's primary score on ``n_permutations`` seeded label shuffles, on the same
    folds with its modal settings (see :func:`evaluate`)."""
    nulls = {f: np.empty(n_permutations) for f in FEATURE_SETS}
    transformed = {f: _transformed_folds(target, plan, labelled[f], f, modal[f], n_embedding) for f in FEATURE_SETS}
    rng = np.random.default_rng(seed)
    for b in range(n_permutations):
        _check_stop(stop)
        shuffled = _shuffled(target, rng.permutation(target.n_labelled))
        for features in FEATURE_SETS:
            nulls[features][b] = _fixed_cv_score(shuffled, plan, transformed[features], modal[features])
        step(len(plan.splits) * len(FEATURE_SETS))  # one fit per fold and feature set (fewer if it failed)
    return nulls


def _check_stop(stop: StopFn) -> None:
    if stop():
        from bulkformer.model._inference import InferenceCancelled

        raise InferenceCancelled("The prediction run was cancelled.")


def _shuffled(target: Target, order: np.ndarray) -> Target:
    events = target.events[order] if target.events is not None else None
    return Target(target.kind, target.column, target.event_column, target.sample_ids, target.labelled,
                  target.values[order], events, target.classes, target.reason)


def _scores_per_fold(target: Target, plan: CVPlan, fits: list[FoldFit]) -> list[dict[str, float]]:
    return [fold_metrics(target, test, fit.output) for (_, test), fit in zip(plan.splits, fits, strict=True)]


def _primary_value(target: Target, per_fold: list[dict[str, float]]) -> float:
    return float(np.nanmean([m[PRIMARY[target.kind]] for m in per_fold]))


def _modal_params(fits: list[FoldFit]) -> dict[str, Any]:
    """The hyperparameters chosen most often over the outer folds (first chosen on a tie)."""
    keys = [tuple(sorted(f.params.items())) for f in fits]
    counts = Counter(keys)
    return dict(max(keys, key=lambda k: (counts[k], -keys.index(k))))


def _transformed_folds(target: Target, plan: CVPlan, design: np.ndarray, features: str, params: dict[str, Any],
                       n_embedding: int) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Per outer fold: the untrained model and the training / test rows after the pipeline's
    unsupervised steps (PCA, scaling) fitted on the training rows. They never read a label, so
    the permutation test computes them once instead of once per shuffle."""
    out = []
    for train, test in plan.splits:
        pipeline = make_pipeline(target.kind, features, n_embedding=n_embedding).set_params(**params)
        steps = pipeline[:-1].fit(design[train])
        out.append((pipeline[-1], steps.transform(design[train]), steps.transform(design[test])))
    return out


def _fixed_cv_score(target: Target, plan: CVPlan, folds: list[tuple[Any, np.ndarray, np.ndarray]],
                    params: dict[str, Any]) -> float:
    """The primary score of the outer folds with fixed hyperparameters (the permutation null)."""
    from sklearn.base import clone

    y = target.y()
    fits = []
    for (train, _test), (model, train_x, test_x) in zip(plan.splits, folds, strict=True):
        try:
            fitted = clone(model).fit(train_x, y[train])
            output, threshold = fold_outputs(target, fitted, train_x, test_x)
        except (ValueError, np.linalg.LinAlgError):  # a shuffle left a training fold with one class
            return np.nan
        fits.append(FoldFit(params, output, threshold))
    return _primary_value(target, _scores_per_fold(target, plan, fits))


def _summary(target: Target, features: str, per_fold: list[dict[str, float]], observed: float, null: np.ndarray,
             modal: dict[str, Any]) -> FeatureSummary:
    scores = tuple(Score(m, float(np.nanmean([f[m] for f in per_fold])),
                         float(np.nanstd([f[m] for f in per_fold], ddof=1))) for m in metric_names(target))
    primary_folds = np.array([f[PRIMARY[target.kind]] for f in per_fold])
    valid = null[np.isfinite(null)]
    p = (1 + int((valid >= observed - 1e-12).sum())) / (1 + len(valid)) if len(valid) else np.nan
    return FeatureSummary(features, scores, float(p), float(np.mean(valid)) if len(valid) else np.nan,
                          primary_folds, describe_params(modal))


def _compare(target: Target, plan: CVPlan, per_fold: dict[str, list[dict[str, float]]]) -> Comparison:
    """Embeddings minus PCA: Nadeau–Bengio corrected paired t-test over folds (training sets
    overlap, so the plain t-test is over-confident)."""
    primary = PRIMARY[target.kind]
    a = np.array([m[primary] for m in per_fold["embeddings"]])
    b = np.array([m[primary] for m in per_fold["pca"]])
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    k = len(d)
    if k < 2:
        return Comparison(float(np.mean(d)) if k else np.nan, np.nan, np.nan, int((d > 0).sum()), k, "too few folds")
    train, test = plan.splits[0]
    var = np.var(d, ddof=1) * (1.0 / k + len(test) / len(train))
    mean = float(np.mean(d))
    if var == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / np.sqrt(var), df=k - 1))
    return Comparison(mean, float(np.std(d, ddof=1)), p, int((d > 0).sum()), k,
                      "paired over the same folds (Nadeau–Bengio corrected t-test)")


def make_verdict(target: Target, summaries: Sequence[FeatureSummary], comparison: Comparison,
                 n_permutations: int) -> tuple[Tone, str]:
    """The result in words, and what it means for the embeddings (its tone: the page's colour):
    is it better than chance, and do the embeddings beat PCA?"""
    by = {s.features: s for s in summaries}
    emb, pca = by["embeddings"], by["pca"]
    primary = PRIMARY[target.kind]
    label = METRIC_LABELS[primary]
    e, p = emb.score(primary).value, pca.score(primary).value
    column = target.name
    chance = chance_level(target, primary)
    chance_text = f", chance ≈ {chance:.2f}" if chance is not None else ""
    floor = 1.0 / (n_permutations + 1)
    if floor >= ALPHA and emb.p_value <= floor + 1e-12:
        return "neutral", (f"No shuffle of the labels scored as well as the embeddings ({label} {e:.2f}{chance_text}), "
                f"but {n_permutations} shuffles cannot show p < {ALPHA:g}: run again with at least "
                f"{round(1 / ALPHA) - 1} shuffles to judge {column}.")
    if not emb.p_value < ALPHA:
        text = (f"BulkFormer embeddings predict {column} no better than chance ("
                f"{p_text(emb.p_value, n_permutations)}; {label} {e:.2f} against {emb.null_mean:.2f} with "
                f"shuffled labels{chance_text}).")
        if pca.p_value < ALPHA:
            text += (f" PCA of the expression does better than chance ({label} {p:.2f}, "
                     f"{p_text(pca.p_value, n_permutations)}).")
        else:
            text += " Neither does PCA of the expression: this column does not seem to follow from the expression."
        return "bad", text
    chance_part = f"better than chance ({label} {e:.2f}{chance_text}; {p_text(emb.p_value, n_permutations)})"
    folds = (f"better in {comparison.n_better} of {comparison.n_folds} folds, " if comparison.n_folds > 1 else "")
    detail = f"{e:.2f} vs {p:.2f}; {folds}p = {comparison.p_value:.2g}"
    if comparison.p_value < ALPHA and comparison.difference > 0:
        return "good", (f"Embeddings beat PCA on {column} by {comparison.difference:.2f} {label} ({detail}). "
                f"They predict it {chance_part}.")
    if comparison.p_value < ALPHA and comparison.difference < 0:
        return "bad", (f"PCA of the expression beats the embeddings on {column} by {-comparison.difference:.2f} "
                f"{label} ({p:.2f} vs {e:.2f}; p = {comparison.p_value:.2g}). The embeddings predict it "
                f"{chance_part}, but no better than PCA.")
    return "neutral", (f"Embeddings predict {column} {chance_part}, but no better than PCA "
            f"({detail}: the difference {comparison.difference:+.2f} is within the noise).")


def _final_model(target: Target, design: np.ndarray, features: str, plan: CVPlan, *, n_embedding: int,
                 seed: int) -> tuple[Any, ModelSummary]:
    """Tune and fit on all labelled samples (the model that predicts the unlabelled ones)."""
    rows = np.flatnonzero(target.labelled)
    search = tune(target, design, features, rows, target.y(), strata(target),
                     inner_folds=plan.inner_folds, n_embedding=n_embedding, seed=seed)
    model = search.best_estimator_
    n_model = int(np.shape(model.named_steps["model"].coef_)[-1])
    kind_words = {"classification": "L2-penalised logistic regression", "regression": "ridge regression",
                  "survival": "ridge-penalised Cox proportional-hazards model"}[target.kind]
    steps = {"embeddings": "standardised embeddings", "pca": "PCA of log1p TPM → standardised components",
             "both": "standardised embeddings + PCA of log1p TPM (standardised)"}[features]
    description = (f"{kind_words} on {steps}; {describe_params(dict(search.best_params_))}; fitted on "
                   f"{len(rows)} labelled samples (settings by {len(search.cv)}-fold CV on them)")
    return model, ModelSummary(features, dict(search.best_params_), design.shape[1], n_model, description)


def _predictions_frame(target: Target, design: np.ndarray, final: tuple[Any, ModelSummary],
                       features: str) -> pd.DataFrame:
    model, _ = final
    rows = np.flatnonzero(~target.labelled)
    index = pd.Index([target.sample_ids[i] for i in rows], name="sample_id")
    frame = pd.DataFrame(index=index)
    if len(rows) == 0:
        return frame.assign(predicted=pd.Series(dtype=object), features=pd.Series(dtype=object))
    x = design[rows]
    if target.kind == "classification":
        proba = class_probabilities(model, x, target.classes)
        frame["predicted"] = np.asarray(target.classes, dtype=object)[proba.argmax(axis=1)]
        frame["probability"] = proba.max(axis=1)
        for j, c in enumerate(target.classes):
            frame[f"p_{c}"] = proba[:, j]
    elif target.kind == "regression":
        frame["predicted"] = model.predict(x)
    else:
        labelled_risk = model.predict(design[target.labelled])
        risk = model.predict(x)
        frame["risk_score"] = risk
        frame["predicted"] = np.where(risk > np.median(labelled_risk), "higher risk", "lower risk")
    frame["features"] = FEATURE_LABELS[features]
    return frame


def _folds_frame(target: Target, plan: CVPlan, fits: dict[str, list[FoldFit]],
                 per_fold: dict[str, list[dict[str, float]]]) -> pd.DataFrame:
    rows = []
    counts: Counter[int] = Counter()
    for i, ((train, test), repeat) in enumerate(zip(plan.splits, plan.repeats, strict=True)):
        counts[repeat] += 1
        for features in FEATURE_SETS:
            rows.append({"features": features, "repeat": repeat + 1, "fold": counts[repeat],
                         "n_train": len(train), "n_test": len(test), **per_fold[features][i],
                         "settings": describe_params(fits[features][i].params)})
    return pd.DataFrame(rows)


def _oof_frame(target: Target, plan: CVPlan, fits: dict[str, list[FoldFit]]) -> pd.DataFrame:
    """Out-of-fold predictions of the first repetition: every labelled sample exactly once."""
    ids = np.asarray([s for s, keep in zip(target.sample_ids, target.labelled, strict=True) if keep], dtype=object)
    parts = []
    for features in FEATURE_SETS:
        for (train, test), repeat, fit in zip(plan.splits, plan.repeats, fits[features], strict=True):
            if repeat:
                continue
            part = pd.DataFrame({"sample_id": ids[test], "features": features})
            if target.kind == "classification":
                part["observed"] = target.values[test]
                part["predicted"] = np.asarray(target.classes, dtype=object)[fit.output.argmax(axis=1)]
                part["probability"] = fit.output.max(axis=1)
                for j, c in enumerate(target.classes):
                    part[f"p_{c}"] = fit.output[:, j]
            elif target.kind == "regression":
                part["observed"] = target.values[test]
                part["predicted"] = fit.output
            else:
                part["time"] = target.values[test]
                part["event"] = target.events[test]
                part["risk_score"] = fit.output
                part["risk_group"] = np.where(fit.output > fit.threshold, "higher risk", "lower risk")
            parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    order = {s: i for i, s in enumerate(ids)}
    return frame.sort_values(["features", "sample_id"], key=lambda col: col.map(order) if col.name == "sample_id"
                             else col.map(FEATURE_SETS.index)).reset_index(drop=True)
