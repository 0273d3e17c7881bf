"""Cohort fixtures: a tiny saved model over real human genes (so gene mapping, lengths and the
CLI's --model PATH work as for a real model), and cohorts of simulated counts written to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import random_graph, tiny_network

N_MODEL_GENES = 120


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-gene BulkFormer saved as a model folder (load it with ``BulkFormerModel.load(path)``)."""
    from bulkformer.model import BulkFormerModel

    demo = BulkFormerModel.load("demo", device="cpu")
    gene_ids = demo.gene_ids[:N_MODEL_GENES]
    network = tiny_network("v2", n_genes=N_MODEL_GENES, dim=16)
    model = BulkFormerModel(network, random_graph(N_MODEL_GENES, 400), gene_ids, checksum="unsaved",
                            source="tests", device="cpu")
    folder = tmp_path_factory.mktemp("tiny_model")
    model.save(folder)
    return folder


def cohort_counts(n_samples: int, gene_ids: list[str], *, seed: int = 0, prefix: str = "S") -> pd.DataFrame:
    """Counts, samples as rows (index ``sample_id``); a few extra genes the model lacks, and
    model genes left out, as real tables have."""
    rng = np.random.default_rng(seed)
    genes = list(gene_ids[5:]) + ["ENSG00000141510", "ENSG00000111640"]  # TP53, GAPDH: not model genes
    mean = rng.gamma(1.0, 200.0, size=len(genes))
    depth = rng.uniform(0.5, 2.0, size=(n_samples, 1))
    counts = rng.poisson(mean[None, :] * depth).astype(np.int64)
    counts[:, 0] += 1  # no sample is all zeros
    return pd.DataFrame(counts, index=pd.Index([f"{prefix}{i:05d}" for i in range(n_samples)], name="sample_id"),
                        columns=genes)
