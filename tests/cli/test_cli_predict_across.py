"""``bulkformer predict --test-counts/--test-samples --save-predictor`` and ``bulkformer
predict-apply``, on a tiny saved model: the second cohort's scores are the ones the Python API
computes, the saved predictor applied to the second cohort gives the same predictions, and a
different model is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bulkformer import cli
from bulkformer.analysis import predict
from bulkformer.cli import app
from bulkformer.genes import load_annotation
from bulkformer.model._bulkformer_model import BulkFormerModel
from tests.conftest import random_graph, tiny_network

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def small_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predict.models, "C_GRID", (0.1, 1.0))
    monkeypatch.setattr(predict.models, "PCA_GRID", (2, 5))


def _cohort(root: Path, name: str, n: int, *, genes: list[str], seed: int) -> tuple[Path, Path]:
    """A TPM table in which liver samples have five genes 8× higher, and its sheet."""
    rng = np.random.default_rng(seed)
    tissue = np.array(["liver", "lung"] * (n // 2))
    tpm = rng.uniform(5, 200, len(genes))[:, None] * rng.lognormal(0, 0.3, size=(len(genes), n))
    tpm[:5, tissue == "liver"] *= 8.0
    ids = [f"{name}{i:03d}" for i in range(n)]
    pd.DataFrame(tpm, index=pd.Index(genes, name="gene_id"), columns=ids).to_csv(root / f"{name}.csv")
    pd.DataFrame({"sample_id": ids, "tissue": tissue}).to_csv(root / f"{name}_samples.csv", index=False)
    return root / f"{name}.csv", root / f"{name}_samples.csv"


def _model(root: Path, genes: list[str], *, seed: int, name: str) -> Path:
    model = BulkFormerModel(tiny_network("v2", seed=seed, n_genes=len(genes)), random_graph(len(genes), 600), genes,
                            checksum=name, source="test", device="cpu")
    model.save(root / name, training={"demo": True})
    return root / name


def test_external_validation_save_and_apply_from_the_command_line(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "width", 250)
    genes = list(load_annotation().protein_coding_ids()[:150])
    model = _model(tmp_path, genes, seed=2, name="model")
    table_a, sheet_a = _cohort(tmp_path, "A", 100, genes=genes[30:], seed=4)
    table_b, sheet_b = _cohort(tmp_path, "B", 40, genes=genes[30:140], seed=5)  # lacks 10 of A's genes
    kept, preds_b = tmp_path / "kept", tmp_path / "b_predictions.csv"
    result = runner.invoke(app, ["predict", str(table_a), str(sheet_a), "--column", "tissue", "--model", str(model),
                                 "--device", "cpu", "--permutations", "19", "--test-counts", str(table_b),
                                 "--test-samples", str(sheet_b), "--bootstrap", "50", "--test-predictions",
                                 str(preds_b), "--save-predictor", str(kept), "--save-features", "pca"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "on the second cohort" in output and "Verdict on the second cohort:" in output
    assert "refitted on the training cohort over those 110 shared genes" in output
    assert "A within-cohort score says how well" in output

    loaded = BulkFormerModel.load(model, device="cpu")
    a, b = loaded.prepare(table_a, sample_sheet=sheet_a), loaded.prepare(table_b, sample_sheet=sheet_b)
    emb_a = loaded.run(a.aligned.values, a.aligned.sample_ids, impute=False).sample_embedding
    emb_b = loaded.run(b.aligned.values, b.aligned.sample_ids, impute=False).sample_embedding
    target = predict.make_target(a.metadata, "tissue")
    cv = predict.evaluate(emb_a, predict.expression_features(a.aligned.values, a.aligned.observed), target,
                          n_permutations=19)
    ext = predict.validate_external(cv, predict.CohortData.of(a, emb_a), predict.CohortData.of(b, emb_b),
                                    model_checksum=loaded.checksum, n_bootstrap=50)
    assert ext.score("pca").value > 0.9  # five genes carry the tissue in both cohorts
    for cell in ext.table().iloc[:, 0]:
        assert cell in output
    saved = pd.read_csv(preds_b, comment="#")
    assert list(saved.loc[saved["features"] == "pca", "predicted"]) == list(
        ext.predictions.loc[ext.predictions["features"] == "pca", "predicted"])

    applied = tmp_path / "applied.csv"
    again = runner.invoke(app, ["predict-apply", str(kept), str(table_b), "--model", str(model), "--device", "cpu",
                                "--output", str(applied)])
    assert again.exit_code == 0, again.output
    back = pd.read_csv(applied, comment="#")
    expected = ext.predictions[ext.predictions["features"] == "pca"]
    assert list(back["sample_id"]) == list(expected["sample_id"])
    assert list(back["predicted"]) == list(expected["predicted"])
    np.testing.assert_allclose(back["probability"], expected["probability"], rtol=1e-6)

    other = _model(tmp_path, genes, seed=3, name="other")
    refused = runner.invoke(app, ["predict-apply", str(kept), str(table_b), "--model", str(other), "--device", "cpu",
                                  "--output", str(tmp_path / "no.csv")])
    assert refused.exit_code == 1 and "another BulkFormer model" in refused.output
    assert "Traceback" not in refused.output and not (tmp_path / "no.csv").exists()


def test_half_a_second_cohort_and_a_predictor_on_a_file_are_refused_before_work(tmp_path: Path) -> None:
    genes = list(load_annotation().protein_coding_ids()[:150])
    model = _model(tmp_path, genes, seed=2, name="model")
    table_a, sheet_a = _cohort(tmp_path, "A", 20, genes=genes, seed=4)
    half = runner.invoke(app, ["predict", str(table_a), str(sheet_a), "--column", "tissue", "--model", str(model),
                               "--test-counts", str(table_a)])
    assert half.exit_code == 1 and "needs both --test-counts and --test-samples" in half.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    taken = runner.invoke(app, ["predict", str(table_a), str(sheet_a), "--column", "tissue", "--model", str(model),
                                "--save-predictor", str(tmp_path / "mine")])
    assert taken.exit_code == 1 and "a folder of other files" in taken.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    bad = runner.invoke(app, ["predict-apply", str(sheet_a), str(table_a), "--model", str(model),
                              "--output", str(tmp_path / "p.csv")])
    assert bad.exit_code == 1 and "neither a predictor folder nor its .zip" in bad.output


def test_a_predictor_saved_without_a_second_cohort_is_the_final_model_that_predicted_the_unlabelled(
        tmp_path: Path) -> None:
    """``--save-predictor`` alone keeps the best feature set's model fitted on all labelled samples:
    applied to the same table it must give the unlabelled samples exactly the predictions that
    ``--predictions`` wrote for them."""
    genes = list(load_annotation().protein_coding_ids()[:150])
    model = _model(tmp_path, genes, seed=2, name="model")
    table, sheet = _cohort(tmp_path, "A", 104, genes=genes[20:], seed=6)
    frame = pd.read_csv(sheet)
    frame.loc[:3, "tissue"] = ""
    frame.to_csv(sheet, index=False)
    kept, preds = tmp_path / "kept", tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(table), str(sheet), "--column", "tissue", "--model", str(model),
                                 "--device", "cpu", "--permutations", "9", "--predictions", str(preds),
                                 "--save-predictor", str(kept)])
    assert result.exit_code == 0, result.output
    loaded = predict.load_predictor(kept)
    assert loaded.options["n_labelled"] == 100 and "balanced_accuracy" in loaded.cv_scores
    applied = tmp_path / "applied.csv"
    again = runner.invoke(app, ["predict-apply", str(kept), str(table), "--model", str(model), "--device", "cpu",
                                "--output", str(applied)])
    assert again.exit_code == 0, again.output
    saved = pd.read_csv(preds, comment="#")
    fresh = saved[saved["how"] == "model fitted on all labelled samples"].set_index("sample_id")
    back = pd.read_csv(applied, comment="#").set_index("sample_id").loc[fresh.index]
    assert list(back["predicted"]) == list(fresh["predicted"])
    np.testing.assert_allclose(back["probability"], fresh["probability"], rtol=1e-5)
