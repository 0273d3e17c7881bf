"""``bulkformer holdout``: the hold-out check from the command line, on a tiny saved model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bulkformer.analysis._holdout import GENE_MEAN, KNN, MODEL, TABLE_COLUMNS
from bulkformer.cli import app
from bulkformer.genes import load_annotation
from bulkformer.model._bulkformer_model import BulkFormerModel
from tests.conftest import random_graph, tiny_network

runner = CliRunner()


def _files(root: Path, n_samples: int) -> tuple[Path, Path]:
    """A tiny demo-labelled model over 150 genes and a TPM table measuring 120 of them."""
    genes = list(load_annotation().protein_coding_ids()[:150])
    model = BulkFormerModel(tiny_network("v2", seed=2, n_genes=150), random_graph(150, 600), genes,
                            checksum="x", source="test", device="cpu")
    model.save(root / "model", training={"demo": True})
    rng = np.random.default_rng(4)
    level = rng.uniform(0, 200, 120)
    tpm = pd.DataFrame(level[:, None] * rng.lognormal(0, 0.2, size=(120, n_samples)),
                       index=pd.Index(genes[30:], name="gene_id"), columns=[f"S{i}" for i in range(n_samples)])
    tpm.to_csv(root / "tpm.csv")
    return root / "model", root / "tpm.csv"


def test_holdout_prints_the_table_and_verdict_and_saves_it(tmp_path: Path) -> None:
    model, table = _files(tmp_path, 8)
    output = tmp_path / "check.csv"
    result = runner.invoke(app, ["holdout", str(table), "--fraction", "0.2", "--model", str(model),
                                 "--output", str(output), "--value-type", "tpm", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for text in (MODEL, GENE_MEAN, KNN, "Pearson r", "Verdict:", "DEMO model", "SIMULATED"):
        assert text in result.output, text
    lines = output.read_text().splitlines()
    assert not any(line.startswith("#") for line in lines)  # a plain table; the notes are beside it
    report = output.with_name(output.name + ".report.md").read_text()
    assert "DEMO model" in report and "Verdict:" in report
    back = pd.read_csv(output, comment="#", keep_default_na=False, na_values=[""])
    assert tuple(back.columns) == TABLE_COLUMNS
    assert set(back["method"]) == {MODEL, GENE_MEAN, KNN}
    overall = back[back["scope"] == "overall"].set_index("method")
    assert (overall["n"] == overall.loc[MODEL, "n"]).all() and overall.loc[MODEL, "n"] == 8 * 24  # 20 % of 120
    per_sample = back[(back["scope"] == "sample") & (back["method"] == MODEL)]
    assert list(per_sample["group"]) == [f"S{i}" for i in range(8)] and (per_sample["n"] == 24).all()


def test_holdout_with_three_samples_says_it_cannot_judge(tmp_path: Path) -> None:
    model, table = _files(tmp_path, 3)
    result = runner.invoke(app, ["holdout", str(table), "--model", str(model), "--value-type", "tpm", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "cannot judge" in result.output and "too few other samples" in result.output
    assert GENE_MEAN not in result.output
    refused = runner.invoke(app, ["holdout", str(table), "--model", str(model), "--output", str(tmp_path / "x.xlsx")])
    assert refused.exit_code == 1 and ".csv" in refused.output and not (tmp_path / "x.xlsx").exists()
