"""BulkFormerModel: loading published-layout files and our folders, and running inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bulkformer.errors import CheckpointError
from bulkformer.model import PRESETS, BulkFormer
from bulkformer.model._bulkformer_model import BulkFormerModel
from tests.conftest import random_expression, random_graph, tiny_network


def _published_layout(tmp_path: Path, network: BulkFormer, graph_names: tuple[str, str], ckpt_name: str) -> Path:
    """Write a checkpoint, gene table and graph exactly as the published release names them."""
    n = network.config.n_genes
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({
        "gene_symbol": [f"G{i}" for i in range(n)],
        "ensg_id": [f"ENSG{i:011d}" for i in range(n)],
        "gene_type": "protein_coding",
        "gene_length": 1000,
        "ensp_id": "",
        "protein_length": 100,
    }).to_csv(data / "bulkformer_gene_info.csv", index=False)
    graph = random_graph(n, 5 * n)
    graph.save(data / graph_names[0], data / graph_names[1])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    torch.save({f"module.{k}": v for k, v in network.state_dict().items()}, model_dir / ckpt_name)
    return tmp_path


def test_published_tiny_checkpoint_runs_end_to_end(tmp_path) -> None:
    network = tiny_network("v1", seed=3)
    root = _published_layout(tmp_path, network, ("G_gtex.pt", "G_gtex_weight.pt"), "Bulkformer_ckpt_epoch_29.pt")
    model = BulkFormerModel.load("v1", model_dir=root / "model", data_dir=root / "data", device="cpu")
    assert model.gene_ids[:2] == ("ENSG00000000000", "ENSG00000000001")
    result = model.run(random_expression(3, 50), ["a", "b", "c"], aggregate="all",
                       gene_embedding_genes=["ENSG00000000007"], with_esm2=True)
    assert result.sample_embedding.shape == (3, 16)
    assert result.imputed.shape == (3, 50)
    assert result.gene_embedding.shape == (3, 1, 16 + 24)  # embedding ++ ESM2 row
    np.testing.assert_array_equal(result.gene_embedding[0, 0, 16:], network.gene_emb[7].detach().numpy())


def test_the_demo_model_does_not_compile_for_ordinary_cohorts() -> None:
    """Up to ~1,000 samples are under a minute of work: a ~30 s compile would not pay off."""
    model = BulkFormerModel.load("demo", device="cpu")
    assert not model.compiles(200) and not model.compiles(1000)
    assert model.compiles(1, compile="on") and not model.compiles(10**6, compile="off")


def test_saved_folder_round_trip_gives_identical_outputs(tmp_path) -> None:
    network = tiny_network("v2", seed=9)
    ids = [f"ENSG{i:011d}" for i in range(50)]
    model = BulkFormerModel(network, random_graph(50, 100), ids, checksum="x", source="test", device="cpu")
    values = random_expression(4, 50, seed=8)
    before = model.run(values, list("abcd"))
    model.save(tmp_path / "saved", training={"demo": True, "note": "test"})
    again = BulkFormerModel.load(tmp_path / "saved", device="cpu")
    assert again.is_demo and again.training["note"] == "test" and len(again.checksum) == 64
    after = again.run(values, list("abcd"))
    np.testing.assert_array_equal(before.sample_embedding, after.sample_embedding)
    np.testing.assert_array_equal(before.imputed, after.imputed)


def test_unknown_model_names_and_missing_files_are_explained(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="neither a known name"):
        BulkFormerModel.load("huge", model_dir=tmp_path, data_dir=tmp_path)
    with pytest.raises(CheckpointError, match="bulkformer download model"):
        BulkFormerModel.load("147M", model_dir=tmp_path, data_dir=tmp_path)


def test_147m_shaped_published_checkpoint_loads_strictly_and_embeds_two_samples(tmp_path) -> None:
    """The full-size v2 layout: 20,010 genes, dim 640, 12 Performer layers, `module.` prefixes."""
    torch.manual_seed(0)
    network = BulkFormer(PRESETS["147M"])
    root = _published_layout(tmp_path, network, ("G_tcga.pt", "G_tcga_weight.pt"), "bulkformer_147M.pt")
    del network
    model = BulkFormerModel.load("147M", model_dir=root / "model", data_dir=root / "data", device="cpu")
    assert model.config == PRESETS["147M"]
    assert sum(p.numel() for p in model.network.parameters()) > 130e6  # 132M unique parameters
    values = random_expression(2, 20010, missing=0.3, seed=1)
    result = model.run(values, ["s1", "s2"], impute=False, batch_size=2, precision="bf16")
    assert result.sample_embedding.shape == (2, 643)
    assert np.isfinite(result.sample_embedding).all()
    assert not np.allclose(result.sample_embedding[0], result.sample_embedding[1])


def test_each_model_normalises_counts_with_its_own_gene_lengths(tmp_path) -> None:
    """Published checkpoints: upstream's gene_length_df.csv; the demo: the table it was trained
    with; a saved folder keeps its table. Checked by hand against upstream's TPM formula."""
    from bulkformer import paths
    from bulkformer.genes import protein_coding_ids

    n = 120
    network = tiny_network("v2", seed=4, n_genes=n)
    root = _published_layout(tmp_path, network, ("G_tcga.pt", "G_tcga_weight.pt"), "bulkformer_147M.pt")
    ids = list(protein_coding_ids()[:n])
    info = pd.read_csv(root / "data" / "bulkformer_gene_info.csv")
    info["ensg_id"] = ids
    info.to_csv(root / "data" / "bulkformer_gene_info.csv", index=False)
    published = BulkFormerModel.load("147M", model_dir=root / "model", data_dir=root / "data", device="cpu")
    assert published.gene_lengths == "upstream"
    assert BulkFormerModel.load("demo", device="cpu").gene_lengths == "annotation"

    counts = pd.DataFrame(np.random.default_rng(0).negative_binomial(2, 0.01, size=(n, 3)),
                          index=ids, columns=["a", "b", "c"])
    counts.to_csv(tmp_path / "counts.csv")
    prepared = published.prepare(tmp_path / "counts.csv")
    table = pd.read_csv(paths.GENE_LENGTHS_DIR / "gene_length_df.csv.gz", index_col="ensg_id")["length"]
    kb = np.array([table.get(g, 1000.0) for g in ids]) / 1000.0
    rate = counts.to_numpy() / kb[:, None]
    np.testing.assert_allclose(prepared.aligned.values, np.log1p(rate / rate.sum(0) * 1e6).T, rtol=2e-6, atol=2e-6)
    assert any("upstream BulkFormer gene lengths" in note for note in prepared.qc.notes)

    published.save(tmp_path / "saved")
    assert BulkFormerModel.load(tmp_path / "saved", device="cpu").gene_lengths == "upstream"
