"""`bulkformer train` from the command line: from scratch, then fine-tuning the result."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bulkformer.cli import app
from bulkformer.genes import protein_coding_ids
from bulkformer.model._bulkformer_model import BulkFormerModel


def _counts_file(tmp_path, n_samples: int = 12):
    genes = protein_coding_ids()[:600]
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(5, 0.05, size=(len(genes), n_samples))
    frame = pd.DataFrame(counts, index=pd.Index(genes, name="gene_id"),
                         columns=[f"S{i}" for i in range(n_samples)])
    path = tmp_path / "counts.csv"
    frame.to_csv(path)
    return path


def test_train_from_scratch_then_fine_tune(tmp_path) -> None:
    runner = CliRunner()
    counts = _counts_file(tmp_path)
    first = runner.invoke(app, ["train", str(counts), str(tmp_path / "m"), "--dim", "16", "--layers", "1",
                                "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--graph-k", "3",
                                "--demo"])
    assert first.exit_code == 0, first.output
    assert "held-out imputation PCC" in first.output
    model = BulkFormerModel.load(tmp_path / "m", device="cpu")
    assert model.is_demo and model.config.dim == 16 and model.gene_ids == protein_coding_ids()
    assert model.training["data"]["measured_genes"] == 600

    tuned = runner.invoke(app, ["train", str(counts), str(tmp_path / "tuned"), "--model", str(tmp_path / "m"),
                                "--epochs", "1", "--batch-size", "4", "--device", "cpu"])
    assert tuned.exit_code == 0, tuned.output
    assert BulkFormerModel.load(tmp_path / "tuned", device="cpu").training["fine_tuned_from"] == str(tmp_path / "m")


def test_train_reports_bad_sizes_without_traceback(tmp_path) -> None:
    counts = str(_counts_file(tmp_path))
    result = CliRunner().invoke(app, ["train", counts, str(tmp_path / "m"), "--size", "9000M"])
    assert result.exit_code == 1
    assert "Unknown size" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["train", counts, str(tmp_path / "m"), "--dim", "8", "--heads", "8"])
    assert result.exit_code == 1
    assert "at least 2 per head" in result.output and "Traceback" not in result.output
