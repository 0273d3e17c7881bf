"""The scanpy-style API: ``bf.read`` → AnnData, ``bf.tl.embed`` / ``impute`` / ``holdout``, checked
against the package's own pipeline on the same file (an independent path: ``prepare`` + ``run``),
with scanpy itself, and written back with ``adata.write_h5ad``."""

from __future__ import annotations

import doctest
import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

import bulkformer as bf
from bulkformer.model import BulkFormerModel
from bulkformer.paths import demo_dir

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:DEMO model trained on SIMULATED data")]


@pytest.fixture(scope="module")
def demo_model() -> BulkFormerModel:
    return BulkFormerModel.load("demo", device="cpu")


@pytest.mark.parametrize("module", ["bulkformer._read", "bulkformer.tl._embed", "bulkformer.tl._impute",
                                    "bulkformer.tl._holdout"])
def test_doctests(module: str) -> None:
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0


def test_read_keeps_the_files_values_maps_ids_and_types_the_sheet(demo_model: BulkFormerModel) -> None:
    counts = demo_dir() / "demo_counts.csv.gz"
    adata = bf.read(counts, sample_sheet=demo_dir() / "demo_samples.csv", model=demo_model)
    table = pd.read_csv(counts, index_col=0)  # genes × samples, as users read it
    assert list(adata.obs_names) == list(table.columns) and list(adata.var_names) == list(table.index)
    np.testing.assert_array_equal(adata.X, table.to_numpy(dtype=np.float32).T)  # counts stay counts
    assert (adata.var["gene_id"] == adata.var_names).all()  # the demo is Ensembl already
    assert adata.obs["is_outlier"].dtype == bool
    sheet = pd.read_csv(demo_dir() / "demo_samples.csv", index_col=0)
    assert adata.obs["is_outlier"].sum() == sheet["is_outlier"].sum() > 0
    uns = adata.uns["bulkformer"]
    assert uns["read"]["value_type"] == "counts" and any("Model genes measured" in l for l in uns["qc"])


def test_read_leaves_out_htseq_counters_and_says_so(tmp_path: Path) -> None:
    """An HTSeq-count table's ``__no_feature`` … rows are not genes: not in ``var`` and listed in
    ``uns`` (the same rule as the app and the CLI)."""
    counts = pd.read_csv(demo_dir() / "demo_counts.csv.gz", index_col=0).iloc[:50, :4]
    counters = pd.DataFrame(1000, index=["__no_feature", "__ambiguous"], columns=counts.columns)
    path = tmp_path / "htseq.csv"
    pd.concat([counts, counters]).to_csv(path)
    adata = bf.read(path)
    assert adata.n_vars == 50 and not any(str(v).startswith("__") for v in adata.var_names)
    np.testing.assert_array_equal(adata.X, counts.to_numpy().T)
    assert adata.uns["bulkformer"]["read"]["counters_left_out"] == ["__no_feature", "__ambiguous"]


def test_embed_matches_the_pipeline_and_copy_semantics(demo_model: BulkFormerModel) -> None:
    counts = demo_dir() / "demo_counts.csv.gz"
    adata = bf.read(counts)[:10].copy()
    assert bf.tl.embed(adata, model=demo_model, precision="fp32", compile="off") is None
    prepared = demo_model.prepare(counts)
    expected = demo_model.run(prepared.aligned.values[:10], prepared.aligned.sample_ids[:10], impute=False,
                              precision="fp32", compile="off").sample_embedding
    np.testing.assert_allclose(adata.obsm["X_bulkformer"], expected, atol=1e-5, rtol=0)
    uns = adata.uns["bulkformer"]
    assert uns["model_checksum"] == demo_model.checksum and uns["is_demo"] == 1
    assert "log1p TPM" in uns["value_scale"] and len(uns["embedding_columns"]) == expected.shape[1]
    fresh = bf.read(counts)[:10].copy()
    copied = bf.tl.embed(fresh, model=demo_model, precision="fp32", compile="off", copy=True)
    assert "X_bulkformer" not in fresh.obsm and copied.obsm["X_bulkformer"].shape == expected.shape


def test_embed_reads_a_layer_and_refuses_a_missing_one(demo_model: BulkFormerModel) -> None:
    adata = bf.read(demo_dir() / "demo_counts.csv.gz")[:5].copy()
    adata.layers["counts"] = adata.X.copy()
    adata.X = np.zeros_like(adata.X)
    bf.tl.embed(adata, model=demo_model, layer="counts", precision="fp32", compile="off")
    reference = bf.read(demo_dir() / "demo_counts.csv.gz")[:5].copy()
    bf.tl.embed(reference, model=demo_model, precision="fp32", compile="off")
    np.testing.assert_allclose(adata.obsm["X_bulkformer"], reference.obsm["X_bulkformer"], atol=1e-6)
    with pytest.raises(bf.InputError, match="no layer 'tpm'"):
        bf.tl.embed(adata, model=demo_model, layer="tpm")


def test_impute_layers_and_unmeasured_genes(demo_model: BulkFormerModel, tmp_path: Path) -> None:
    panel = demo_dir() / "demo_panel_counts.csv.gz"
    adata = bf.read(panel)[:6].copy()
    bf.tl.impute(adata, model=demo_model, precision="fp32", compile="off")
    prepared = demo_model.prepare(panel)
    aligned = prepared.aligned
    model = demo_model.run(aligned.values[:6], aligned.sample_ids[:6], embed=False, precision="fp32",
                           compile="off").imputed
    position = {g: i for i, g in enumerate(aligned.gene_ids)}
    gene = adata.var["gene_id"].iloc[0]
    np.testing.assert_allclose(adata.layers["bulkformer"][:, 0], model[:, position[gene]], atol=1e-5)
    np.testing.assert_allclose(adata.layers["bulkformer_filled"][:, 0], aligned.values[:6, position[gene]],
                               atol=1e-6)  # measured values kept (log1p TPM)
    unmeasured = pd.DataFrame(adata.obsm["bulkformer_unmeasured"], index=adata.obs_names,
                              columns=adata.uns["bulkformer"]["unmeasured_genes"])  # as the docstring says
    assert unmeasured.shape == (6, int((~aligned.observed).sum()))
    first = unmeasured.columns[0].rsplit("_", 1)[-1]
    np.testing.assert_allclose(unmeasured.iloc[:, 0].to_numpy(), model[:, position[first]], atol=1e-5)
    adata.write_h5ad(tmp_path / "imputed.h5ad")  # with the user's own call
    back = anndata.read_h5ad(tmp_path / "imputed.h5ad")
    np.testing.assert_array_equal(back.layers["bulkformer"], adata.layers["bulkformer"])


def test_holdout_gives_a_verdict(demo_model: BulkFormerModel) -> None:
    adata = bf.read(demo_dir() / "demo_counts.csv.gz")[:12].copy()
    before = adata.copy()
    checked = bf.tl.holdout(adata, model=demo_model, precision="fp32", compile="off", fraction=0.2, seed=3)
    assert checked.fraction == 0.2 and checked.verdict.lines()
    assert set(checked.comparison.table["method"]) == {"BulkFormer", "gene mean", "kNN"}
    assert not adata.obsm and adata.uns.keys() == before.uns.keys()  # adata is read, not changed


def test_scanpy_on_the_demo_cohort_and_written_back(demo_model: BulkFormerModel, tmp_path: Path) -> None:
    sc = pytest.importorskip("scanpy")
    adata = bf.read(demo_dir() / "demo_counts.csv.gz", sample_sheet=demo_dir() / "demo_samples.csv")
    bf.tl.embed(adata, model=demo_model, compile="off")
    sc.pp.neighbors(adata, use_rep="X_bulkformer")
    sc.tl.umap(adata)
    assert adata.obsm["X_umap"].shape == (200, 2) and np.isfinite(adata.obsm["X_umap"]).all()
    adata.write_h5ad(tmp_path / "demo.h5ad")
    back = anndata.read_h5ad(tmp_path / "demo.h5ad")
    assert back.obs["is_outlier"].dtype == bool and (back.obs["is_outlier"] == True).sum() > 0
    np.testing.assert_array_equal(back.obsm["X_bulkformer"], adata.obsm["X_bulkformer"])
    assert back.uns["bulkformer"]["model_checksum"] == demo_model.checksum


def test_import_bulkformer_loads_no_torch_for_tl() -> None:
    import subprocess
    import sys

    code = "import sys, bulkformer; bulkformer.tl; bulkformer.read; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
