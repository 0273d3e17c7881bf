"""The runs the app starts in the background (main run, hold-out check, gene embeddings,
prediction), their outcomes and their cache keys, and the batch-size setting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.jobs import results, start_job
from ui.keys import K_BATCH
from ui.session import init_session, result_cache
from ui.uploads import dataset, overrides


@dataclass(frozen=True, eq=False)
class MainOutcome:
    """The main run: sample embeddings + imputed expression, and the two maps of the samples."""

    key: str
    table_fp: str
    options: dict[str, Any]
    result: Any  # InferenceResult
    projections: dict[str, Any]  # "umap" / "pca" → Projection
    from_cache: bool
    seconds: float


@dataclass(frozen=True, eq=False)
class HoldoutOutcome:
    """The hold-out check: the model and the baselines on the same hidden values, and the verdict."""

    key: str
    table_fp: str
    fraction: float
    comparison: Any  # holdout.HoldoutComparison
    verdict: Any  # holdout.Verdict
    from_cache: bool


@dataclass(frozen=True, eq=False)
class GeneOutcome:
    """Gene-level embeddings of chosen genes."""

    key: str
    table_fp: str
    genes: tuple[str, ...]
    result: Any  # InferenceResult


def table_fingerprint(model: Any) -> str:
    """Content key of the numbers the model sees: upload bytes (sha256) + reading choices + model."""
    from bulkformer.jobs import content_key

    data = dataset()
    assert data is not None
    return content_key("table", data.table.sha, json.dumps(overrides(), sort_keys=True), model.checksum)


def current(kind: str, model: Any) -> Any | None:
    """This session's result of ``kind`` if it belongs to the current table and model."""
    outcome = results().get(kind)
    if outcome is None or dataset() is None or outcome.table_fp != table_fingerprint(model):
        return None
    return outcome


def run_key(kind: str, model: Any, options: Mapping[str, Any]) -> tuple[str, str]:
    """(table fingerprint, cache key) of a run: sha256 over the table, the model and the options."""
    from bulkformer.jobs import content_key

    table_fp = table_fingerprint(model)
    return table_fp, content_key(kind, table_fp, json.dumps(options, sort_keys=True))


def is_shown(kind: str, key: str) -> bool:
    """Whether this session already holds the result of exactly this run."""
    held = results().get(kind)
    return held is not None and held.key == key


def start_main_run(model: Any, prepared: Any, *, aggregate: str, aggregate_genes: Sequence[str] | None,
                   precision: str, batch_size: int | None) -> str:
    """Start (or reuse) the main run. Returns ``"have"`` when the result is already shown."""
    from bulkformer.inference import InferenceCancelled
    from bulkformer.projection import project

    options = {"aggregate": aggregate, "aggregate_genes": list(aggregate_genes) if aggregate_genes else None,
               "precision": precision}
    table_fp, key = run_key("main", model, options)
    if is_shown("main", key):
        return "have"
    cache = result_cache()
    values, sample_ids = prepared.aligned.values, prepared.aligned.sample_ids

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> MainOutcome:
        t0 = time.perf_counter()
        result, from_cache = cached_run(cache, key, len(sample_ids), progress, lambda: model.run(
            values, sample_ids, embed=True, impute=True, aggregate=aggregate,
            aggregate_genes=options["aggregate_genes"], precision=precision,
            batch_size=batch_size or None, progress=progress, should_stop=should_stop))
        if should_stop():
            raise InferenceCancelled("The run was cancelled.")
        projections = {m: project(result.sample_embedding, method=m) for m in ("umap", "pca")}
        return MainOutcome(key, table_fp, options, result, projections, from_cache, time.perf_counter() - t0)

    return start_job("main", key, "Running BulkFormer", run, starting_note=compile_note(model, len(sample_ids)),
                     **options)


def compile_note(model: Any, n_samples: int) -> str:
    """Said while a run starts, when the model compiles itself first (large models on a CPU)."""
    from bulkformer.inference import COMPILE_NOTE

    return COMPILE_NOTE if model.compiles(n_samples) else ""


def cached_run(cache: Any, key: str, n_samples: int, progress: Callable[[int, int], None],
               compute: Callable[[], Any]) -> tuple[Any, bool]:
    """The on-disk result for ``key``, or ``compute()`` stored under it; and whether it was cached."""
    result = cache.get(key)
    if result is not None:
        progress(n_samples, n_samples)
        return result, True
    result = compute()
    cache.put(key, result)
    return result, False


def start_holdout_run(model: Any, prepared: Any, *, fraction: float, precision: str,
                      batch_size: int | None, seed: int = 0) -> str:
    from bulkformer.holdout import compare_with_baselines, hide_measured, verdict

    options = {"fraction": round(float(fraction), 4), "seed": seed, "precision": precision}
    table_fp, key = run_key("holdout", model, options)
    if is_shown("holdout", key):
        return "have"
    cache = result_cache()
    aligned = prepared.aligned

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> HoldoutOutcome:
        holdout = hide_measured(aligned.values, aligned.observed, fraction=fraction, seed=seed)
        result, from_cache = cached_run(cache, key, len(aligned.sample_ids), progress, lambda: model.run(
            holdout.values, aligned.sample_ids, embed=False, impute=True, precision=precision,
            batch_size=batch_size or None, progress=progress, should_stop=should_stop))
        comparison = compare_with_baselines(aligned.values, holdout, result.imputed, observed=aligned.observed,
                                            sample_ids=aligned.sample_ids)
        return HoldoutOutcome(key, table_fp, fraction, comparison, verdict(comparison), from_cache)

    return start_job("holdout", key, "Hold-out check", run,
                     starting_note=compile_note(model, len(aligned.sample_ids)), **options)


def start_gene_run(model: Any, prepared: Any, *, genes: Sequence[str], precision: str,
                   batch_size: int | None) -> str:
    options = {"genes": list(genes), "precision": precision}
    table_fp, key = run_key("genes", model, options)
    if is_shown("genes", key):
        return "have"
    cache = result_cache()
    aligned = prepared.aligned

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> GeneOutcome:
        result, _ = cached_run(cache, key, len(aligned.sample_ids), progress, lambda: model.run(
            aligned.values, aligned.sample_ids, embed=False, impute=False, gene_embedding_genes=list(genes),
            precision=precision, batch_size=batch_size or None, progress=progress, should_stop=should_stop))
        return GeneOutcome(key, table_fp, tuple(genes), result)

    return start_job("genes", key, "Gene embeddings", run,
                     starting_note=compile_note(model, len(aligned.sample_ids)), **options)


@dataclass(frozen=True, eq=False)
class PredictOutcome:
    """A sample-sheet column evaluated on the main run's embeddings (and PCA of the expression)."""

    key: str
    table_fp: str
    result: Any  # predict.PredictionResult


def start_predict_run(model: Any, prepared: Any, main: MainOutcome, target: Any, *, n_permutations: int) -> str:
    """Evaluate ``target`` in the background on the main run's embeddings (``"have"``: shown already)."""
    from bulkformer import predict
    from bulkformer.jobs import content_key

    labels = prepared.metadata[[c for c in (target.column, target.event_column) if c]]
    options = {"column": target.column, "event_column": target.event_column, "task": target.kind,
               "permutations": n_permutations, "embeddings": main.key,
               "labels": content_key("labels", labels.to_csv())}
    table_fp, key = run_key("predict", model, options)
    if is_shown("predict", key):
        return "have"
    embedding = main.result.sample_embedding
    expression = predict.expression_features(prepared.aligned.values, prepared.aligned.observed)

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> PredictOutcome:
        result = predict.evaluate(embedding, expression, target, n_permutations=n_permutations,
                                  progress=progress, should_stop=should_stop)
        return PredictOutcome(key, table_fp, result)

    return start_job("predict", key, f"Predicting {target.name}", run, **options)


def batch_size_setting() -> int | None:
    init_session()
    value = int(st.session_state[K_BATCH] or 0)
    return value or None


def batch_size_choices() -> list[int]:
    """Batch sizes offered in pickers: 0 (automatic), then powers of two, and the current setting."""
    return sorted({0, *(2**i for i in range(10)), batch_size_setting() or 0})


def batch_size_label(value: int) -> str:
    """0 means "automatic" to people: the model picks what fits the device."""
    return "automatic" if not value else f"{value:,} sample{'s' if value != 1 else ''}"
