"""The hold-out check: which entries are hidden, and metrics against independent computations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bulkformer.analysis._holdout import hide_measured, score_imputation
from bulkformer.errors import BulkFormerError


def _cohort(n: int = 6, genes: int = 40, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    observed = rng.random(genes) < 0.75
    values = np.log1p(rng.gamma(0.8, 10.0, size=(n, genes))).astype(np.float32)
    values[:, ~observed] = -10.0
    return values, observed


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_hides_the_asked_share_of_measured_genes_per_sample(fraction: float) -> None:
    values, observed = _cohort()
    holdout = hide_measured(values, observed, fraction=fraction, seed=3)
    n_measured = int(observed.sum())
    assert (np.abs(holdout.hidden.sum(axis=1) - fraction * n_measured) <= 0.5).all()
    assert not holdout.hidden[:, ~observed].any()  # only measured entries are hidden
    assert (holdout.values[holdout.hidden] == -10).all()
    np.testing.assert_array_equal(holdout.values[~holdout.hidden], values[~holdout.hidden])
    assert len({tuple(row) for row in holdout.hidden}) > 1  # each sample draws its own genes
    values_before = values.copy()
    again = hide_measured(values, observed, fraction=fraction, seed=3)
    np.testing.assert_array_equal(again.hidden, holdout.hidden)  # seeded
    np.testing.assert_array_equal(values, values_before)  # the input is not modified


def test_per_sample_observed_mask_and_bad_fraction() -> None:
    values, observed = _cohort(2, 10)
    per_sample = np.ones((2, 10), dtype=bool)
    per_sample[1, :5] = False
    holdout = hide_measured(values, per_sample & observed, fraction=0.5)
    assert not holdout.hidden[1, :5].any()
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(BulkFormerError):
            hide_measured(values, observed, fraction=fraction)


def test_metrics_on_a_hand_example() -> None:
    truth = np.array([[0.0, 1.0, 2.0, 5.0, 9.0],
                      [0.0, 0.0, 3.0, 4.0, 8.0]])
    imputed = np.array([[0.5, 1.5, 1.0, 6.0, 7.0],
                        [0.2, 0.1, 3.5, 4.0, 1.0]])
    hidden = np.array([[True, True, True, True, False],
                       [True, False, True, True, True]])
    score = score_imputation(truth, imputed, hidden, sample_ids=["a", "b"])
    t, i = truth[hidden], imputed[hidden]
    assert score.n == 8
    assert score.pearson == pytest.approx(stats.pearsonr(t, i)[0])
    assert score.spearman == pytest.approx(stats.spearmanr(t, i)[0])
    assert score.mae == pytest.approx(np.mean(np.abs(t - i)))
    assert list(score.per_sample.index) == ["a", "b"] and score.per_sample.index.name == "sample_id"
    assert list(score.per_sample.columns) == ["pearson", "spearman", "mae", "n"]
    a = score.per_sample.loc["a"]
    assert a["n"] == 4 and a["mae"] == pytest.approx(np.mean([0.5, 0.5, 1.0, 1.0]))
    assert a["pearson"] == pytest.approx(np.corrcoef([0, 1, 2, 5], [0.5, 1.5, 1.0, 6.0])[0, 1])
    levels = score.by_level
    assert list(levels.columns) == ["level", "pearson", "spearman", "mae", "n"]
    assert levels["n"].sum() == 8
    zero = levels.iloc[0]
    assert zero["level"].startswith("0") and zero["n"] == 2
    assert zero["mae"] == pytest.approx((0.5 + 0.2) / 2)
    assert math.isnan(zero["pearson"])  # constant truth: undefined, not an error


def test_constant_and_empty_vectors_give_nan_without_warnings() -> None:
    truth = np.ones((2, 4))
    imputed = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    hidden = np.array([[True, True, True, True], [False, False, False, False]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = score_imputation(truth, imputed, hidden, sample_ids=["x", "y"])
    assert math.isnan(score.pearson) and math.isnan(score.spearman)
    assert score.mae == pytest.approx(1.5) and score.n == 4
    assert score.per_sample.loc["y", "n"] == 0 and math.isnan(score.per_sample.loc["y", "mae"])
    assert isinstance(score.by_level, pd.DataFrame)


def test_shape_mismatch_is_a_user_error() -> None:
    with pytest.raises(BulkFormerError):
        score_imputation(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 3), bool), sample_ids=["a", "b"])


# --- baselines and the verdict, on a cohort whose truth is known ------------------------------


def _known_cohort(n: int = 8, genes: int = 300, *, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Gene levels spread over 0–8 plus small noise: a gene's mean in the other samples is a
    good guess, and no sample structure lets kNN beat it."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.0, 8.0, genes)
    values = np.clip(level + rng.normal(scale=0.3, size=(n, genes)), 0, None).astype(np.float32)
    observed = np.ones(genes, dtype=bool)
    observed[-20:] = False
    values[:, ~observed] = -10.0
    return values, observed


def _other_samples_mean(values: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Each entry's gene mean over the other samples that still show it, written out by loops."""
    guess = np.full(values.shape, np.nan)
    for i, j in zip(*np.nonzero(hidden), strict=True):
        others = [values[s, j] for s in range(values.shape[0]) if s != i and not hidden[s, j]]
        if others:
            guess[i, j] = np.mean(others)
    return guess


def _compare(values: np.ndarray, observed: np.ndarray, imputed_for, fraction: float = 0.2):
    from bulkformer.analysis._holdout import compare_with_baselines

    holdout = hide_measured(values, observed, fraction=fraction, seed=0)
    imputed = imputed_for(holdout)
    ids = [f"s{i}" for i in range(values.shape[0])]
    return holdout, compare_with_baselines(values, holdout, imputed, observed=observed, sample_ids=ids)


def test_a_model_returning_the_gene_mean_ties_with_the_mean_baseline() -> None:
    from bulkformer.analysis._holdout import GENE_MEAN, MODEL, verdict

    values, observed = _known_cohort()

    def gene_mean_model(holdout):
        return np.where(holdout.hidden, _other_samples_mean(values, holdout.hidden), values)

    holdout, comparison = _compare(values, observed, gene_mean_model)
    table = comparison.table
    model = table[table["method"] == MODEL].drop(columns="method").reset_index(drop=True)
    mean = table[table["method"] == GENE_MEAN].drop(columns="method").reset_index(drop=True)
    pd.testing.assert_frame_equal(model, mean, rtol=1e-6)
    assert comparison.scores[MODEL].n == int(holdout.hidden.sum())
    judged = verdict(comparison)
    assert judged.level == "no better"
    assert "do not rely on imputed genes from this model for this data" in judged.meaning
    assert f"{comparison.scores[MODEL].pearson:.3f}" in judged.sentence


def test_a_model_returning_the_hidden_truth_wins() -> None:
    from bulkformer.analysis._holdout import KNN, MODEL, verdict

    values, observed = _known_cohort()
    _, comparison = _compare(values, observed, lambda holdout: values.copy())
    assert comparison.scores[MODEL].pearson == pytest.approx(1.0) and comparison.scores[MODEL].mae == 0
    assert comparison.scores[KNN].mae > 0
    judged = verdict(comparison)
    assert judged.level == "better" and "clearly beats" in judged.headline and not judged.warnings


def test_a_constant_model_loses() -> None:
    from bulkformer.analysis._holdout import MODEL, verdict

    values, observed = _known_cohort()
    _, comparison = _compare(values, observed, lambda holdout: np.full(values.shape, 2.0, dtype=np.float32))
    assert math.isnan(comparison.scores[MODEL].pearson)
    judged = verdict(comparison)
    assert judged.level == "worse" and "undefined" in judged.sentence
    assert "do not rely on imputed genes" in judged.meaning


def test_baselines_are_the_other_samples_gene_mean_and_knn() -> None:
    """With 4 samples kNN uses k = 3, i.e. every other sample that shows the gene: its guess is
    then that gene's mean over the other samples, computed here by hand."""
    from bulkformer.analysis._holdout import GENE_MEAN, KNN

    values, observed = _known_cohort(n=4)
    holdout, comparison = _compare(values, observed, lambda h: values.copy(), fraction=0.3)
    by_hand = _other_samples_mean(values, holdout.hidden)
    scored = holdout.hidden & ~np.isnan(by_hand)  # a gene hidden in every other sample has no guess
    assert 0 < scored.sum() < holdout.hidden.sum()
    expected = by_hand[scored]
    assert comparison.knn_neighbours == 3
    np.testing.assert_allclose(comparison.guesses[GENE_MEAN], expected, rtol=1e-5)
    np.testing.assert_allclose(comparison.guesses[KNN], expected, rtol=1e-5)
    np.testing.assert_array_equal(comparison.truth, values[scored])


def test_tidy_table_has_every_method_scope_and_group() -> None:
    from bulkformer.analysis._holdout import GENE_MEAN, KNN, MODEL, TABLE_COLUMNS

    values, observed = _known_cohort()
    _, comparison = _compare(values, observed, lambda h: values.copy())
    table = comparison.table
    assert tuple(table.columns) == TABLE_COLUMNS
    assert list(table["method"].unique()) == [MODEL, GENE_MEAN, KNN]
    for method in (MODEL, GENE_MEAN, KNN):
        rows = table[table["method"] == method]
        assert list(rows.loc[rows["scope"] == "sample", "group"]) == [f"s{i}" for i in range(8)]
        assert rows.loc[rows["scope"] == "overall", "n"].item() == rows.loc[rows["scope"] == "sample", "n"].sum()
        assert rows.loc[rows["scope"] == "level", "n"].sum() == rows.loc[rows["scope"] == "overall", "n"].item()


def test_three_samples_cannot_be_judged_and_low_coverage_is_said() -> None:
    from bulkformer.analysis._holdout import MODEL, verdict

    values, observed = _known_cohort(n=3)
    _, comparison = _compare(values, observed, lambda h: values.copy())
    assert list(comparison.scores) == [MODEL] and comparison.knn_neighbours is None
    judged = verdict(comparison)
    assert judged.level == "cannot judge" and "3 sample(s)" in judged.sentence
    assert set(comparison.table["method"]) == {MODEL}

    sparse = np.zeros(1000, dtype=bool)
    sparse[:200] = True  # 20 % of the model's genes measured
    wide = np.full((8, 1000), -10.0, dtype=np.float32)
    wide[:, :200] = _known_cohort(genes=200)[0]
    _, comparison = _compare(wide, sparse, lambda h: wide.copy())
    judged = verdict(comparison)
    assert judged.level == "better" and judged.warnings and "200 of the model's 1,000" in judged.warnings[0]
    assert any(line.startswith("Warning: Low coverage") for line in judged.lines())


def test_level_caption_is_computed_from_the_numbers() -> None:
    from bulkformer.analysis._holdout import compare_with_baselines, describe_levels

    values, observed = _known_cohort()
    values[:, :40] = 0.0  # some genes not expressed anywhere
    holdout = hide_measured(values, observed, fraction=0.2, seed=0)
    good_on_zeros = np.where(values == 0, 0.0, values + 1.0)  # exact on unexpressed, off by 1 elsewhere
    comparison = compare_with_baselines(values, holdout, good_on_zeros, observed=observed,
                                        sample_ids=[f"s{i}" for i in range(8)])
    text = describe_levels(comparison)
    assert "mean absolute error is 0.00, smaller than for expressed genes (1.00)" in text
    bad_on_zeros = np.where(values == 0, 3.0, values)
    comparison = compare_with_baselines(values, holdout, bad_on_zeros, observed=observed,
                                        sample_ids=[f"s{i}" for i in range(8)])
    text = describe_levels(comparison)
    assert "mean absolute error is 3.00, larger than for expressed genes (0.00)" in text
    assert "Highest Pearson r per expression level: low: BulkFormer; mid: BulkFormer; high: BulkFormer" in text


def test_share_close_counts_values_within_the_tolerance() -> None:
    from bulkformer.analysis._holdout import MODEL, share_close

    values, observed = _known_cohort()
    off = np.where(np.arange(values.shape[1]) % 2 == 0, 0.4, 0.6).astype(np.float32)  # close on even genes only
    holdout, comparison = _compare(values, observed, lambda holdout: values + off)
    even = np.nonzero(holdout.hidden)[1] % 2 == 0
    assert share_close(comparison, MODEL) == pytest.approx(even.mean())
    assert share_close(comparison, MODEL, tolerance=0.7) == 1.0
