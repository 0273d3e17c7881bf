"""``bulkformer predict``: a sample-sheet column predicted from the command line, on a tiny saved
model; the printed table is the one the Python API computes on the same files."""

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
N = 104
N_UNLABELLED = 4  # 100 labelled: plain 5-fold cross-validation (no repeats), the cheapest plan


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def small_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two settings per hyperparameter (and one torch thread): the same procedure, a few seconds."""
    monkeypatch.setattr(predict.models, "C_GRID", (0.1, 1.0))
    monkeypatch.setattr(predict.models, "PCA_GRID", (2, 5))


def _files(root: Path) -> tuple[Path, Path, Path]:
    """A tiny demo-labelled model over 150 genes; a TPM table measuring 120 of them in which the
    tissue shows as five genes 8× higher; a sheet with four tissues left blank and a rare class."""
    genes = list(load_annotation().protein_coding_ids()[:150])
    model = BulkFormerModel(tiny_network("v2", seed=2, n_genes=150), random_graph(150, 600), genes,
                            checksum="x", source="test", device="cpu")
    model.save(root / "model", training={"demo": True})
    rng = np.random.default_rng(4)
    tissue = np.array(["liver", "lung"] * (N // 2))
    tpm = rng.uniform(5, 200, 120)[:, None] * rng.lognormal(0, 0.3, size=(120, N))
    tpm[:5, tissue == "liver"] *= 8.0
    ids = [f"S{i:03d}" for i in range(N)]
    pd.DataFrame(tpm, index=pd.Index(genes[30:], name="gene_id"), columns=ids).to_csv(root / "tpm.csv")
    sheet = pd.DataFrame({"sample_id": ids, "tissue": tissue, "batch": ["B1"] * (N - 2) + ["B2"] * 2})
    sheet.loc[: N_UNLABELLED - 1, "tissue"] = ""
    sheet.to_csv(root / "samples.csv", index=False)
    return root / "model", root / "tpm.csv", root / "samples.csv"


def test_predict_prints_the_api_table_and_verdict_and_saves_folds_and_predictions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "width", 250)  # a wide terminal: table cells on one line each
    model, table, samples = _files(tmp_path)
    folds, preds = tmp_path / "folds.csv", tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(table), str(samples), "--column", "tissue", "--model", str(model),
                                 "--device", "cpu", "--permutations", "29", "--output", str(folds),
                                 "--predictions", str(preds)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output

    loaded = BulkFormerModel.load(model, device="cpu")
    prepared = loaded.prepare(table, sample_sheet=samples)
    aligned = prepared.aligned
    embedding = loaded.run(aligned.values, aligned.sample_ids, impute=False).sample_embedding
    target = predict.make_target(prepared.metadata, "tissue")
    expected = predict.evaluate(embedding, predict.expression_features(aligned.values, aligned.observed), target,
                                n_permutations=29)
    assert expected.summary("pca").score("balanced_accuracy").value > 0.9  # five genes carry the tissue
    output = " ".join(result.output.split())  # rich wraps long lines
    for label, row in expected.table().iterrows():
        assert label in output
        for cell in row.iloc[:3]:  # balanced accuracy, weighted F1, AUROC: "mean ± SD"
            assert cell in output, (label, cell)
    assert f"Verdict: {' '.join(expected.verdict.split())}" in output
    assert "stratified 5-fold over 100 samples" in output and "DEMO model" in output
    assert f"Predicted {N_UNLABELLED} unlabelled samples" in output
    assert "Embeddings predict tissue better than chance" in expected.verdict

    back = pd.read_csv(folds, comment="#")
    assert len(back) == 5 * 3 and set(back["features"]) == set(predict.FEATURE_SETS)
    np.testing.assert_allclose(back["balanced_accuracy"], expected.folds["balanced_accuracy"])
    assert not folds.read_text().startswith("#")  # a plain table; the notes are in the report beside it
    assert "DEMO model" in folds.with_name(folds.name + ".report.md").read_text()
    saved = pd.read_csv(preds, comment="#")
    fresh = saved[saved["how"] == "model fitted on all labelled samples"]
    assert list(fresh["sample_id"]) == [f"S{i:03d}" for i in range(N_UNLABELLED)]
    assert list(fresh["predicted"]) == ["liver", "lung"] * (N_UNLABELLED // 2)
    assert (saved["how"] != fresh["how"].iloc[0]).sum() == 3 * (N - N_UNLABELLED)


def test_predict_refuses_a_rare_class_and_a_bad_output_before_any_file_is_written(tmp_path: Path) -> None:
    model, table, samples = _files(tmp_path)
    folds = tmp_path / "folds.csv"
    refused = runner.invoke(app, ["predict", str(table), str(samples), "--column", "batch", "--model", str(model),
                                  "--value-type", "tpm", "--device", "cpu", "--output", str(folds)])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "fewer than 3 samples: 'B2' (2)" in refused.output and "Merge rare classes" in refused.output
    assert not folds.exists()
    wrong = runner.invoke(app, ["predict", str(table), str(samples), "--column", "tissue", "--model", str(model),
                                "--output", str(tmp_path / "folds.xlsx")])
    assert wrong.exit_code == 1 and ".csv" in wrong.output
