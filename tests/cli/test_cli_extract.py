"""``bulkformer extract`` and ``bulkformer verify`` on a tiny saved model and a tiny cohort.

Every output format is read back and compared with the Python API (``prepare`` +
``BulkFormerModel.run``) on the same input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bulkformer.cli import app
from bulkformer.fetch.zenodo import verify_file
from bulkformer.genes import load_annotation
from bulkformer.model import _bulkformer_model as wrapper
from bulkformer.model._bulkformer_model import BulkFormerModel
from tests.conftest import random_graph, tiny_network

runner = CliRunner()
N_SAMPLES = 5
SAMPLES = [f"S{i}" for i in range(N_SAMPLES)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny model over 150 real genes (saved twice: as is and as a demo), a counts table measuring
    110 of them (the pipeline refuses fewer than 100), a sheet."""
    root = tmp_path_factory.mktemp("cli")
    genes = list(load_annotation().protein_coding_ids()[:160])
    model_genes = genes[:150]
    model = BulkFormerModel(tiny_network("v2", seed=1, n_genes=150), random_graph(150, 600), model_genes,
                            checksum="x", source="test", device="cpu")
    model.save(root / "model")
    model.save(root / "demo_model", training={"demo": True})
    rng = np.random.default_rng(0)
    measured = genes[40:160]  # 110 of the model's genes, and 10 the model does not know
    counts = pd.DataFrame(rng.negative_binomial(2, 0.01, size=(len(measured), N_SAMPLES)),
                          index=pd.Index(measured, name="gene_id"), columns=SAMPLES)
    counts.to_csv(root / "counts.csv")
    pd.DataFrame({"sample_id": SAMPLES, "tissue": list("aabbc")}).to_csv(root / "sheet.csv", index=False)
    symbol = load_annotation().symbol_of(model_genes[7])
    (root / "genes.txt").write_text(f"# genes of interest\n{model_genes[3]}.12\n{symbol}\n\n{model_genes[40]}\n")
    loaded = BulkFormerModel.load(root / "model", device="cpu")
    prepared = loaded.prepare(root / "counts.csv")
    return {"root": root, "model": loaded, "aligned": prepared.aligned,
            "chosen": [model_genes[3], model_genes[7], model_genes[40]]}


def _extract(setup: dict, output: Path, *args: str) -> object:
    root = setup["root"]
    result = runner.invoke(app, ["extract", str(root / "counts.csv"), str(output),
                                 "--model", str(root / "model"), "--batch-size", "2", "--precision", "fp32",
                                 "--device", "cpu", *args])  # as the expected values: a GPU differs by ~1e-6
    assert "Traceback" not in result.output
    return result


def _expected(setup: dict, **kwargs: object) -> wrapper.InferenceResult:
    aligned = setup["aligned"]
    return setup["model"].run(aligned.values, aligned.sample_ids, batch_size=2, precision="fp32", **kwargs)


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index_col=0)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".parquet", ".npy", ".pt", ".h5ad"])
def test_transcriptome_level_every_format(setup: dict, tmp_path: Path, ext: str) -> None:
    output = tmp_path / f"emb{ext}"
    result = _extract(setup, output, "--aggregate", "max")
    assert result.exit_code == 0, result.output
    assert "Model genes measured: 110 of 150" in result.output  # the QC summary
    expected = _expected(setup, impute=False, aggregate="max").sample_embedding
    if ext in (".csv", ".tsv", ".parquet"):
        frame = _read_table(output)
        assert list(frame.index) == SAMPLES and frame.index.name == "sample_id"
        assert list(frame.columns[-3:]) == ["missing_share", "mean_expression", "nonzero_share"]  # v2 (the spec)
        got = frame.to_numpy()
    elif ext == ".npy":
        got = np.load(output)
        assert list(pd.read_csv(tmp_path / "emb.samples.csv")["sample_id"]) == SAMPLES
    elif ext == ".pt":
        saved = torch.load(output, weights_only=True)
        assert saved["sample_ids"] == SAMPLES
        got = saved["embedding"].numpy()
    else:
        adata = anndata.read_h5ad(output)
        assert list(adata.obs_names) == SAMPLES and adata.uns["bulkformer"]["aggregate"] == "max"
        names = list(adata.uns["bulkformer"]["embedding_columns"])
        assert len(names) == expected.shape[1] and names[-3:] == ["missing_share", "mean_expression", "nonzero_share"]
        got = adata.obsm["X_bulkformer"]
    assert got.shape == expected.shape and got.shape[0] == N_SAMPLES
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".npy", ".pt", ".h5ad"])
def test_expression_imputation_every_format(setup: dict, tmp_path: Path, ext: str) -> None:
    """The default output is *filled*: every measured value kept, only the unmeasured genes predicted."""
    output = tmp_path / f"imputed{ext}"
    result = _extract(setup, output, "--type", "expression_imputation")
    assert result.exit_code == 0, result.output
    model = _expected(setup, embed=False).imputed
    aligned = setup["aligned"]
    expected = np.where(aligned.observed[None, :], aligned.values, model)  # independent of export's code
    assert (expected != model).any()
    genes = list(setup["model"].gene_ids)
    if ext in (".csv", ".parquet"):  # genes as rows, the Ensembl ID after the last "_"
        frame = _read_table(output)
        assert list(frame.columns) == SAMPLES and frame.index.name == "gene"
        assert [g.rsplit("_", 1)[-1] for g in frame.index] == genes  # SYMBOL_ENSG…
        symbols = load_annotation().symbols_of(genes)
        assert frame.index[0] == (f"{symbols[genes[0]]}_{genes[0]}" if symbols.get(genes[0]) else genes[0])
        got = frame.to_numpy().T
    elif ext == ".npy":
        got = np.load(output)
        assert list(pd.read_csv(tmp_path / "imputed.genes.csv")["gene_id"]) == genes
    elif ext == ".pt":
        saved = torch.load(output, weights_only=True)
        assert saved["sample_ids"] == SAMPLES and saved["gene_ids"] == genes
        got = saved["imputed"].numpy()
    else:
        adata = anndata.read_h5ad(output)
        measured = adata.var["measured"].to_numpy()
        assert list(adata.var_names) == genes and measured.dtype == bool and measured.sum() == 110
        np.testing.assert_array_equal(measured, aligned.observed)
        assert np.isnan(adata.layers["measured"][:, ~measured]).all()
        np.testing.assert_array_equal(adata.layers["measured"][:, measured], aligned.values[:, measured])
        np.testing.assert_allclose(adata.layers["bulkformer"], model, atol=1e-6, rtol=0)
        got = adata.X
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("mode", "ext"), [("model", ".csv"), ("missing", ".npy")])
def test_impute_mode_model_and_missing(setup: dict, tmp_path: Path, mode: str, ext: str) -> None:
    output = tmp_path / f"imputed{ext}"
    result = _extract(setup, output, "--type", "expression_imputation", "--impute-mode", mode)
    assert result.exit_code == 0, result.output
    model = _expected(setup, embed=False).imputed
    unmeasured = ~setup["aligned"].observed
    if mode == "model":
        np.testing.assert_allclose(_read_table(output).to_numpy().T, model, atol=1e-6, rtol=0)
    else:
        np.testing.assert_allclose(np.load(output), model[:, unmeasured], atol=1e-6, rtol=0)
        genes = np.asarray(setup["model"].gene_ids)[unmeasured]
        assert list(pd.read_csv(tmp_path / "imputed.genes.csv")["gene_id"]) == list(genes)


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".npy", ".pt", ".h5ad"])
def test_gene_level_with_gene_list(setup: dict, tmp_path: Path, ext: str) -> None:
    output = tmp_path / f"genes{ext}"
    result = _extract(setup, output, "--type", "gene_level", "--genes", str(setup["root"] / "genes.txt"))
    assert result.exit_code == 0, result.output
    chosen = setup["chosen"]
    expected = _expected(setup, embed=False, impute=False, gene_embedding_genes=chosen).gene_embedding
    if ext in (".csv", ".parquet"):
        frame = pd.read_csv(output) if ext == ".csv" else pd.read_parquet(output)
        assert list(frame["sample_id"]) == [s for s in SAMPLES for _ in chosen]
        assert list(frame["gene_id"]) == chosen * N_SAMPLES
        got = frame.filter(like="emb_").to_numpy().reshape(N_SAMPLES, len(chosen), -1)
    elif ext == ".npy":
        got = np.load(output)
        assert list(pd.read_csv(tmp_path / "genes.genes.csv")["gene_id"]) == chosen
    elif ext == ".pt":
        saved = torch.load(output, weights_only=True)
        assert saved["gene_ids"] == chosen
        got = saved["gene_embedding"].numpy()
    else:  # one row per (sample, gene), as the long table
        adata = anndata.read_h5ad(output)
        assert list(adata.uns["bulkformer"]["gene_embedding_ids"]) == chosen
        assert list(adata.obs["sample_id"]) == [s for s in SAMPLES for _ in chosen]
        assert list(adata.obs["gene_id"]) == chosen * N_SAMPLES and not adata.layers
        got = adata.X.reshape(N_SAMPLES, len(chosen), -1)
    assert got.shape == expected.shape and got.shape[:2] == (N_SAMPLES, 3)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


def test_gene_list_restricts_pooling_and_imputation(setup: dict, tmp_path: Path) -> None:
    genes_file = str(setup["root"] / "genes.txt")
    assert _extract(setup, tmp_path / "e.csv", "--genes", genes_file).exit_code == 0
    expected = _expected(setup, impute=False, aggregate_genes=setup["chosen"]).sample_embedding
    np.testing.assert_allclose(_read_table(tmp_path / "e.csv").to_numpy(), expected, atol=1e-6, rtol=0)
    result = _extract(setup, tmp_path / "i.csv", "--type", "expression_imputation", "--genes", genes_file)
    assert result.exit_code == 0, result.output
    assert [g.rsplit("_", 1)[-1] for g in _read_table(tmp_path / "i.csv").index] == setup["chosen"]


def test_gene_level_all_genes_streams_to_npy_only(setup: dict, tmp_path: Path) -> None:
    refused = _extract(setup, tmp_path / "all.csv", "--type", "gene_level")
    assert refused.exit_code == 1 and "51 MB per sample" in refused.output and "--genes" in refused.output
    assert not (tmp_path / "all.csv").exists()
    result = _extract(setup, tmp_path / "all.npy", "--type", "gene_level")
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "all.npy")
    model = setup["model"]
    expected = _expected(setup, embed=False, impute=False, gene_embedding_genes=model.gene_ids).gene_embedding
    assert got.shape == expected.shape and got.shape[:2] == (N_SAMPLES, 150)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert list(pd.read_csv(tmp_path / "all.genes.csv")["gene_id"]) == list(model.gene_ids)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.genes.csv", "all.npy", "all.npy.report.md",
                                                          "all.samples.csv"]
    assert "per-gene embeddings" in (tmp_path / "all.npy.report.md").read_text()


def test_interrupted_run_leaves_no_output(setup: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = wrapper.iter_forward

    def one_batch_then_ctrl_c(*args: object, **kwargs: object):
        batches = real(*args, **kwargs)
        yield next(batches)
        raise KeyboardInterrupt

    monkeypatch.setattr(wrapper, "iter_forward", one_batch_then_ctrl_c)
    for ext, kind in ((".npy", "gene_level"), (".csv", "transcriptome_level")):
        result = _extract(setup, tmp_path / f"out{ext}", "--type", kind)
        assert result.exit_code == 130, result.output
    assert list(tmp_path.iterdir()) == []


def test_metadata_value_type_and_demo_warning(setup: dict, tmp_path: Path) -> None:
    root = setup["root"]
    result = runner.invoke(app, [
        "extract", str(root / "counts.csv"), str(tmp_path / "e.h5ad"), "--model", str(root / "demo_model"),
        "--metadata", str(root / "sheet.csv"), "--value-type", "counts", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "DEMO model" in result.output and "SIMULATED" in result.output
    adata = anndata.read_h5ad(tmp_path / "e.h5ad")
    assert list(adata.obs["tissue"]) == list("aabbc")
    assert adata.uns["bulkformer"]["is_demo"] == 1
    result = _extract(setup, tmp_path / "e.csv", "--metadata", str(root / "sheet.csv"))
    assert result.exit_code == 0, result.output
    assert "tissue" not in _read_table(tmp_path / "e.csv").columns  # the sheet stays out of result tables


def test_user_errors_are_clean(setup: dict, tmp_path: Path) -> None:
    result = _extract(setup, tmp_path / "out.xlsx")
    assert result.exit_code == 1 and ".h5ad" in result.output
    bad_genes = tmp_path / "bad.txt"
    bad_genes.write_text("NOT_A_GENE_XYZ\n")
    result = _extract(setup, tmp_path / "out.csv", "--genes", str(bad_genes))
    assert result.exit_code == 1 and "NOT_A_GENE_XYZ" in result.output
    assert not (tmp_path / "out.csv").exists()


# --- verify -----------------------------------------------------------------------------------


def test_verify_passes_on_a_good_model(setup: dict, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "G_tcga.pt").write_bytes(b"graph")
    (data / "checksums.json").write_text(json.dumps({"G_tcga.pt": "5f47a0e7be6d2b1ab2f5bd6b8e0f0f32"}))
    (tmp_path / "models").mkdir()  # an empty model folder is fine; a missing one is a problem of its own
    result = runner.invoke(app, ["verify", "--model", str(setup["root"] / "model"),
                                 "--model-dir", str(tmp_path / "models"), "--data-dir", str(data)])
    assert "torch-geometric" in result.output and "performer-pytorch" in result.output
    assert "forward pass" in result.output and "OK" in result.output
    # The recorded md5 is wrong on purpose: the only problem is that file.
    assert result.exit_code == 1
    assert "1. " in result.output and "G_tcga.pt is damaged" in result.output and "2. " not in result.output
    (data / "checksums.json").write_text(json.dumps({"G_tcga.pt": _md5(data / "G_tcga.pt")}))
    result = runner.invoke(app, ["verify", "--model", str(setup["root"] / "model"),
                                 "--model-dir", str(tmp_path / "models"), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "All checks passed" in result.output and "md5 OK" in result.output


def test_verify_fails_on_a_damaged_model(setup: dict, tmp_path: Path) -> None:
    copy = tmp_path / "damaged"
    shutil.copytree(setup["root"] / "model", copy)
    weights = copy / "model.safetensors"
    with weights.open("r+b") as fh:
        fh.write(b"\xff" * 64)
    result = runner.invoke(app, ["verify", "--model", str(copy), "--model-dir", str(tmp_path),
                                 "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "1. The model" in result.output and "model.safetensors could not be read" in result.output
    assert "damaged" in result.output and "Traceback" not in result.output


def _md5(path: Path) -> str:
    import hashlib

    digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    assert verify_file(path, digest)
    return digest


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")), reason="needs a C++ compiler")
def test_compiled_run_gives_the_same_embeddings(setup: dict, tmp_path: Path) -> None:
    output = tmp_path / "emb.csv"
    result = _extract(setup, output, "--compile", "on")
    assert result.exit_code == 0, result.output
    assert "Compiling the model for this computer first" in result.output
    expected = _expected(setup, impute=False).sample_embedding
    np.testing.assert_allclose(_read_table(output).to_numpy(), expected, rtol=1e-4, atol=1e-5)
    refused = _extract(setup, tmp_path / "x.csv", "--compile", "maybe")
    assert refused.exit_code != 0 and "'maybe' is not one of" in refused.output


def test_esm2_rows_come_from_the_models_own_folder(setup: dict, tmp_path: Path) -> None:
    """``--esm2`` appends the ESM2 row of each chosen gene, read beside the model's gene table
    (here the model folder), not from the default data folder."""
    root = setup["root"]
    folder = tmp_path / "model_with_esm2"
    shutil.copytree(root / "model", folder)
    table = torch.randn(len(setup["model"].gene_ids), 6, generator=torch.Generator().manual_seed(3))
    torch.save(table, folder / wrapper.ESM2_NAME)
    genes_file = str(root / "genes.txt")
    args = ["extract", str(root / "counts.csv"), str(tmp_path / "g.npy"), "--model", str(folder),
            "--type", "gene_level", "--genes", genes_file, "--esm2", "--precision", "fp32", "--batch-size", "2", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "g.npy")
    chosen = setup["chosen"]
    plain = _expected(setup, embed=False, impute=False, gene_embedding_genes=chosen).gene_embedding
    rows = [setup["model"].gene_ids.index(g) for g in chosen]
    assert got.shape == (N_SAMPLES, len(chosen), plain.shape[2] + 6)
    np.testing.assert_allclose(got[..., :plain.shape[2]], plain, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(got[..., plain.shape[2]:], np.broadcast_to(table[rows].numpy(), (N_SAMPLES, 3, 6)))


def test_esm2_is_refused_clearly_when_missing_or_not_gene_level(setup: dict, tmp_path: Path) -> None:
    root = setup["root"]
    missing = _extract(setup, tmp_path / "g.npy", "--type", "gene_level", "--genes", str(root / "genes.txt"), "--esm2")
    assert missing.exit_code == 1 and "esm2_feature_concat.pt" in missing.output and str(root / "model") in missing.output
    wrong = _extract(setup, tmp_path / "e.csv", "--esm2")
    assert wrong.exit_code == 1 and "gene_level" in wrong.output
    assert not (tmp_path / "g.npy").exists() and not (tmp_path / "e.csv").exists()


def test_demo_model_csv_is_plain_and_its_sidecar_says_demo(setup: dict, tmp_path: Path) -> None:
    """The CSV is a header and data rows, read with the call users type; the notes are in the
    run-report sidecar beside it, and the CLI warns."""
    root = setup["root"]
    result = runner.invoke(app, ["extract", str(root / "counts.csv"), str(tmp_path / "i.csv"), "--model",
                                 str(root / "demo_model"), "--type", "expression_imputation", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "DEMO model" in result.output and "i.csv.report.md" in result.output
    assert not (tmp_path / "i.csv").read_text().startswith("#")
    back = pd.read_csv(tmp_path / "i.csv", index_col=0)
    assert list(back.columns) == SAMPLES and back.shape[0] == 150
    assert all(dtype.kind == "f" for dtype in back.dtypes)
    report = (tmp_path / "i.csv.report.md").read_text()
    assert "DEMO model trained on SIMULATED data" in report and "log1p TPM" in report
    assert "genes as rows" in report and "Weights checksum" in report


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".parquet", ".h5ad", ".npy", ".pt"])
def test_every_output_has_its_run_report_beside_it(setup: dict, tmp_path: Path, ext: str) -> None:
    result = _extract(setup, tmp_path / f"e{ext}")
    assert result.exit_code == 0, result.output
    report = (tmp_path / f"e{ext}.report.md").read_text()
    assert report.startswith(f"# e{ext}") and "## Model" in report and "sample embeddings" in report


def test_embeddings_h5ad_works_with_scanpys_defaults(setup: dict, tmp_path: Path) -> None:
    """X holds the embeddings (emb_* var names), so scanpy's defaults work; use_rep is named."""
    sc = pytest.importorskip("scanpy")
    result = _extract(setup, tmp_path / "e.h5ad", "--metadata", str(setup["root"] / "sheet.csv"))
    assert result.exit_code == 0, result.output
    assert "use_rep='X_bulkformer'" in result.output.replace("\n", "")
    adata = anndata.read_h5ad(tmp_path / "e.h5ad")
    assert adata.X is not None and list(adata.var_names[:2]) == ["emb_0", "emb_1"] and not adata.layers
    np.testing.assert_array_equal(adata.X, adata.obsm["X_bulkformer"])
    sc.pp.neighbors(adata, n_neighbors=3)
    assert adata.obsp["connectivities"].shape == (N_SAMPLES, N_SAMPLES)
