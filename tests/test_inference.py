"""Batched inference: pooling against numpy, batching, gene subsets, cancellation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bulkformer.errors import BulkFormerError
from bulkformer.inference import (
    ForwardPlan,
    InferenceCancelled,
    aggregate_genes,
    iter_forward,
    resolve_indices,
    resolve_precision,
)
from tests.conftest import random_expression, random_graph, tiny_network


@pytest.mark.parametrize("n_genes", [7, 8])  # odd and even: the median differs
def test_aggregations_match_numpy(n_genes: int) -> None:
    x = np.random.default_rng(0).normal(size=(3, n_genes, 5)).astype(np.float32)
    t = torch.from_numpy(x)
    expected = {
        "max": x.max(axis=1),
        "mean": x.mean(axis=1),
        "median": np.median(x, axis=1),
    }
    expected["all"] = expected["max"] + expected["mean"] + expected["median"]
    for how, want in expected.items():
        np.testing.assert_allclose(aggregate_genes(t, how).numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(BulkFormerError, match="Unknown aggregation"):
        aggregate_genes(t, "sum")


def _collect(network, adjacency, values, plan, batch_size):
    identity = network.gene_identity().detach()
    outs = list(iter_forward(network, adjacency, identity, values, plan, batch_size=batch_size,
                             device=torch.device("cpu"), precision="fp32"))
    return outs


def test_batches_cover_the_cohort_and_match_a_direct_forward(family: str) -> None:
    network = tiny_network(family, seed=1)
    adjacency = random_graph(50, 150).normalized_adjacency()
    values = random_expression(5, 50, seed=3)
    subset = np.array([4, 9, 31])
    plan = ForwardPlan(aggregate="max", aggregate_index=subset, gene_index=np.array([2, 40]))
    outs = _collect(network, adjacency, values, plan, batch_size=2)
    assert [(o.start, o.stop) for o in outs] == [(0, 2), (2, 4), (4, 5)]
    emb = np.concatenate([o.sample_embedding for o in outs])
    imputed = np.concatenate([o.imputed for o in outs])
    genes = np.concatenate([o.gene_embedding for o in outs])
    with torch.inference_mode():
        x = torch.from_numpy(values)
        features = network.gene_features(x, network.encode(x, adjacency)).numpy()
        direct_imputed = network.impute(x, torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(emb, features[:, subset].max(axis=1), atol=1e-5)
    np.testing.assert_allclose(genes, features[:, [2, 40]], atol=1e-5)
    np.testing.assert_allclose(imputed, direct_imputed, atol=1e-5)


def test_cancel_stops_before_the_next_batch() -> None:
    network = tiny_network("v2")
    adjacency = random_graph(50, 100).normalized_adjacency()
    seen: list[int] = []
    gen = iter_forward(network, adjacency, network.gene_identity().detach(), random_expression(6, 50),
                       ForwardPlan(), batch_size=2, device=torch.device("cpu"),
                       progress=lambda done, total: seen.append(done), should_stop=lambda: len(seen) >= 1)
    with pytest.raises(InferenceCancelled):
        list(gen)
    assert seen == [2]


def test_unknown_genes_are_a_clear_error() -> None:
    ids = ("ENSG1", "ENSG2", "ENSG3")
    np.testing.assert_array_equal(resolve_indices(ids, ["ENSG3", "ENSG1"], what="x"), [2, 0])
    assert resolve_indices(ids, None, what="x") is None
    with pytest.raises(BulkFormerError, match="ENSG9"):
        resolve_indices(ids, ["ENSG9"], what="gene embeddings")


def test_bf16_path_keeps_the_accuracy_bounds_on_the_demo_model() -> None:
    """Fast path vs float32 on realistic inputs (demo cohort, demo model):
    sample-embedding cosine >= 0.999, imputation PCC vs the hidden truth within 0.002."""
    from bulkformer import paths
    from bulkformer.pipeline import prepare
    from bulkformer.train import mask_measured
    from bulkformer.wrapper import BulkFormerModel

    model = BulkFormerModel.load("demo", device="cpu")
    prepared = prepare(paths.demo_dir() / "demo_counts.csv.gz", gene_order=model.gene_ids)
    truth = prepared.aligned.values[:8]
    masked, hidden = (t.numpy() for t in mask_measured(torch.tensor(truth), 0.15, torch.Generator().manual_seed(0)))
    ids = prepared.aligned.sample_ids[:8]
    fp32 = model.run(masked, ids, precision="fp32")
    bf16 = model.run(masked, ids, precision="bf16")
    a, b = fp32.sample_embedding, bf16.sample_embedding
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.999
    pcc32 = np.corrcoef(truth[hidden], fp32.imputed[hidden])[0, 1]
    pcc16 = np.corrcoef(truth[hidden], bf16.imputed[hidden])[0, 1]
    assert abs(pcc32 - pcc16) <= 0.002


def test_precision_names() -> None:
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    with pytest.raises(BulkFormerError, match="Unknown precision"):
        resolve_precision("fp8", torch.device("cpu"))
