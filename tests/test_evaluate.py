"""The shipped demo model: loads strictly and reproduces its recorded numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bulkformer import paths
from bulkformer.evaluate import benchmark_imputation
from bulkformer.train import pearson


def test_pearson_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert np.isnan(pearson(np.ones(5), a[:5]))


def test_demo_model_reproduces_its_recorded_imputation_pcc() -> None:
    from bulkformer.wrapper import BulkFormerModel

    metrics_file = paths.demo_dir() / "metrics.json"
    recorded = json.loads(metrics_file.read_text())["imputation"]
    model = BulkFormerModel.load("demo", device="cpu")  # strict load of the committed checkpoint
    assert model.is_demo and model.config.n_genes == len(model.gene_ids)
    prepared = model.prepare(paths.demo_dir() / "demo_counts.csv.gz")
    samples = list(prepared.aligned.sample_ids)
    rows = [samples.index(s) for s in model.training["validation_samples"]]
    again = benchmark_imputation(model, prepared.aligned.values, test_rows=rows)
    assert again.model_pcc == pytest.approx(recorded["model_pcc"], abs=0.01)
    assert again.model_pcc >= 0.85
