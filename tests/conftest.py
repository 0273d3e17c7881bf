"""Shared fixtures: tiny models and graphs built on the spot (no downloads, no assets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bulkformer.analysis._projection import use_numba_cache
from bulkformer.model import MISSING, BulkFormer, BulkFormerConfig
from bulkformer.model._graph import GeneGraph

SHARED = Path(__file__).resolve().parents[2] / "shared"
# UMAP's compiled code goes to the real per-user cache, not the temporary cache folder a test
# sets: compiled once per machine instead of in every test run.
use_numba_cache()


def random_graph(n_genes: int, n_edges: int, *, seed: int = 0) -> GeneGraph:
    """A random directed graph with positive weights (duplicate edges allowed, as in real files)."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n_genes, (2, n_edges), generator=g)
    weight = torch.rand(n_edges, generator=g) + 0.1
    return GeneGraph(edge_index, weight, n_genes)


def tiny_config(family: str = "v2", *, n_genes: int = 50, dim: int = 16, p_repeat: int = 2) -> BulkFormerConfig:
    return BulkFormerConfig(family=family, n_genes=n_genes, dim=dim, p_repeat=p_repeat,
                            esm_dim=24 if family == "v1" else None, name="tiny")


def tiny_network(family: str = "v2", *, seed: int = 0, **kwargs: int) -> BulkFormer:
    torch.manual_seed(seed)
    return BulkFormer(tiny_config(family, **kwargs)).eval()


def random_expression(n_samples: int, n_genes: int, *, missing: float = 0.2, seed: int = 0) -> np.ndarray:
    """log1p-TPM-like values with a fixed set of missing genes (-10) and some exact zeros."""
    rng = np.random.default_rng(seed)
    x = np.log1p(rng.gamma(0.6, 20.0, size=(n_samples, n_genes))).astype(np.float32)
    x[rng.random((n_samples, n_genes)) < 0.1] = 0.0
    x[:, rng.random(n_genes) < missing] = -10.0
    return x


class Cohort:
    """The three fields training reads from an aligned cohort."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.sample_ids = tuple(f"S{i}" for i in range(values.shape[0]))
        self.gene_ids = tuple(f"ENSG{i:011d}" for i in range(values.shape[1]))


def structured_cohort(n_samples: int = 24, n_genes: int = 50, seed: int = 0) -> Cohort:
    """Gene-specific levels plus two co-expression factors: learnable structure."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.5, 6.0, n_genes)
    loadings = rng.normal(size=(2, n_genes))
    factors = rng.normal(size=(n_samples, 2))
    x = level + 0.5 * factors @ loadings + rng.normal(scale=0.1, size=(n_samples, n_genes))
    x = np.clip(x, 0, None).astype(np.float32)
    x[:, :3] = MISSING  # three genes this cohort never measured
    return Cohort(x)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run 10× faster on one thread than on two busy shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=["v1", "v2"])
def family(request: pytest.FixtureRequest) -> str:
    return request.param
