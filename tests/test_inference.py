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
                             device=torch.device("cpu")))
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
