"""Group separation: hand-built cohorts whose truth is known, scored against scikit-learn's
silhouette_score on spaces built here by hand (scaled embeddings, SVD of the expression)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

from bulkformer.analysis._separation import (
    MARGIN,
    OVERLAP,
    GroupSeparation,
    NotGroups,
    expression_baseline,
    group_labels,
    group_separation,
    separation_verdict,
)

N_PER_GROUP = 15
GROUPS = np.repeat(["a", "b"], N_PER_GROUP)


def _cohort(*, apart_in_embedding: bool, apart_in_expression: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings [30, 8] and expression [30, 40]: noise, plus a shift of group b where asked.
    Apart in both: the expression is the scaled embeddings turned into 40 genes by a rotation,
    so the two spaces have the very same distances between samples."""
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(len(GROUPS), 8))
    expression = rng.normal(5.0, 1.0, size=(len(GROUPS), 40))
    b = GROUPS == "b"
    if apart_in_embedding:
        embedding[b, :4] += 6.0
    if apart_in_expression and apart_in_embedding:
        rotation = np.linalg.qr(rng.normal(size=(40, 8)))[0].T  # orthonormal rows [8, 40]
        expression = 5.0 + (embedding - embedding.mean(0)) / embedding.std(0) @ rotation
    elif apart_in_expression:
        expression[b, :10] += 6.0
    return embedding, expression


def _by_hand(embedding: np.ndarray, expression: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The two silhouettes from first principles: each embedding number scaled to unit variance;
    the expression's first min(20, n - 1) principal-component scores from an SVD."""
    scaled = (embedding - embedding.mean(0)) / embedding.std(0)
    centred = expression - expression.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(20, expression.shape[0] - 1)
    return silhouette_score(scaled, labels), silhouette_score(u[:, :k] * s[:k], labels)


@pytest.mark.parametrize(("in_embedding", "in_expression", "kind", "words"), [
    (False, True, "expression better", "less well than a PCA of the expression"),
    (True, False, "model better", "better than a PCA of the expression"),
    (True, True, "about the same", "about as well as a PCA of the expression"),
    (False, False, "overlap", "overlap in both"),
])
def test_the_verdict_follows_where_the_groups_truly_differ(in_embedding: bool, in_expression: bool,
                                                          kind: str, words: str) -> None:
    embedding, expression = _cohort(apart_in_embedding=in_embedding, apart_in_expression=in_expression)
    result = group_separation(embedding, expression_baseline(expression), list(GROUPS))
    assert isinstance(result, GroupSeparation)
    model, baseline = _by_hand(embedding, expression, GROUPS)
    assert result.model_silhouette == pytest.approx(model, abs=1e-9)
    assert result.expression_silhouette == pytest.approx(baseline, abs=1e-9)
    assert (result.kind, result.n_groups, result.n_samples, result.n_left_out) == (kind, 2, 30, 0)
    assert words in result.verdict and "Rough" not in result.verdict
    assert f"{result.model_silhouette:.2f}" in result.summary() and result.verdict in result.summary()


def test_the_thresholds_are_stated_and_applied_at_their_edges() -> None:
    assert separation_verdict(0.5, 0.5 - MARGIN * 0.9)[0] == "about the same"
    assert separation_verdict(0.5, 0.5 - MARGIN * 1.1)[0] == "model better"
    assert separation_verdict(0.5 - MARGIN * 1.1, 0.5)[0] == "expression better"
    kind, text = separation_verdict(OVERLAP * 0.9, -0.2)
    assert kind == "overlap" and str(OVERLAP) in text
    assert str(MARGIN) in separation_verdict(0.6, 0.2)[1]


def test_missing_labels_and_groups_of_one_are_left_out_and_counted() -> None:
    embedding, expression = _cohort(apart_in_embedding=True, apart_in_expression=False)
    labels = pd.Series(GROUPS, dtype=object)
    labels[[0, 1]] = [np.nan, "  "]  # no label
    labels[2] = "lonely"  # a group of one
    result = group_separation(embedding, expression_baseline(expression), labels)
    assert isinstance(result, GroupSeparation)
    used = np.arange(len(GROUPS)) >= 3
    # the expression's PCA is fitted on all samples; only the labelled ones are scored
    scaled = (embedding - embedding.mean(0)) / embedding.std(0)
    u, s, _ = np.linalg.svd(expression - expression.mean(0), full_matrices=False)
    assert result.model_silhouette == pytest.approx(silhouette_score(scaled[used], GROUPS[used]), abs=1e-9)
    assert result.expression_silhouette == pytest.approx(
        silhouette_score((u[:, :20] * s[:20])[used], GROUPS[used]), abs=1e-9)
    assert (result.n_samples, result.n_left_out, result.n_groups, result.smallest_group) == (27, 3, 2, 12)


def test_small_groups_make_the_verdict_say_it_is_rough() -> None:
    embedding, expression = _cohort(apart_in_embedding=True, apart_in_expression=True)
    labels = np.array(["a"] * 27 + ["b"] * 3)
    result = group_separation(embedding, expression_baseline(expression), labels)
    assert isinstance(result, GroupSeparation) and result.smallest_group == 3
    assert "Rough: the smallest group has 3 samples" in result.verdict


@pytest.mark.parametrize(("labels", "says"), [
    (np.linspace(0, 1, 30), "numbers with 30 different values"),
    (["a"] * 30, "1 group with at least 2 samples"),
    ([f"s{i}" for i in range(30)], "0 groups with at least 2 samples"),
    ([np.nan] * 30, "0 groups"),
    (["a"] * 29 + ["b"], "1 group with at least 2 samples"),
])
def test_columns_that_make_no_groups_are_refused_with_a_reason(labels, says: str) -> None:
    embedding, expression = _cohort(apart_in_embedding=True, apart_in_expression=True)
    refused = group_separation(embedding, expression_baseline(expression), labels)
    assert isinstance(refused, NotGroups) and says in refused.reason


def test_few_distinct_numbers_and_booleans_are_groups() -> None:
    stages = np.tile([1, 2, 3], 10).astype(float)
    assert sorted(set(group_labels(stages))) == ["1.0", "2.0", "3.0"]
    assert sorted(set(group_labels([True, False] * 15))) == ["False", "True"]


def test_the_baseline_map_is_the_first_two_components_of_the_scored_space() -> None:
    _, expression = _cohort(apart_in_embedding=False, apart_in_expression=True)
    baseline = expression_baseline(expression)
    u, s, _ = np.linalg.svd(expression - expression.mean(0), full_matrices=False)
    coords = baseline.projection().coords
    assert coords.shape == (30, 2) and baseline.scores.shape == (30, 20)
    np.testing.assert_allclose(np.abs(coords), np.abs(u[:, :2] * s[:2]), rtol=1e-4, atol=1e-4)
    total = ((expression - expression.mean(0)) ** 2).sum()
    np.testing.assert_allclose(baseline.explained, s[:20] ** 2 / total, rtol=1e-6)
    one = expression_baseline(expression[:1])
    assert one.scores.shape == (1, 0) and one.projection().coords.tolist() == [[0.0, 0.0]]
    assert one.axis_titles() == ("PC 1", "PC 2")
    assert baseline.axis_titles()[0] == f"PC 1 ({s[0] ** 2 / total:.1%} of the variance)"


def test_each_verdict_kind_has_the_tone_of_its_meaning() -> None:
    """Colour follows meaning: PCA beating the embeddings is never shown as good news."""
    from bulkformer.analysis._separation import TONES, separation_verdict

    assert TONES[separation_verdict(0.6, 0.2)[0]] == "good"
    assert TONES[separation_verdict(0.2, 0.6)[0]] == "bad"
    assert TONES[separation_verdict(0.4, 0.42)[0]] == "neutral"
    kind, words = separation_verdict(0.02, 0.05)
    assert TONES[kind] == "neutral" and "Predict page" in words and "not the same as unpredictable" in words
