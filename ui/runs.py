"""The runs the app starts in the background (main run, hold-out check, gene embeddings,
prediction): the workflows of :mod:`bulkformer.workflows` in a background job, their outcomes as this
session holds them, their cache keys, and the batch-size setting.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import streamlit as st

from bulkformer import workflows
from bulkformer.model._run_options import RunOptions
from ui.keys import K_BATCH
from ui.progress import is_running, results, start_job
from ui.session import init_session, result_cache
from ui.uploads import dataset, table_fingerprint

if TYPE_CHECKING:  # for the reader and type checkers only: pages paint before torch is loaded
    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Held(Generic[T]):
    """A run's outcome as this session holds it: the workflow's own outcome (``run``), the run's
    cache key (pages key what they derive from a run by it) and the fingerprint of the table it
    ran on (a new upload or reading choice makes it stale)."""

    run: T
    key: str
    table_fp: str


def current(kind: str, model: BulkFormerModel) -> Any | None:
    """This session's result of ``kind`` if it belongs to the current table and model."""
    outcome = results().get(kind)
    if outcome is None or dataset() is None or outcome.table_fp != table_fingerprint(model):
        return None
    return outcome


def current_or_stop(kind: str, model: BulkFormerModel, *, hint: str) -> Any:
    """This session's current result of ``kind``; without one, the page stops here, saying
    ``hint`` (what to do to get it) unless that run is under way."""
    outcome = current(kind, model)
    if outcome is None:
        if not is_running(kind):
            st.info(hint, icon=":material/info:")
        st.stop()
    return outcome


def run_key(kind: str, model: BulkFormerModel, options: Mapping[str, Any]) -> tuple[str, str]:
    """(table fingerprint, cache key) of a run: sha256 over the table, the model and the options."""
    from bulkformer.jobs import content_key

    table_fp = table_fingerprint(model)
    return table_fp, content_key(kind, table_fp, json.dumps(options, sort_keys=True))


def is_shown(kind: str, key: str) -> bool:
    """Whether this session already holds the result of exactly this run."""
    held = results().get(kind)
    return held is not None and held.key == key


def start_main_run(model: BulkFormerModel, prepared: PreparedInput, options: RunOptions) -> str:
    """Start (or reuse) the main run: embeddings and imputed expression as ``options`` say, and
    both maps. Returns ``"have"`` when the result is already shown."""
    options = dataclasses.replace(options, embed=True, impute=True)
    return _start("main", "Running BulkFormer", model, prepared, options.key(),
                  functools.partial(workflows.run_cohort, model, prepared, options))


def start_holdout_run(model: BulkFormerModel, prepared: PreparedInput, options: RunOptions, *, fraction: float, seed: int = 0) -> str:
    """Start (or reuse) the hold-out check hiding ``fraction`` of the measured values."""
    key_options = {**options.key(), "fraction": round(float(fraction), 4), "seed": seed}
    return _start("holdout", "Hold-out check", model, prepared, key_options,
                  functools.partial(workflows.holdout_check, model, prepared, options, fraction=fraction, seed=seed))


def start_gene_run(model: BulkFormerModel, prepared: PreparedInput, genes: Sequence[str], options: RunOptions) -> str:
    """Start (or reuse) the gene-level embeddings of ``genes``."""
    options = dataclasses.replace(options, gene_embedding_genes=tuple(genes))
    return _start("genes", "Gene embeddings", model, prepared, options.key(),
                  functools.partial(workflows.gene_embeddings, model, prepared, genes, options))


def _start(kind: str, label: str, model: BulkFormerModel, prepared: PreparedInput, key_options: Mapping[str, Any],
           workflow: Callable[..., Any]) -> str:
    """Run ``workflow`` (a :mod:`bulkformer.workflows` function missing only progress, should_stop
    and cache) as this session's ``kind`` job, its model result cached under the run's key; the
    outcome is kept as a :class:`Held` (the workflow's outcome + key + table fingerprint)."""
    table_fp, key = run_key(kind, model, key_options)
    if is_shown(kind, key):
        return "have"
    slot = workflows.CacheSlot(result_cache(), key)

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Held[Any]:
        return Held(workflow(progress=progress, should_stop=should_stop, cache=slot), key, table_fp)

    return start_job(kind, key, label, run, starting_note=compile_note(model, len(prepared.aligned.sample_ids)),
                     **key_options)


def compile_note(model: BulkFormerModel, n_samples: int) -> str:
    """Said while a run starts, when the model compiles itself first (large models on a CPU)."""
    from bulkformer.model._inference import COMPILE_NOTE

    return COMPILE_NOTE if model.compiles(n_samples) else ""


def start_predict_run(model: BulkFormerModel, prepared: PreparedInput, main: Held[workflows.CohortOutcome], target: Any, *, n_permutations: int) -> str:
    """Evaluate ``target`` in the background on the main run's embeddings (``"have"``: shown already)."""
    from bulkformer.analysis import predict
    from bulkformer.jobs import content_key

    labels = prepared.metadata[[c for c in (target.column, target.event_column) if c]]
    options = {"column": target.column, "event_column": target.event_column, "task": target.kind,
               "permutations": n_permutations, "embeddings": main.key,
               "labels": content_key("labels", labels.to_csv())}
    table_fp, key = run_key("predict", model, options)
    if is_shown("predict", key):
        return "have"
    embedding = main.run.result.sample_embedding
    expression = predict.expression_features(prepared.aligned.values, prepared.aligned.observed)

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Held[Any]:
        result = predict.evaluate(embedding, expression, target, n_permutations=n_permutations,
                                  progress=progress, should_stop=should_stop)
        return Held(result, key, table_fp)

    return start_job("predict", key, f"Predicting {target.name}", run, **options)


def start_external_run(model: BulkFormerModel, prepared: PreparedInput, main: Held[workflows.CohortOutcome],
                       held: Held[Any], table: Any, sheet: Any, *, n_bootstrap: int) -> str:
    """Score the shown prediction's models once on a second cohort (``table`` + ``sheet``
    uploads), in the background: read it, run the model on it, then
    :func:`bulkformer.analysis.predict.validate_external`. The outcome's ``run`` is
    ``(external result, the prediction run's key)`` so the page shows it only beside its own CV."""
    from bulkformer.analysis import predict

    options = {"predict": held.key, "table": table.sha, "sheet": sheet.sha, "bootstrap": n_bootstrap}
    table_fp, key = run_key("predict_external", model, options)
    if is_shown("predict_external", key):
        return "have"
    train = predict.CohortData.of(prepared, main.run.result.sample_embedding)
    result = held.run

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Held[Any]:
        test = model.prepare(table.data, filename=table.name, sample_sheet=sheet.data, sample_sheet_filename=sheet.name)
        embedding = model.run(test.aligned.values, test.aligned.sample_ids, impute=False, progress=progress,
                              should_stop=should_stop).sample_embedding
        external = predict.validate_external(result, train, predict.CohortData.of(test, embedding, name=table.name),
                                             model_checksum=model.checksum, n_bootstrap=n_bootstrap,
                                             should_stop=should_stop)
        return Held((external, held.key), key, table_fp)

    return start_job("predict_external", key, f"Scoring {result.target.name} on {table.name}", run, **options)


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
