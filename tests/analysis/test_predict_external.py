"""Predict across cohorts: external validation and saved predictors, on simulated cohorts whose
truth is known.

Two cohorts share a weak true signal (three genes up in cases). In the training cohort a strong
batch effect is confounded with the label (every case in batch 2); in the test cohort the batch
is independent of it. Within-cohort cross-validation rides on the batch and scores high; scored
once on the test cohort the same models must score lower: the honest number. Without the
confounding both numbers agree. A saved predictor must reproduce the scikit-learn pipeline fitted
on the genes themselves (the reference) and refuse another model or missing genes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bulkformer.analysis import predict
from bulkformer.errors import InputError

PERMUTATIONS = 19
BOOT = 200
N_GENES = 40
GENES = tuple(f"G{i:03d}" for i in range(N_GENES))

pytestmark = pytest.mark.usefixtures("small_grids")


def simulate(n: int, *, seed: int, confounded: bool, shift: float = 0.0,
             missing: tuple[int, ...] = ()) -> tuple[predict.CohortData, np.ndarray]:
    """A cohort of ``n`` samples: label case/control half and half; genes 0–2 carry the true
    signal (+1.0 in cases); genes 10–29 a batch effect (+3.0 in batch 2), batch = label when
    ``confounded`` else drawn at random; ``shift`` added to every gene (another lab's scale);
    genes in ``missing`` not measured. Embeddings: a fixed projection of the expression + noise."""
    rng = np.random.default_rng(seed)
    case = np.arange(n) % 2 == 1
    batch = case.copy() if confounded else rng.random(n) < 0.5
    x = rng.normal(5.0, 1.0, size=(n, N_GENES))
    x[:, :3] += 1.0 * case[:, None]
    x[:, 10:30] += 3.0 * batch[:, None]
    x += shift
    projection = np.random.default_rng(99).normal(size=(N_GENES, 8)) / np.sqrt(N_GENES)
    emb = (x - 5.0) @ projection + 0.05 * rng.normal(size=(n, 8))
    observed = np.ones(N_GENES, bool)
    observed[list(missing)] = False
    x[:, ~observed] = -10.0
    ids = tuple(f"{'AB'[seed % 2]}{seed}_{i:03d}" for i in range(n))
    sheet = pd.DataFrame({"status": np.where(case, "case", "control")}, index=pd.Index(ids, name="sample_id"))
    return predict.CohortData(emb, x, observed, ids, GENES, sheet, value_type="tpm"), case


def cross_validate(cohort: predict.CohortData) -> predict.PredictionResult:
    return cross_validate_column(cohort, "status")


def cross_validate_column(cohort: predict.CohortData, column: str) -> predict.PredictionResult:
    target = predict.make_target(cohort.metadata, column)
    expression = predict.expression_features(cohort.values, cohort.observed)
    return predict.evaluate(cohort.embedding, expression, target, n_permutations=PERMUTATIONS)


def test_a_confounded_batch_inflates_within_cohort_cv_and_external_validation_shows_it() -> None:
    train, _ = simulate(100, seed=0, confounded=True)
    test, _ = simulate(80, seed=1, confounded=False)
    cv = cross_validate(train)
    ext = predict.validate_external(cv, train, test, model_checksum="m", n_bootstrap=BOOT)
    for features in predict.FEATURE_SETS:
        within = cv.summary(features).score("balanced_accuracy").value
        outside = ext.score(features).value
        assert within > 0.95  # the batch separates the classes perfectly inside cohort A
        assert outside < within - 0.15, features  # B's batch says nothing about the label
        assert ext.score(features).cv_value == pytest.approx(within)
    assert "overstated" in ext.verdict
    assert ext.score("embeddings").low <= ext.score("embeddings").value <= ext.score("embeddings").high
    assert ext.baseline["balanced_accuracy"] == pytest.approx(0.5)  # one class for all: 1 of 2 classes right
    assert ext.n_shared_genes == N_GENES and "all the training cohort's genes" in ext.gene_note


def test_without_confounding_external_scores_match_cv_and_beat_the_baseline() -> None:
    train, _ = simulate(100, seed=2, confounded=False)
    test, case = simulate(80, seed=3, confounded=False)
    cv = cross_validate(train)
    ext = predict.validate_external(cv, train, test, model_checksum="m", n_bootstrap=BOOT)
    emb = ext.score("embeddings")
    assert emb.low > ext.baseline["balanced_accuracy"]
    assert abs(emb.value - emb.cv_value) < 0.15
    assert "better than the baseline" in ext.verdict and "carries over about as well" in ext.verdict
    # the embeddings here mix the batch genes in; PCA finds the three signal genes better
    assert (ext.tone == "bad") == ("PCA of the expression beats the embeddings" in ext.verdict)
    # the predictions are the test samples' own, each with its observed label
    rows = ext.predictions[ext.predictions["features"] == "embeddings"]
    assert list(rows["sample_id"]) == list(test.sample_ids)
    assert list(rows["observed"]) == list(np.where(case, "case", "control"))
    table = ext.table()
    assert "baseline (always the training cohort's most common class)" in table.index
    assert "## Predicting status on a second cohort" in ext.report_section()


def test_a_shifted_cohort_is_warned_about_and_missing_genes_restrict_the_pca() -> None:
    train, _ = simulate(100, seed=4, confounded=False)
    test, _ = simulate(40, seed=5, confounded=False, shift=2.0, missing=tuple(range(30, 40)))
    cv = cross_validate(train)
    ext = predict.validate_external(cv, train, test, model_checksum="m", n_bootstrap=50)
    assert any("further apart" in w for w in ext.warnings)
    assert ext.n_shared_genes == 30 and "refitted on the training cohort over those 30 shared genes" in ext.gene_note
    assert "need no shared genes" in ext.gene_note
    assert ext.predictor("pca").genes == GENES[:30] and ext.predictor("embeddings").genes == ()
    # a gene panel with no gene in common: only the embeddings are scored
    panel, _ = simulate(40, seed=7, confounded=False, missing=tuple(range(N_GENES)))
    only = predict.validate_external(cv, train, panel, model_checksum="m", n_bootstrap=20)
    assert only.feature_sets == ("embeddings",) and "only the embeddings were scored" in only.gene_note
    assert any("measure different genes" in w for w in only.warnings)


def test_test_cohort_labels_unknown_classes_are_left_out_and_a_missing_column_refused() -> None:
    train, _ = simulate(20, seed=6, confounded=False)
    trained = predict.make_target(train.metadata, "status")
    sheet = pd.DataFrame({"status": ["case", "control"] * 6 + ["relapse"] * 2})
    target, notes = predict.read_test_target(sheet, trained)
    assert target.n_labelled == 12 and "2 test samples belong to classes" in notes[0]
    with pytest.raises(InputError, match="no column 'status'"):
        predict.read_test_target(sheet.rename(columns={"status": "other"}), trained)


# ------------------------------------------------------------------------------------ saved predictors
def _target(values: np.ndarray, n: int) -> predict.Target:
    return predict.make_target(pd.DataFrame({"y": values}, index=[f"S{i}" for i in range(n)]), "y")


def test_a_pca_predictor_reproduces_the_pipeline_fitted_on_the_genes_themselves() -> None:
    # more genes than samples: the PCA is fitted in the samples' own basis and rotated back
    rng = np.random.default_rng(10)
    n, g = 60, 150
    x = rng.normal(5, 1, size=(n, g))
    x[:, :4] += 2.0 * (np.arange(n) % 2 == 1)[:, None]
    target = _target(np.where(np.arange(n) % 2 == 1, "b", "a"), n)
    predictor, _ = predict.fit_predictor(target, None, x, features="pca", genes=[f"G{i}" for i in range(g)],
                                              model_checksum="m", model_gene_ids=[f"G{i}" for i in range(g)])
    k, c = predictor.settings["pca__n_components"], predictor.settings["model__C"]
    reference = make_pipeline(PCA(k, svd_solver="full"), StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    reference.fit(x, target.values)
    new = rng.normal(5, 1, size=(25, g))
    np.testing.assert_allclose(predictor.output(None, new), reference.predict_proba(new), atol=1e-6)


def test_regression_and_survival_predictors_match_scikit_learn() -> None:
    rng = np.random.default_rng(11)
    n = 80
    emb, x = rng.normal(size=(n, 5)), rng.normal(size=(n, 12))
    y = emb[:, 0] + x[:, 0] + 0.1 * rng.normal(size=n)
    target = _target(y, n)
    genes = [f"G{i}" for i in range(12)]
    predictor, _ = predict.fit_predictor(target, emb, x, features="both", genes=genes, model_checksum="m",
                                              model_gene_ids=genes)
    k, alpha = predictor.settings["features__expression__pca__n_components"], predictor.settings["model__alpha"]
    z = np.hstack([StandardScaler().fit_transform(emb),
                   make_pipeline(PCA(k, svd_solver="full"), StandardScaler()).fit_transform(x)])
    reference = Ridge(alpha=alpha).fit(z, y)
    np.testing.assert_allclose(predictor.output(emb, x), reference.predict(z), atol=1e-6)

    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    times = np.exp(-emb[:, 0]) * rng.exponential(size=n)
    events = rng.random(n) < 0.7
    sheet = pd.DataFrame({"t": times, "e": events.astype(int)}, index=[f"S{i}" for i in range(n)])
    surv = predict.make_target(sheet, "t", event_column="e")
    predictor, _ = predict.fit_predictor(surv, emb, None, features="embeddings", model_checksum="m",
                                         model_gene_ids=genes)
    scaled = StandardScaler().fit_transform(emb)
    cox = CoxPHSurvivalAnalysis(alpha=predictor.settings["model__alpha"]).fit(scaled, Surv.from_arrays(events, times))
    np.testing.assert_allclose(predictor.output(emb, None), cox.predict(scaled), atol=1e-5)
    assert predictor.risk_threshold == pytest.approx(np.median(cox.predict(scaled)), abs=1e-5)


def test_multiclass_probabilities_follow_the_targets_class_order() -> None:
    rng = np.random.default_rng(12)
    n = 90
    labels = np.array(["10", "2", "9"])[np.arange(n) % 3]  # natural order 2, 9, 10; scikit-learn's 10, 2, 9
    emb = rng.normal(size=(n, 4))
    emb[:, 0] += 3.0 * (labels == "10")
    target = _target(labels, n)
    predictor, fitted = predict.fit_predictor(target, emb, None, features="embeddings", model_checksum="m",
                                              model_gene_ids=["G"])
    assert predictor.classes == ("2", "9", "10")
    proba = predictor.output(emb, None)
    reference = fitted.predict_proba(emb)[:, [list(fitted.classes_).index(c) for c in predictor.classes]]
    np.testing.assert_allclose(proba, reference, atol=1e-8)
    assert (predictor.table(target.sample_ids, proba)["predicted"][labels == "10"] == "10").mean() > 0.9


def test_a_saved_predictor_loads_from_its_folder_and_zip_and_refuses_other_models(tmp_path: Path) -> None:
    train, _ = simulate(100, seed=8, confounded=False)
    test, _ = simulate(30, seed=9, confounded=False, missing=(0,))
    cv = cross_validate(train)
    ext = predict.validate_external(cv, train, test, model_checksum="abc", n_bootstrap=20)
    original = ext.predictor("both")
    folder = predict.save_predictor(original, tmp_path / "keep")
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "predictor.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    for source in (folder, predict.predictor_zip(original)):
        back = predict.load_predictor(source)
        assert back.genes == original.genes and back.cv_scores == original.cv_scores
        table = back.apply(test.embedding, test.values, test.sample_ids, test.gene_ids, test.observed,
                           model_checksum="abc")
        expected = ext.predictions[ext.predictions["features"] == "both"]
        assert list(table["predicted"]) == list(expected["predicted"])
        np.testing.assert_allclose(table["probability"], expected["probability"])
    loaded = predict.load_predictor(folder)
    assert loaded.cv_scores["balanced_accuracy"]["value"] == pytest.approx(
        cv.summary("both").score("balanced_accuracy").value)
    with pytest.raises(InputError, match="another BulkFormer model"):
        loaded.apply(test.embedding, test.values, test.sample_ids, test.gene_ids, test.observed, model_checksum="xyz")
    with pytest.raises(InputError, match="another gene list"):
        loaded.apply(test.embedding, test.values, test.sample_ids, GENES[::-1], test.observed, model_checksum="abc")
    lacking = np.ones(N_GENES, bool)
    lacking[5] = False  # a gene the PCA reads
    with pytest.raises(InputError, match="lacks 1 of the 39 genes"):
        loaded.apply(test.embedding, test.values, test.sample_ids, test.gene_ids, lacking, model_checksum="abc")


def test_a_pickle_or_a_stranger_file_is_refused_without_being_run(tmp_path: Path) -> None:
    import pickle

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("predictor.json", '{"format": "bulkformer-predictor", "format_version": 1}')
        object_array = io.BytesIO()
        np.save(object_array, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as npz:
            npz.writestr("coef.npy", object_array.getvalue())
        zf.writestr("arrays.npz", inner.getvalue())
    with pytest.raises(InputError, match="not a readable BulkFormer predictor"):
        predict.load_predictor(buffer.getvalue())
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(InputError, match="neither a predictor folder nor its .zip"):
        predict.load_predictor(tmp_path / "model.pkl")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    train, _ = simulate(40, seed=10, confounded=False)
    predictor, _ = predict.fit_predictor(predict.make_target(train.metadata, "status"), train.embedding, None,
                                         features="embeddings", model_checksum="m", model_gene_ids=GENES)
    with pytest.raises(InputError, match="not a saved predictor; it was left alone"):
        predict.save_predictor(predictor, tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------ the demo cohort
def test_the_demo_cohort_split_by_batch_predicts_tissue_on_the_held_out_batch() -> None:
    """The demo cohort (simulated; tissues carried by marker genes, three batches with small shifts):
    models fitted on two batches must find the tissue of the third as well as within-cohort CV
    says, well above the one-class baseline; saved and loaded, the predictor says the same."""
    import torch

    from bulkformer import paths
    from bulkformer.model._bulkformer_model import BulkFormerModel

    if not (paths.demo_dir() / "demo_counts.csv.gz").is_file() or not (paths.demo_model_dir() / "config.json").is_file():
        pytest.skip("demo assets are not built")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = BulkFormerModel.load("demo", device="cpu")
        prepared = model.prepare(paths.demo_dir() / "demo_counts.csv.gz", sample_sheet=paths.demo_dir() / "demo_samples.csv")
        aligned = prepared.aligned
        embedding = model.run(aligned.values, aligned.sample_ids, impute=False).sample_embedding
    finally:
        torch.set_num_threads(threads)
    batch = prepared.metadata["batch"].astype(str).to_numpy()
    held_out = max(set(batch))

    def part(rows: np.ndarray) -> predict.CohortData:
        ids = tuple(np.asarray(aligned.sample_ids)[rows])
        return predict.CohortData(embedding[rows], aligned.values[rows], aligned.observed, ids, aligned.gene_ids,
                                  prepared.metadata.loc[list(ids)], value_type="counts")

    train, test = part(np.flatnonzero(batch != held_out)), part(np.flatnonzero(batch == held_out))
    cv = cross_validate_column(train, "tissue")
    ext = predict.validate_external(cv, train, test, model_checksum=model.checksum, n_bootstrap=BOOT)
    n_tissues = len(cv.target.classes)
    assert ext.baseline["balanced_accuracy"] == pytest.approx(1 / n_tissues)
    pca = ext.score("pca")
    assert pca.value > 0.9 and pca.low > 1 / n_tissues  # the marker genes carry the tissue in every batch
    assert abs(pca.value - pca.cv_value) < 0.1  # one study, another batch: the CV score holds
    assert ext.score("embeddings").value > 2 / n_tissues
    assert not any("further apart" in w for w in ext.warnings)  # small batch shifts: no gross difference
    back = predict.load_predictor(predict.predictor_zip(ext.predictor("pca")))
    table = back.apply(None, test.values, test.sample_ids, test.gene_ids, test.observed, model_checksum=model.checksum)
    assert (table["predicted"].to_numpy() == test.metadata["tissue"].to_numpy()).mean() > 0.9


def test_shift_warnings_name_the_value_type_and_the_library_sizes() -> None:
    a, _ = simulate(20, seed=12, confounded=False)
    b, _ = simulate(20, seed=13, confounded=False)
    same = predict.shift_warnings(a, b)
    assert same == ()  # one simulation, two draws: nothing gross
    counts = predict.CohortData(a.embedding, a.values, a.observed, a.sample_ids, a.gene_ids, a.metadata,
                                value_type="counts", library_sizes=np.full(20, 20e6))
    shallow = predict.CohortData(b.embedding, b.values, b.observed, b.sample_ids, b.gene_ids, b.metadata,
                                 value_type="tpm", library_sizes=np.full(20, 1e6))
    words = " ".join(predict.shift_warnings(counts, shallow))
    assert "different kinds of values (counts and tpm)" in words and "differ 20-fold" in words
