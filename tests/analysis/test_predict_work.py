"""An evaluation's progress counts model fits, the fits it really makes (issue #26: the time left
assumed equal steps, and a grid search is many fits where a label shuffle is a few); the measured
pace prices the next run, with an honest range; the scores are the same as before the change."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from bulkformer.analysis import predict

pytestmark = pytest.mark.usefixtures("small_grids")

N = 100  # ≥ REPEATS_BELOW: plain 5-fold
SHUFFLES = 9


def cohort(n: int = N) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(embedding [n, 6], expression [n, 30], sheet with a two-class ``label`` and a number)."""
    rng = np.random.default_rng(0)
    emb, expr = rng.normal(size=(n, 6)), rng.normal(5.0, 1.0, size=(n, 30))
    label = np.where(emb[:, 0] - emb[:, 1] + 0.5 * rng.normal(size=n) > 0, "case", "control")
    number = emb[:, 0] + expr[:, 0] + rng.normal(size=n)
    ids = pd.Index([f"S{i:03d}" for i in range(n)], name="sample_id")
    return emb, expr, pd.DataFrame({"label": label, "number": number}, index=ids)


def counting(monkeypatch: pytest.MonkeyPatch, *classes: type) -> list[int]:
    """Counts every ``fit`` of the final estimators ``classes``, wherever it is called from
    (grid search, refit, shuffles, final models)."""
    calls: list[int] = []
    for cls in classes:
        original: Callable = cls.fit

        @functools.wraps(original)
        def fit(self, *args, _original=original, **kwargs):
            calls.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", fit)
    return calls


@pytest.mark.parametrize(("column", "kind"), [("label", "classification"), ("number", "regression")])
def test_progress_counts_the_model_fits_the_evaluation_makes(monkeypatch: pytest.MonkeyPatch, column: str,
                                                             kind: str) -> None:
    emb, expr, sheet = cohort()
    target = predict.make_target(sheet, column, kind=kind)
    fits = counting(monkeypatch, LogisticRegression, Ridge)
    reports: list[tuple[int, int]] = []
    result = predict.evaluate(emb, expr, target, n_permutations=SHUFFLES, seed=3,
                              progress=lambda done, total: reports.append((done, total)))
    # By hand, small grids: penalty 2 settings; PCA sizes (2, 5) → 4 settings for pca and both.
    # A grid search: settings × 3 inner folds + 1 refit → 7 (embeddings), 13, 13 = 33.
    # 5 outer folds × 33 + 9 shuffles × 5 folds × 3 feature sets + 3 final models (33) = 333.
    assert len(fits) == 333
    assert reports[-1] == (333, 333)
    assert {total for _, total in reports} == {333}
    done = [d for d, _ in reports]
    assert done == sorted(done) and len(set(done)) == len(done)  # only rises
    assert done[:3] == [7, 20, 33]  # the first fold: each feature set's grid search weighed by its fits
    assert result.work is not None and result.work.total == 333


def test_scores_are_those_before_fits_were_counted() -> None:
    """The same seeds give the same numbers (values computed before the change)."""
    emb, expr, sheet = cohort()
    label = predict.evaluate(emb, expr, predict.make_target(sheet, "label"), n_permutations=SHUFFLES, seed=3)
    assert label.summary("embeddings").score("balanced_accuracy").value == pytest.approx(0.9116161616161615)
    assert label.summary("pca").score("balanced_accuracy").value == pytest.approx(0.4344444444444444)
    assert label.summary("both").score("balanced_accuracy").value == pytest.approx(0.8743434343434343)
    assert [s.p_value for s in label.summaries] == pytest.approx([0.1, 1.0, 0.1])
    assert label.comparison.difference == pytest.approx(0.47717171717171725)
    number = predict.evaluate(emb, expr, predict.make_target(sheet, "number", kind="regression"),
                              n_permutations=SHUFFLES, seed=3)
    assert [s.score("r2").value for s in number.summaries] == pytest.approx(
        [0.30275154260057435, 0.14282763644370283, 0.449318821870769])
    assert number.summary("both").chosen == "5 principal components, penalty α = 10"


def test_planned_work_says_what_the_evaluation_includes() -> None:
    sheet = cohort()[2]
    work = predict.planned_work(predict.make_target(sheet, "label"), n_permutations=SHUFFLES, n_expression=30,
                                n_embedding=6, seed=3)
    assert (work.tuned_fits, work.permutation_fits, work.total) == (198, 135, 333)
    assert work.words() == ("5 folds × 3 feature sets, each tuned over 2 to 4 settings with 3 inner folds, then 9 "
                            "label shuffles refitting every fold, and 3 final models: 333 model fits in all.")
    # 60 samples: 5-fold repeated 5 times → 25 × 33 + 9 × 25 × 3 + 33
    small = predict.make_target(cohort(60)[2], "label")
    repeated = predict.planned_work(small, n_permutations=SHUFFLES, n_expression=30, n_embedding=6)
    assert repeated.total == 25 * 33 + 9 * 25 * 3 + 33
    assert repeated.words().startswith("25 folds (5-fold, repeated 5 times) × 3 feature sets")
    # more genes than samples: the expression is rotated into one column per sample, the PCA
    # sizes stay those of the grid; as many genes as samples or more give the same plan
    assert predict.planned_work(predict.make_target(sheet, "label"), n_permutations=SHUFFLES, n_expression=20_000,
                                n_embedding=6, seed=3) == predict.planned_work(
        predict.make_target(sheet, "label"), n_permutations=SHUFFLES, n_expression=N, n_embedding=6, seed=3)


def test_the_measured_pace_prices_the_run_it_was_measured_on() -> None:
    """The pace splits the run's own time between its tuned and its shuffle fits: at that pace,
    the same work takes exactly the time it took."""
    emb, expr, sheet = cohort()
    result = predict.evaluate(emb, expr, predict.make_target(sheet, "label"), n_permutations=SHUFFLES, seed=3)
    assert result.pace is not None and result.pace.kind == "classification"
    assert result.pace.tuned > 0 and result.pace.shuffled > 0
    assert result.pace.seconds(result.work) == pytest.approx(result.seconds, rel=1e-9)


def test_time_range_is_measured_and_never_narrower_than_a_shared_servers_spread() -> None:
    sheet = cohort()[2]
    work = predict.planned_work(predict.make_target(sheet, "label"), n_permutations=SHUFFLES, n_expression=30,
                                n_embedding=6, seed=3)
    pace = predict.FitPace("classification", tuned=0.5, shuffled=0.2)
    seconds = 0.5 * 198 + 0.2 * 135
    assert pace.seconds(work) == pytest.approx(seconds)
    assert predict.time_range(work, [pace]) == pytest.approx((seconds / predict.LOAD_FACTOR,
                                                              seconds * predict.LOAD_FACTOR))
    assert predict.time_range(work, []) is None
    assert predict.time_range(work, [predict.FitPace("regression", 0.5, 0.2)]) is None  # another kind of model
    slow = predict.FitPace("classification", tuned=2.0, shuffled=0.8)  # a run 4 times slower: the range spans it
    low, high = predict.time_range(work, [pace, slow])
    assert low == pytest.approx(seconds) and high == pytest.approx(4 * seconds)
    # a run with more shuffles is priced at the shuffles' own pace, not the tuned fits'
    more = predict.planned_work(predict.make_target(sheet, "label"), n_permutations=99, n_expression=30,
                                n_embedding=6, seed=3)
    assert pace.seconds(more) == pytest.approx(0.5 * 198 + 0.2 * 99 * 15)
