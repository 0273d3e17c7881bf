"""The workflows the app and the CLI run, each returning a frozen outcome.

- :func:`run_cohort`: one pass over the cohort (sample embeddings, imputed expression, gene
  embeddings, as its :class:`RunOptions` say) and the 2-D maps of the samples.
- :func:`holdout_check`: how far to trust imputed values: hide measured values, let the model
  fill them in, compare it with two baselines, and the verdict in words.
- :func:`gene_embeddings`: per-gene embeddings of chosen genes.
- :func:`run_facts`: what a run's report and result files record about it.

The app runs these in background jobs (``ui/runs.py``) and keeps the model's results in its
on-disk cache through ``cache`` (a :class:`CacheSlot`): the key (table fingerprint + options) is
the app's to make, as only it knows where the table came from.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bulkformer.model._run_options import RunOptions

if TYPE_CHECKING:  # torch and the rest load when a workflow runs, not when the app's pages import this
    from bulkformer.analysis._holdout import HoldoutComparison, Verdict
    from bulkformer.analysis._projection import Projection
    from bulkformer.export import RunFacts
    from bulkformer.inputs._pipeline import PreparedInput
    from bulkformer.model._bulkformer_model import BulkFormerModel, InferenceResult
    from bulkformer.model._inference import ProgressFn

#: The maps :func:`run_cohort` draws unless told otherwise (the app offers both).
MAP_METHODS: tuple[str, ...] = ("umap", "pca")


class ResultStore(Protocol):
    """Where model results are kept between runs (:class:`bulkformer.jobs.ResultCache`)."""

    def get(self, key: str) -> InferenceResult | None: ...

    def put(self, key: str, result: InferenceResult) -> None: ...


@dataclass(frozen=True)
class CacheSlot:
    """One run's place in a :class:`ResultStore`: a result stored under ``key`` is reused."""

    store: ResultStore
    key: str


@dataclass(frozen=True, eq=False)
class CohortOutcome:
    """One pass over the cohort and the maps of its samples.

    Attributes:
        options: what was computed and how.
        result: the model's output, rows in the table's sample order.
        projections: ``"umap"`` / ``"pca"`` → :class:`~bulkformer.analysis._projection.Projection` of the
            sample embeddings (empty when no maps were asked for or no embeddings made).
        from_cache: the model's output came from the cache, not from running the model.
        seconds: wall time of the whole workflow, maps included.
        model_seconds: wall time of the model's pass alone; about 0 when ``from_cache``.
        pace: seconds per sample of the model's pass after its first batch, which alone carries
            one-off costs (compiling the model); what a hold-out check, which repeats the pass,
            may expect. ``None`` with a single batch or from the cache.
    """

    options: RunOptions
    result: InferenceResult
    projections: Mapping[str, Projection]
    from_cache: bool
    seconds: float
    model_seconds: float
    pace: float | None = None


@dataclass(frozen=True, eq=False)
class HoldoutOutcome:
    """The hold-out check: the model and the baselines scored on the same hidden values.

    ``seconds``: wall time of the whole check, so a page can say what it cost, and
    ``model_seconds`` the model's pass within it (about 0 when ``from_cache``); the rest is
    the baselines and the scoring.
    """

    options: RunOptions
    fraction: float
    seed: int
    comparison: HoldoutComparison
    verdict: Verdict
    from_cache: bool
    seconds: float
    model_seconds: float


@dataclass(frozen=True, eq=False)
class GeneOutcome:
    """Per-gene embeddings of ``genes`` (``result.gene_embedding``, ``[samples, genes, d]``)."""

    options: RunOptions
    genes: tuple[str, ...]
    result: InferenceResult
    from_cache: bool


def run_cohort(model: BulkFormerModel, prepared: PreparedInput, options: RunOptions | None = None, *,
               maps: Iterable[str] = MAP_METHODS, progress: ProgressFn | None = None,
               should_stop: Callable[[], bool] | None = None, cache: CacheSlot | None = None) -> CohortOutcome:
    """The model over the prepared table as ``options`` say, then a map per method in ``maps``
    (``()``: none, as the CLI wants) when sample embeddings were made."""
    from bulkformer.analysis._projection import project
    from bulkformer.model._inference import InferenceCancelled

    options = options or RunOptions()
    t0 = time.perf_counter()
    aligned = prepared.aligned
    marks: list[tuple[int, float]] = []

    def noted(done: int, total: int) -> None:
        marks.append((done, time.perf_counter()))
        if progress is not None:
            progress(done, total)

    result, from_cache = _run(model, aligned.values, aligned.sample_ids, options, progress=noted,
                              should_stop=should_stop, cache=cache)
    model_seconds = time.perf_counter() - t0
    pace = None
    if not from_cache and len(marks) > 1 and marks[-1][0] > marks[0][0]:
        (first, t_first), (last, t_last) = marks[0], marks[-1]
        pace = (t_last - t_first) / (last - first)
    methods = tuple(maps) if result.sample_embedding is not None else ()
    if methods and should_stop is not None and should_stop():  # maps take a while: do not draw them for nothing
        raise InferenceCancelled("The run was cancelled.")
    projections = {m: project(result.sample_embedding, method=m) for m in methods}
    return CohortOutcome(options, result, projections, from_cache, time.perf_counter() - t0, model_seconds, pace)


def holdout_check(model: BulkFormerModel, prepared: PreparedInput, options: RunOptions | None = None, *,
                  fraction: float = 0.1, seed: int = 0, progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None, cache: CacheSlot | None = None) -> HoldoutOutcome:
    """Hide ``fraction`` of each sample's measured genes (``seed`` picks which), impute them with
    the model (imputation only; ``options`` give batch size, precision, compile) and score it
    against the gene-mean and kNN baselines on the same values."""
    from bulkformer.analysis._holdout import (
        compare_with_baselines,
        hide_measured,
        verdict,
    )

    options = dataclasses.replace(options or RunOptions(), embed=False, impute=True, aggregate_genes=None,
                                  gene_embedding_genes=None, with_esm2=False)
    t0 = time.perf_counter()
    aligned = prepared.aligned
    hidden = hide_measured(aligned.values, aligned.observed, fraction=fraction, seed=seed)
    t_model = time.perf_counter()
    result, from_cache = _run(model, hidden.values, aligned.sample_ids, options, progress=progress,
                              should_stop=should_stop, cache=cache)
    model_seconds = time.perf_counter() - t_model
    comparison = compare_with_baselines(aligned.values, hidden, result.imputed, observed=aligned.observed,
                                        sample_ids=aligned.sample_ids)
    return HoldoutOutcome(options, fraction, seed, comparison, verdict(comparison), from_cache,
                          time.perf_counter() - t0, model_seconds)


def gene_embeddings(model: BulkFormerModel, prepared: PreparedInput, genes: Sequence[str],
                    options: RunOptions | None = None, *, progress: ProgressFn | None = None,
                    should_stop: Callable[[], bool] | None = None, cache: CacheSlot | None = None) -> GeneOutcome:
    """Per-gene embeddings of ``genes`` (Ensembl IDs of model genes) in every sample; nothing else
    is computed (``options`` give batch size, precision, compile and the ESM2 choice)."""
    options = dataclasses.replace(options or RunOptions(), embed=False, impute=False, aggregate_genes=None,
                                  gene_embedding_genes=tuple(genes))
    aligned = prepared.aligned
    result, from_cache = _run(model, aligned.values, aligned.sample_ids, options, progress=progress,
                              should_stop=should_stop, cache=cache)
    return GeneOutcome(options, tuple(genes), result, from_cache)


def run_facts(model: BulkFormerModel, prepared: PreparedInput, options: RunOptions, *,
              extra: Iterable[tuple[str, str]] = (), holdout: Sequence[str] = ()) -> RunFacts:
    """What the run report and the files' notes (and an .h5ad's ``uns``) record about a run:
    model, device, options, the table's size and QC; ``extra``: more (label, value) rows;
    ``holdout``: the hold-out verdict's lines, when there is one."""
    from bulkformer.export import RunFacts

    aligned = prepared.aligned
    return RunFacts(
        model_name=model.name, model_checksum=model.checksum, model_source=model.source,
        is_demo=bool(model.is_demo), device=model.device.type, aggregate=options.aggregate,
        batch_size=options.batch_size, precision=options.precision, n_samples=len(aligned.sample_ids),
        n_genes=len(model.gene_ids), qc_summary=tuple(prepared.qc.summary_lines()), extra=tuple(extra),
        n_measured_genes=int(np.asarray(aligned.observed, dtype=bool).sum()), holdout=tuple(holdout))


def _run(model: BulkFormerModel, values: np.ndarray, sample_ids: Sequence[str], options: RunOptions, *,
         progress: ProgressFn | None, should_stop: Callable[[], bool] | None,
         cache: CacheSlot | None) -> tuple[InferenceResult, bool]:
    """The cached result for ``cache.key`` (progress then reports all done), or the model's,
    stored there; and whether it came from the cache."""
    if cache is not None:
        held = cache.store.get(cache.key)
        if held is not None:
            if progress is not None:
                progress(len(sample_ids), len(sample_ids))
            return held, True
    result = model.run(values, sample_ids, options, progress=progress, should_stop=should_stop)
    if cache is not None:
        cache.store.put(cache.key, result)
    return result, False
