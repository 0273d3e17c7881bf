"""Downstream prediction on synthetic cohorts whose truth is known.

A label built from a few embedding dimensions (or a few genes) must be found, better than
chance, by the features that carry it; a random label must not; the folds must never let a test
sample's features or label into the training. Data are small and permutations few so the file
runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from bulkformer.analysis import predict
from bulkformer.errors import InputError

N = 100  # ≥ REPEATS_BELOW: plain 5-fold, the cheapest honest plan
PERMUTATIONS = 29  # p-value floor 1/30 ≈ 0.033 < 0.05

pytestmark = pytest.mark.usefixtures("small_grids")


def cohort(n: int = N, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(embedding [n, 6] standard normal, expression [n, 30] log-scale noise), independent."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.normal(5.0, 1.0, size=(n, 30))


def sheet(n: int = N, **columns: object) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index([f"S{i:03d}" for i in range(n)], name="sample_id"))


def two_classes(score: np.ndarray) -> np.ndarray:
    return np.where(score > np.median(score), "case", "control")


# ------------------------------------------------------------------------------------ found / not found
def test_label_from_embedding_dimensions_is_found_and_embeddings_beat_pca() -> None:
    emb, expr = cohort()
    target = predict.make_target(sheet(label=two_classes(emb[:, 0] - emb[:, 1])), "label")
    result = predict.evaluate(emb, expr, target, n_permutations=PERMUTATIONS)
    e, p = result.summary("embeddings"), result.summary("pca")
    assert e.score("balanced_accuracy").value > 0.85 and e.score("auroc").value > 0.9
    assert e.p_value < 0.05  # at the permutation floor: no shuffle did as well
    assert p.p_value > 0.05 and abs(p.score("balanced_accuracy").value - 0.5) < 0.15  # expression is noise
    assert result.comparison.difference > 0.3 and result.comparison.p_value < 0.05
    assert result.verdict.startswith("Embeddings beat PCA on label") and result.tone == "good"
    assert result.plan.description.startswith("stratified 5-fold over 100 samples")
    table = result.table()
    assert list(table.index) == ["BulkFormer embeddings", "PCA of log1p TPM", "both together"]
    assert table.loc["BulkFormer embeddings"].iloc[-2] == "≤ 0.033"


def test_label_from_a_few_genes_is_found_by_pca_not_by_unrelated_embeddings() -> None:
    emb, expr = cohort(seed=1)
    expr[:, :3] = 5.0 + 3.0 * np.random.default_rng(2).normal(size=(N, 3))  # the top-variance genes
    target = predict.make_target(sheet(label=two_classes(expr[:, :3].sum(axis=1))), "label")
    result = predict.evaluate(emb, expr, target, n_permutations=PERMUTATIONS)
    assert result.summary("pca").score("balanced_accuracy").value > 0.85
    assert result.summary("pca").p_value < 0.05
    assert result.summary("embeddings").p_value > 0.05
    assert "no better than chance" in result.verdict and result.tone == "bad"
    assert "PCA of the expression does better than chance" in result.verdict
    assert result.best in ("pca", "both")


def test_label_carried_by_both_feature_sets_is_no_better_than_pca() -> None:
    emb, expr = cohort(seed=3)
    expr[:, :3] = 5.0 + 3.0 * emb[:, :3]  # the same signal in three genes and three dimensions
    target = predict.make_target(sheet(label=two_classes(emb[:, :3].sum(axis=1))), "label")
    result = predict.evaluate(emb, expr, target, n_permutations=PERMUTATIONS)
    for features in predict.FEATURE_SETS:
        assert result.summary(features).score("balanced_accuracy").value > 0.85
        assert result.summary(features).p_value < 0.05
    assert result.comparison.p_value > 0.05
    assert "better than chance" in result.verdict and "but no better than PCA" in result.verdict
    assert result.tone in ("neutral", "bad")  # no better than PCA is never shown as good news


def test_random_label_is_no_better_than_chance() -> None:
    emb, expr = cohort(seed=4)
    labels = np.random.default_rng(5).choice(["a", "b", "c"], size=N)
    target = predict.make_target(sheet(label=labels), "label")
    result = predict.evaluate(emb, expr, target, n_permutations=PERMUTATIONS)
    for features in predict.FEATURE_SETS:
        assert result.summary(features).p_value > 0.2
        assert abs(result.summary(features).score("balanced_accuracy").value - 1 / 3) < 0.15
    assert result.verdict.startswith("BulkFormer embeddings predict label no better than chance")
    assert "Neither does PCA" in result.verdict
    assert [s.metric for s in result.summary("embeddings").scores] == ["balanced_accuracy", "weighted_f1"]


def test_regression_of_a_linear_function_of_the_embeddings() -> None:
    emb, expr = cohort(seed=6)
    rng = np.random.default_rng(7)
    age = 50 + 10 * (emb[:, 0] + 0.5 * emb[:, 2]) + rng.normal(0, 2, size=N)
    target = predict.make_target(sheet(age=age), "age")
    assert target.kind == "regression"
    result = predict.evaluate(emb, expr, target, n_permutations=PERMUTATIONS)
    e = result.summary("embeddings")
    assert e.score("r2").value > 0.8 and e.score("pearson").value > 0.9 and e.p_value < 0.05
    assert result.summary("pca").score("r2").value < 0.1 and result.summary("pca").p_value > 0.05
    assert result.verdict.startswith("Embeddings beat PCA on age")
    oof = result.out_of_fold[result.out_of_fold["features"] == "embeddings"]
    assert len(oof) == N and np.corrcoef(oof["observed"], oof["predicted"])[0, 1] > 0.9
    np.testing.assert_allclose(oof.set_index("sample_id").loc[list(target.sample_ids), "observed"], age)


def test_survival_risk_from_the_embeddings_is_found() -> None:
    emb, expr = cohort(seed=8)
    rng = np.random.default_rng(9)
    risk = 1.5 * emb[:, 1]
    event_time = rng.exponential(np.exp(-risk))
    censor_time = rng.exponential(2.0, size=N)
    time = np.minimum(event_time, censor_time)
    status = np.where(event_time <= censor_time, "dead", "alive")
    target = predict.make_target(sheet(months=time, status=status), "months", event_column="status")
    assert target.kind == "survival" and target.events.sum() == (status == "dead").sum()
    result = predict.evaluate(emb, expr, target, n_permutations=PERMUTATIONS)
    e = result.summary("embeddings")
    assert e.score("c_index").value > 0.7 and e.p_value < 0.05
    assert abs(result.summary("pca").score("c_index").value - 0.5) < 0.1
    assert "Embeddings beat PCA on months + status" in result.verdict
    curves = predict.risk_group_curves(result, "embeddings")
    assert set(curves.curves) == {"lower risk", "higher risk"} and curves.logrank_p < 0.05
    # the lower-risk group outlives the higher-risk one at the median follow-up
    t_mid = np.median(time)
    surv = {g: s[np.searchsorted(t, t_mid, side="right") - 1] for g, (t, s) in curves.curves.items()}
    assert surv["lower risk"] > surv["higher risk"]


# ------------------------------------------------------------------------------ predictions, small cohorts
def test_unlabelled_samples_are_predicted_by_the_model_fit_on_the_labelled() -> None:
    emb, expr = cohort(N + 10, seed=10)
    truth = two_classes(emb[:, 0])
    labels = truth.astype(object)
    labels[:10] = ""  # blank cells: to be predicted
    target = predict.make_target(sheet(N + 10, label=labels), "label")
    assert target.n_labelled == N
    result = predict.evaluate(emb, expr, target, n_permutations=9)
    assert result.plan.description.startswith("stratified 5-fold over 100 samples")
    assert list(result.predictions.index) == [f"S{i:03d}" for i in range(10)]
    clear = np.abs(emb[:10, 0] - np.median(emb[:, 0])) > 0.3  # not on the class boundary
    assert clear.sum() >= 5
    assert (result.predictions["predicted"].to_numpy() == truth[:10])[clear].all()
    np.testing.assert_allclose(result.predictions[["p_case", "p_control"]].sum(axis=1), 1.0)
    assert "but 9 shuffles cannot show p < 0.05: run again with at least 19 shuffles" in result.verdict
    assert result.tone == "neutral"
    assert set(result.out_of_fold["sample_id"]) == {f"S{i:03d}" for i in range(10, N + 10)}
    section = predict.report_section(result)
    assert "## Predicting label" in section and result.verdict in section and "Fitted models" in section


def test_small_cohort_is_repeated_k_fold_and_every_sample_gets_an_out_of_fold_prediction(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predict.models, "N_REPEATS", 2)  # 10 folds instead of 25: the same plan, faster
    emb, expr = cohort(20, seed=11)
    target = predict.make_target(sheet(20, label=two_classes(emb[:, 0])), "label")
    result = predict.evaluate(emb, expr, target, n_permutations=9)
    assert result.plan.description.startswith("stratified 5-fold, repeated 2 times over 20 samples")
    assert len(result.folds) == 3 * 10
    oof = result.out_of_fold[result.out_of_fold["features"] == "embeddings"]
    assert sorted(oof["sample_id"]) == sorted(target.sample_ids)  # the first repetition: each sample once
    first = result.folds[(result.folds["features"] == "embeddings")]
    mean = first["balanced_accuracy"].mean()
    assert result.summary("embeddings").score("balanced_accuracy").value == pytest.approx(mean)
    assert predict.confusion(result, "embeddings").to_numpy().sum() == 20


def test_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(17)
    truth = rng.choice(["a", "b", "c"], size=40).astype(object)
    predicted = np.where(rng.random(40) < 0.6, truth, rng.choice(["a", "b", "c"], size=40)).astype(object)
    assert predict.balanced_accuracy(truth, predicted) == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert predict.weighted_f1(truth, predicted) == pytest.approx(f1_score(truth, predicted, average="weighted"))
    positive = truth == "a"
    score = np.round(rng.random(40), 1)  # ties
    assert predict.auroc(positive, score) == pytest.approx(roc_auc_score(positive, score))
    assert np.isnan(predict.auroc(np.zeros(5, dtype=bool), score[:5]))


# ------------------------------------------------------------------------------------------- no leaks
@pytest.mark.parametrize("kind", ["classification", "regression", "survival"])
def test_outer_folds_are_disjoint_and_cover_every_labelled_sample(kind: str) -> None:
    rng = np.random.default_rng(12)
    columns = {"classification": {"y": rng.choice(list("abc"), size=60)},
               "regression": {"y": rng.normal(size=60)},
               "survival": {"y": rng.exponential(size=60), "e": rng.integers(0, 2, size=60)}}[kind]
    target = predict.make_target(sheet(60, **columns), "y", event_column="e" if kind == "survival" else None)
    plan = predict.plan_cv(target, seed=0)
    assert len(plan.splits) == predict.N_FOLDS * predict.N_REPEATS  # 60 < 100 samples: repeated
    for repeat in range(predict.N_REPEATS):
        tests = [test for (_, test), r in zip(plan.splits, plan.repeats, strict=True) if r == repeat]
        assert sorted(np.concatenate(tests)) == list(range(60))  # each sample tested once per repeat
    for train, test in plan.splits:
        assert not set(train) & set(test) and len(train) + len(test) == 60


def test_a_fold_never_reads_its_test_samples() -> None:
    """Changing the test rows' features and labels changes neither the chosen settings nor the
    model; the test predictions equal a pipeline fitted by hand on the training rows alone."""
    _, expr = cohort(seed=13)
    design = predict.sample_space(expr)
    labels = two_classes(expr[:, 0] + expr[:, 1])
    target = predict.make_target(sheet(label=labels), "label")
    train, test = predict.plan_cv(target).splits[0]
    fit = predict.fit_fold(target, design, "pca", train, test, inner_folds=3, n_embedding=0)

    tampered = design.copy()
    tampered[test] = 1000.0 * np.random.default_rng(14).normal(size=(len(test), design.shape[1]))
    flipped = labels.copy()
    flipped[test] = np.where(labels[test] == "case", "control", "case")
    fit2 = predict.fit_fold(predict.make_target(sheet(label=flipped), "label"), tampered, "pca", train, test,
                            inner_folds=3, n_embedding=0)
    assert fit2.params == fit.params

    by_hand = predict.make_pipeline("classification", "pca").set_params(**fit.params)
    by_hand.fit(design[train], labels[train])
    assert list(by_hand.classes_) == list(target.classes)
    np.testing.assert_allclose(fit.output, by_hand.predict_proba(design[test]), atol=1e-10)


def test_sample_space_rotation_leaves_in_fold_pca_unchanged() -> None:
    """PCA fitted on some rows of the rotated matrix gives the scores PCA on the genes gives."""
    rng = np.random.default_rng(15)
    genes = rng.normal(size=(40, 500)) @ np.diag(rng.uniform(0.5, 3.0, 500))
    rotated = predict.sample_space(genes)
    assert rotated.shape == (40, 40)
    fit_rows, other = np.arange(30), np.arange(30, 40)
    on_genes = PCA(5, svd_solver="full").fit(genes[fit_rows])
    on_rotated = PCA(5, svd_solver="full").fit(rotated[fit_rows])
    np.testing.assert_allclose(np.abs(on_rotated.transform(rotated[other])),
                               np.abs(on_genes.transform(genes[other])), atol=1e-8)


# -------------------------------------------------------------------------------------------- refusals
def test_refuses_a_class_with_fewer_than_three_samples() -> None:
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 2
    with pytest.raises(InputError, match=r"fewer than 3 samples: 'c' \(2\)") as info:
        predict.make_target(sheet(22, label=labels), "label")
    assert "Merge rare classes" in info.value.hint


def test_refuses_a_constant_column() -> None:
    with pytest.raises(InputError, match="same 'batch'"):
        predict.make_target(sheet(20, batch=["B1"] * 20), "batch")
    with pytest.raises(InputError, match="same 'dose'"):
        predict.make_target(sheet(20, dose=np.full(20, 3.5)), "dose", kind="regression")


def test_refuses_too_few_labelled_samples() -> None:
    labels = ["a"] * 5 + ["b"] * 4 + [""] * 11
    with pytest.raises(InputError, match="Only 9 samples have a value in 'label'"):
        predict.make_target(sheet(20, label=labels), "label")


def test_refuses_bad_survival_columns_and_missing_columns() -> None:
    times = np.arange(1.0, 21.0)
    with pytest.raises(InputError, match="Only 2 labelled samples had the event"):
        predict.make_target(sheet(20, t=times, e=[1, 1] + [0] * 18), "t", event_column="e")
    with pytest.raises(InputError, match="neither event nor censored: 'maybe'"):
        predict.make_target(sheet(20, t=times, e=["maybe"] + [1] * 19), "t", event_column="e")
    with pytest.raises(InputError, match="non-negative numbers"):
        predict.make_target(sheet(20, t=[-1.0, *times[1:]], e=[1] * 20), "t", event_column="e")
    with pytest.raises(InputError, match="no column 'tissue'"):
        predict.make_target(sheet(20, t=times), "tissue")
    with pytest.raises(InputError, match="no sample sheet"):
        predict.make_target(None, "tissue")


def test_column_kind_follows_the_values() -> None:
    stage = predict.make_target(sheet(20, stage=[1, 2, 3, 4] * 5), "stage")
    assert stage.kind == "classification" and stage.classes == ("1", "2", "3", "4")
    age = predict.make_target(sheet(20, age=np.linspace(20, 80, 20)), "age")
    assert age.kind == "regression"


def test_embeddings_of_another_table_are_refused() -> None:
    emb, expr = cohort(seed=16)
    target = predict.make_target(sheet(label=two_classes(emb[:, 0])), "label")
    with pytest.raises(InputError, match="one row per sample"):
        predict.evaluate(emb[:50], expr, target, n_permutations=9)


def test_permutation_p_value_is_written_as_a_bound_at_its_floor() -> None:
    assert predict.format_p(0.01, 99) == "≤ 0.01" and predict.p_text(0.01, 99) == "p ≤ 0.01"
    assert predict.format_p(0.42, 99) == "0.42" and predict.p_text(0.42, 99) == "p = 0.42"


def test_logrank_words_judge_the_p_value_at_the_given_level() -> None:
    def words(p: float) -> str:
        return predict.SurvivalCurves({}, {}, p).logrank_words(alpha=0.05)

    assert "p = 0.01, under 0.05: the two groups' curves differ" in words(0.01)
    assert "p = 0.3, not under 0.05" in words(0.3) and "does not separate" in words(0.3)
    assert "not under 0.05" in words(0.05)  # the level itself is not significant
    assert words(float("nan")).startswith("No log-rank test")


def test_majority_baseline_is_the_largest_class_share_and_one_over_k() -> None:
    # observed: a 6, b 3, c 1 (10 samples); diagonal 5 + 2 + 0 = 7 right
    matrix = pd.DataFrame([[5, 1, 0], [1, 2, 0], [0, 1, 0]], index=["a", "b", "c"], columns=["a", "b", "c"])
    base = predict.majority_baseline(matrix)
    assert (base.label, base.n_label, base.n_samples, base.n_classes) == ("a", 6, 10, 3)
    assert base.accuracy == pytest.approx(0.6) and base.balanced_accuracy == pytest.approx(1 / 3)
    assert base.matrix_accuracy == pytest.approx(0.7)
    words = base.words()
    assert "always predicting the most common class (a, 6 of 10 samples)" in words
    assert "accuracy 0.60 and balanced accuracy 0.33 (1 of 3 classes right)" in words
    assert "holds 70% of the samples" in words
