"""The shipped demo model: loads strictly and reproduces its recorded numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bulkformer import paths
from bulkformer.analysis._benchmark import benchmark_imputation
from bulkformer.model._training import pearson


def test_pearson_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert np.isnan(pearson(np.ones(5), a[:5]))


def test_demo_model_reproduces_its_recorded_imputation_pcc() -> None:
    from bulkformer.model._bulkformer_model import BulkFormerModel

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


def test_separation_benchmark_scores_the_groups_as_the_app_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded silhouettes come from bulkformer.analysis._separation: scaled embeddings, PCA(20) of the
    measured genes (a gene missing anywhere is left out), checked against silhouette_score here."""
    from types import SimpleNamespace

    from sklearn.metrics import silhouette_score

    import bulkformer.analysis._benchmark as evaluate
    from bulkformer.analysis._projection import project
    from bulkformer.model import MISSING

    rng = np.random.default_rng(0)
    labels = np.repeat(["liver", "brain", "lung"], 10)
    embedding = rng.normal(size=(30, 6)) + (labels == "liver")[:, None] * 3.0
    values = rng.normal(4.0, 1.0, size=(30, 50)) + (labels == "brain")[:, None] * 3.0
    values[:, -5:] = MISSING  # unmeasured genes
    model = SimpleNamespace(run=lambda *args, **kwargs: SimpleNamespace(sample_embedding=embedding))
    monkeypatch.setattr(evaluate, "project", lambda x, seed: project(x, method="pca"))  # no UMAP in a unit test
    result = evaluate.benchmark_separation(model, values, list(labels))
    scaled = (embedding - embedding.mean(0)) / embedding.std(0)
    measured = values[:, :-5] - values[:, :-5].mean(0)
    u, s, _ = np.linalg.svd(measured, full_matrices=False)
    assert result.model_silhouette == pytest.approx(silhouette_score(scaled, labels), abs=1e-9)
    assert result.pca_silhouette == pytest.approx(silhouette_score(u[:, :20] * s[:20], labels), abs=1e-9)
