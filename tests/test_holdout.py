"""The hold-out check: which entries are hidden, and metrics against independent computations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bulkformer.errors import BulkFormerError
from bulkformer.holdout import hide_measured, score_imputation


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
