"""The Embeddings page's baseline: the PCA of the expression and the group separation of a
sample-sheet column, memoised per run (``session.memo()``), the box that shows them, and the
run report's rows for the columns already measured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from ui import frame, keys, session, verdicts

if TYPE_CHECKING:
    from bulkformer.analysis._separation import (
        ExpressionBaseline,
        GroupSeparation,
        NotGroups,
    )
    from bulkformer.inputs._align import AlignedMatrix

SILHOUETTE_HELP = (
    "The silhouette of the groups: for each sample, how much nearer it is to the samples of its own group "
    "than to those of the nearest other group, averaged over the samples. From −1 to 1: higher = groups "
    "more apart, about 0 = groups overlap. Measured in the full spaces, not on the 2-D map: the model's "
    "embeddings with each number scaled to unit variance, and the first (up to 20) principal components "
    "of the measured genes' log(TPM + 1), the map “PCA of expression (baseline)”. A description, not a "
    "test: the Predict page tests whether the column follows from the samples.")


def expression_baseline(outcome: Any, aligned: AlignedMatrix) -> ExpressionBaseline | None:
    """PCA of the measured genes' log1p TPM of this run's table, once per run (``None`` after
    an error, shown on the page)."""
    memo_key = ("expression_baseline", outcome.key)
    cache = session.memo()
    if memo_key not in cache:
        from bulkformer.analysis import _separation as separation
        from bulkformer.analysis.predict import expression_features

        with frame.guarded("computing the PCA of the expression"), st.spinner("PCA of the expression…"):
            cache[memo_key] = separation.expression_baseline(expression_features(aligned.values, aligned.observed))
    return cache.get(memo_key)


def _memo_key(outcome: Any, metadata: pd.DataFrame, column: str) -> tuple[Any, ...]:
    """The memo key of a column's separation: the run and the column's values (a new sheet → a new key)."""
    return ("separation", outcome.key, column, tuple(map(str, metadata[column].reindex(outcome.run.result.sample_ids))))


def group_separation(outcome: Any, aligned: AlignedMatrix, metadata: pd.DataFrame,
                     column: str) -> GroupSeparation | NotGroups | None:
    """How far apart ``column``'s groups are in this run's embeddings and in the expression
    baseline, once per run and column values (``None`` after an error, shown on the page)."""
    memo_key = _memo_key(outcome, metadata, column)
    cache = session.memo()
    if memo_key not in cache:
        baseline = expression_baseline(outcome, aligned)
        if baseline is None:
            return None
        from bulkformer.analysis import _separation as separation

        labels = metadata[column].reindex(outcome.run.result.sample_ids)
        with frame.guarded(f"measuring how the {column} groups separate"):
            cache[memo_key] = separation.group_separation(outcome.run.result.sample_embedding, baseline, labels)
    return cache.get(memo_key)


def measured(result: GroupSeparation | NotGroups | None) -> bool:
    """Whether ``result`` holds the two silhouettes (not a refusal, not an error)."""
    from bulkformer.analysis._separation import GroupSeparation

    return isinstance(result, GroupSeparation)


def show_box(column: str, result: GroupSeparation) -> None:
    """The bordered box beside the map: both silhouettes, the verdict, the way to the real test."""
    box = st.container(border=True)
    box.markdown(f"**How clearly do the {column} groups separate?**")
    box.metric("BulkFormer embeddings", f"{result.model_silhouette:.2f}", help=SILHOUETTE_HELP)
    box.metric("PCA of expression (baseline)", f"{result.expression_silhouette:.2f}", help=SILHOUETTE_HELP)
    from bulkformer.analysis._separation import TONES

    verdicts.show(TONES[result.kind], result.verdict, where=box)
    left = f"; {result.n_left_out} without a label or alone in their group left out" if result.n_left_out else ""
    box.caption(f"Silhouette, −1 to 1, higher = more apart. {result.n_samples:,} samples in "
                f"{result.n_groups} groups{left}. A description, not a test: the Predict page tests whether "
                f"{column} follows from the samples (cross-validated, with a p-value).")
    box.page_link(keys.PAGES["predict"], label="Predict page", icon=":material/query_stats:")


def report_rows(outcome: Any, metadata: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(label, one line) for each sample-sheet column whose separation this session measured for this run."""
    if metadata is None:
        return []
    cache = session.memo()
    found = ((column, cache.get(_memo_key(outcome, metadata, column))) for column in metadata.columns)
    return [(f"Group separation ({column})", result.summary()) for column, result in found if measured(result)]
