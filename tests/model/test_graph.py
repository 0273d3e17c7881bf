"""Gene graphs: the co-expression builder against numpy, and the published file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bulkformer.errors import CheckpointError
from bulkformer.model._graph import GeneGraph, build_coexpression_graph, load_graph


def test_coexpression_graph_matches_numpy_correlation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12))
    x[:, 3] = x[:, 0] * 2 + rng.normal(scale=0.1, size=40)  # a strong partner of gene 0
    x[:, 7] = -x[:, 0] + rng.normal(scale=0.1, size=40)  # a strong anti-correlated partner
    k = 3
    graph = build_coexpression_graph(x, k=k)
    r = np.corrcoef(x, rowvar=False)
    np.fill_diagonal(r, 0)
    g0, g1 = graph.edge_index.numpy()
    for gene in range(12):
        neighbours = g1[g0 == gene]
        expected = set(np.argsort(-np.abs(r[gene]))[:k])
        assert set(neighbours) == expected
        np.testing.assert_allclose(graph.weight.numpy()[g0 == gene], r[gene, neighbours], rtol=1e-5)
    assert {3, 7} <= set(g1[g0 == 0])


def test_constant_genes_get_no_edges() -> None:
    x = np.random.default_rng(1).normal(size=(10, 5))
    x[:, 2] = 4.0
    graph = build_coexpression_graph(x, k=2)
    g0, g1 = graph.edge_index.numpy()
    assert 2 not in g0 and 2 not in g1


def test_published_format_round_trip(tmp_path) -> None:
    graph = build_coexpression_graph(np.random.default_rng(2).normal(size=(20, 30)), k=4)
    graph.save(tmp_path / "G_x.pt", tmp_path / "G_x_weight.pt")
    assert torch.load(tmp_path / "G_x.pt", weights_only=True).shape == (2, 30 * 4)
    back = load_graph(tmp_path / "G_x.pt", tmp_path / "G_x_weight.pt", n_genes=30)
    assert torch.equal(back.edge_index, graph.edge_index) and torch.equal(back.weight, graph.weight)


def test_bad_graph_files_give_clear_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="missing"):
        load_graph(tmp_path / "G.pt", tmp_path / "G_weight.pt", n_genes=3)
    (tmp_path / "G.pt").write_bytes(b"not a tensor")
    torch.save(torch.ones(2), tmp_path / "G_weight.pt")
    with pytest.raises(CheckpointError, match="damaged"):
        load_graph(tmp_path / "G.pt", tmp_path / "G_weight.pt", n_genes=3)
    with pytest.raises(CheckpointError, match="different releases"):
        GeneGraph(torch.tensor([[0, 5], [1, 2]]), torch.ones(2), 3)
