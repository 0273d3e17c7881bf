"""Result files: each format read back, no partial files, AnnData contents, the run report."""

from __future__ import annotations

import io
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from bulkformer import export
from bulkformer.errors import BulkFormerError
from bulkformer.export import (
    RunFacts,
    embedding_frame,
    gene_embedding_frame,
    imputed_frame,
    projection_frame,
    run_report,
    to_anndata,
    to_bytes,
    write_output,
)
from bulkformer.projection import Projection
from bulkformer.wrapper import InferenceResult

GENES = ("ENSG00000141510", "ENSG00000012048", "ENSG00000146648")
SYMBOLS = {"ENSG00000141510": "TP53", "ENSG00000012048": "BRCA1"}


def _result() -> InferenceResult:
    rng = np.random.default_rng(1)
    return InferenceResult(
        sample_ids=("s1", "s2"), gene_ids=GENES,
        sample_embedding=rng.normal(size=(2, 4)).astype(np.float32),
        imputed=rng.random((2, 3)).astype(np.float32),
        gene_embedding=rng.normal(size=(2, 2, 4)).astype(np.float32),
        gene_embedding_ids=GENES[:2], aggregate="mean",
    )


def _facts(*, is_demo: bool = False) -> RunFacts:
    return RunFacts(model_name="147M", model_checksum="ab" * 32, model_source="/models/bulkformer_147M.pt",
                    is_demo=is_demo, device="cpu", aggregate="all", batch_size=None, precision="fp32",
                    n_samples=2, n_genes=3, qc_summary=("Read 3 genes × 2 samples.", "Warning: low depth"),
                    extra=(("input", "counts.csv"),))


def test_frames_have_sample_ids_as_row_key() -> None:
    result = _result()
    emb = embedding_frame(result)
    assert emb.index.name == "sample_id" and list(emb.index) == ["s1", "s2"]
    assert list(emb.columns) == ["emb_0", "emb_1", "emb_2", "emb_3"]
    imputed = imputed_frame(result, symbols=SYMBOLS)
    assert list(imputed.columns) == ["TP53 (ENSG00000141510)", "BRCA1 (ENSG00000012048)", "ENSG00000146648"]
    assert list(imputed_frame(result).columns) == list(GENES)
    missing = imputed_frame(result, observed=np.array([True, False, False]), only_missing=True)
    assert list(missing.columns) == list(GENES[1:])
    np.testing.assert_array_equal(missing.to_numpy(), result.imputed[:, 1:])
    long = gene_embedding_frame(result)
    assert list(long.columns[:2]) == ["sample_id", "gene_id"] and len(long) == 4
    assert list(long["gene_id"]) == [GENES[0], GENES[1]] * 2
    np.testing.assert_array_equal(long.iloc[3, 2:].to_numpy(dtype=np.float32), result.gene_embedding[1, 1])


def test_nan_results_and_missing_outputs_are_refused() -> None:
    result = _result()
    result.imputed[0, 0] = np.nan
    with pytest.raises(BulkFormerError, match="missing or infinite"):
        imputed_frame(result)
    no_genes = InferenceResult(("s",), GENES, np.zeros((1, 2)), None, None, (), "mean")
    with pytest.raises(BulkFormerError, match="did not compute"):
        gene_embedding_frame(no_genes)


def test_projection_frame_joins_the_sample_sheet() -> None:
    projection = Projection(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), "pca", "")
    sheet = pd.DataFrame({"tissue": ["liver", "lung"], "x": [9, 8]}, index=pd.Index(["s2", "s1"], name="sample_id"))
    frame = projection_frame(projection, ["s1", "s2"], sheet)
    assert list(frame.columns) == ["sample_id", "x", "y", "method", "tissue", "x (sample sheet)"]
    assert list(frame["tissue"]) == ["lung", "liver"] and list(frame["method"]) == ["pca", "pca"]


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".parquet"])
def test_table_round_trip(tmp_path: Path, ext: str) -> None:
    emb = embedding_frame(_result())
    long = gene_embedding_frame(_result())
    write_output(emb, tmp_path / f"emb{ext}")
    write_output(long, tmp_path / f"long{ext}")
    if ext == ".parquet":
        emb_back, long_back = pd.read_parquet(tmp_path / "emb.parquet"), pd.read_parquet(tmp_path / "long.parquet")
    else:
        sep = "\t" if ext == ".tsv" else ","
        emb_back = pd.read_csv(tmp_path / f"emb{ext}", sep=sep, index_col="sample_id")
        long_back = pd.read_csv(tmp_path / f"long{ext}", sep=sep)
    pd.testing.assert_frame_equal(emb_back, emb, check_dtype=False, atol=1e-7, rtol=0)
    pd.testing.assert_frame_equal(long_back, long, check_dtype=False, atol=1e-7, rtol=0)


def test_array_anndata_and_torch_round_trip(tmp_path: Path) -> None:
    result = _result()
    np.testing.assert_array_equal(np.load(write_output(result.imputed, tmp_path / "a.npy")), result.imputed)
    tensor = torch.load(write_output(result.imputed, tmp_path / "a.pt"), weights_only=True)
    np.testing.assert_array_equal(tensor.numpy(), result.imputed)
    table = torch.load(write_output(embedding_frame(result), tmp_path / "t.pt"), weights_only=True)
    assert table["index"] == ["s1", "s2"] and table["values"].shape == (2, 4)
    bundle = torch.load(write_output({"sample_ids": ["s1", "s2"], "x": result.imputed}, tmp_path / "b.pt"),
                        weights_only=True)
    assert bundle["sample_ids"] == ["s1", "s2"]
    adata = anndata.read_h5ad(write_output(embedding_frame(result), tmp_path / "t.h5ad"))
    assert list(adata.obs_names) == ["s1", "s2"] and adata.shape == (2, 4)


def test_to_anndata_contents(tmp_path: Path) -> None:
    result = _result()
    observed_values = np.array([[1.0, -10.0, 2.0], [3.0, -10.0, 0.0]], dtype=np.float32)
    observed = np.array([True, False, True])
    sheet = pd.DataFrame({"tissue": ["liver", None], "mixed": [1, "two"]}, index=pd.Index(["s1", "s2"]))
    projection = Projection(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32), "umap", "")
    adata = to_anndata(result, observed_values=observed_values, observed=observed, metadata=sheet,
                       projection=projection, symbols=SYMBOLS, facts=_facts(is_demo=True))
    path = write_output(adata, tmp_path / "run.h5ad")
    back = anndata.read_h5ad(path)
    assert list(back.obs_names) == ["s1", "s2"] and list(back.var_names) == list(GENES)
    np.testing.assert_array_equal(back.X, result.imputed)
    np.testing.assert_array_equal(back.layers["imputed"], result.imputed)
    assert np.isnan(back.layers["observed"][:, 1]).all()
    np.testing.assert_array_equal(back.layers["observed"][:, [0, 2]], observed_values[:, [0, 2]])
    np.testing.assert_array_equal(back.obsm["X_bulkformer"], result.sample_embedding)
    np.testing.assert_array_equal(back.obsm["X_umap"], projection.coords)
    assert back.obsm["X_bulkformer_genes"].shape == (2, 2, 4)
    assert list(back.var["symbol"]) == ["TP53", "BRCA1", ""] and list(back.var["observed"]) == [True, False, True]
    assert back.obs.loc["s1", "tissue"] == "liver" and list(back.obs["mixed"]) == ["1", "two"]
    uns = back.uns["bulkformer"]
    assert uns["model_name"] == "147M" and uns["is_demo"] == 1 and uns["aggregate"] == "mean"
    assert "version_torch" in uns and "low depth" in uns["qc_summary"]


def test_no_partial_file_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "emb.csv"
    target_old = tmp_path / "old.csv"
    target_old.write_text("previous result\n")

    def half_then_fail(self, path, *args, **kwargs):
        Path(path).write_text("sample_id,emb_0\ns1,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    for path in (target, target_old):
        with pytest.raises(BulkFormerError, match="No space left"):
            write_output(embedding_frame(_result()), path)
    assert not target.exists()
    assert target_old.read_text() == "previous result\n"  # an existing file is left untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]

    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_output(embedding_frame(_result()), tmp_path / "emb.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]


def test_unknown_extension_lists_the_formats(tmp_path: Path) -> None:
    with pytest.raises(BulkFormerError) as info:
        write_output(embedding_frame(_result()), tmp_path / "emb.xlsx")
    assert ".csv" in str(info.value) and ".parquet" in str(info.value) and ".h5ad" in str(info.value)
    with pytest.raises(BulkFormerError, match=r"\.npy"):
        write_output(np.zeros(3), tmp_path / "a.csv")
    with pytest.raises(BulkFormerError, match="numbers"):
        write_output(gene_embedding_frame(_result()), tmp_path / "long.h5ad")
    assert list(tmp_path.iterdir()) == []


def test_to_bytes() -> None:
    emb = embedding_frame(_result())
    csv = to_bytes(emb).decode()
    assert csv.splitlines()[0].startswith("sample_id,emb_0")
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(to_bytes(emb, "parquet"))), emb)


def test_run_report() -> None:
    report = run_report(_facts())
    for text in ("147M", "ab" * 32, "Warning: low depth", "torch_geometric", "performer_pytorch", "numpy",
                 "pandas", "python", "bulkformer", "log1p", "-10", "sum of the element-wise maximum",
                 "10.1101/2025.06.11.659222", "input: counts.csv"):
        assert text in report, text
    assert "DEMO" not in report
    demo = run_report(_facts(is_demo=True))
    assert "DEMO model trained on SIMULATED data" in demo and "bulkformer download" in demo


def test_package_versions_name_every_package() -> None:
    names = [name for name, _ in export.package_versions()]
    assert names == ["python", "torch", "torch_geometric", "performer_pytorch", "numpy", "pandas", "bulkformer"]
