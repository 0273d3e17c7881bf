"""Result files: each format read back, no partial files, AnnData contents, the run report."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from bulkformer import export
from bulkformer.analysis._projection import Projection
from bulkformer.errors import BulkFormerError
from bulkformer.export import (
    RunFacts,
    embedding_frame,
    expression_frame,
    gene_embedding_frame,
    projection_frame,
    run_report,
    to_anndata,
    to_bytes,
    write_output,
)
from bulkformer.model._bulkformer_model import InferenceResult

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
    measured = np.array([[1.0, -10.0, -10.0], [2.0, -10.0, -10.0]], dtype=np.float32)
    observed = np.array([True, False, False])
    imputed = expression_frame(result, measured_values=measured, observed=observed, mode="model", symbols=SYMBOLS)
    # expression runs genes as rows in every mode: row key SYMBOL_ENSG…, one column per sample
    assert list(imputed.index) == ["TP53_ENSG00000141510", "BRCA1_ENSG00000012048", "ENSG00000146648"]
    assert imputed.index.name == "gene" and list(imputed.columns) == ["s1", "s2"]
    np.testing.assert_array_equal(imputed.to_numpy(), result.imputed.T)
    missing = expression_frame(result, measured_values=measured, observed=observed, mode="missing")
    assert list(missing.index) == list(GENES[1:]) and list(missing.columns) == ["s1", "s2"]
    np.testing.assert_array_equal(missing.to_numpy(), result.imputed[:, 1:].T)
    long = gene_embedding_frame(result)
    assert list(long.columns[:2]) == ["sample_id", "gene_id"] and len(long) == 4
    assert list(long["gene_id"]) == [GENES[0], GENES[1]] * 2
    np.testing.assert_array_equal(long.iloc[3, 2:].to_numpy(dtype=np.float32), result.gene_embedding[1, 1])


def test_nan_results_and_missing_outputs_are_refused() -> None:
    result = _result()
    result.imputed[0, 0] = np.nan
    with pytest.raises(BulkFormerError, match="missing or infinite"):
        expression_frame(result, measured_values=np.zeros((2, 3)), observed=np.ones(3, bool))
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
    sheet = pd.DataFrame({"tissue": ["liver", None], "mixed": [1, "two"], "is_outlier": [True, False],
                          "flag": pd.array([True, None], dtype="boolean")}, index=pd.Index(["s1", "s2"]))
    projection = Projection(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32), "umap", "")
    adata = to_anndata(result, measured_values=observed_values, observed=observed, metadata=sheet,
                       projection=projection, symbols=SYMBOLS, facts=_facts(is_demo=True))
    path = write_output(adata, tmp_path / "run.h5ad")
    back = anndata.read_h5ad(path)
    assert list(back.obs_names) == ["s1", "s2"] and list(back.var_names) == list(GENES)
    # X: measured values kept, the unmeasured gene (column 1) from the model; value by value
    for i in range(2):
        for j in range(3):
            want = observed_values[i, j] if observed[j] else result.imputed[i, j]
            assert back.X[i, j] == want
            assert back.layers["bulkformer"][i, j] == result.imputed[i, j]
            if observed[j]:
                assert back.layers["measured"][i, j] == observed_values[i, j]
            else:
                assert np.isnan(back.layers["measured"][i, j])
    assert set(back.layers) == {"measured", "bulkformer"}
    np.testing.assert_array_equal(back.obsm["X_bulkformer"], result.sample_embedding)
    np.testing.assert_array_equal(back.obsm["X_umap"], projection.coords)
    assert back.obsm["X_bulkformer_genes"].shape == (2, 2, 4)
    assert list(back.var["symbol"]) == ["TP53", "BRCA1", "ENSG00000146648"]  # unique: usable as var_names
    assert list(back.var["measured"]) == [True, False, True]
    assert back.obs["is_outlier"].dtype == bool and (back.obs["is_outlier"] == True).sum() == 1
    assert back.obs["flag"].iloc[0] == True and pd.isna(back.obs["flag"].iloc[1])
    assert back.var["measured"].dtype == bool
    assert back.obs.loc["s1", "tissue"] == "liver" and list(back.obs["mixed"]) == ["1", "two"]
    uns = back.uns["bulkformer"]
    assert uns["model_name"] == "147M" and uns["is_demo"] == 1 and uns["aggregate"] == "mean"
    assert "version_torch" in uns and "low depth" in uns["qc_summary"]
    assert "DEMO model trained on SIMULATED data" in next(iter(uns["notes"]))
    assert "embedding_columns" not in uns  # none given


def test_to_anndata_names_the_embedding_columns_when_they_fit() -> None:
    result = _result()
    d = result.sample_embedding.shape[1]
    names = [f"emb_{i}" for i in range(d - 1)] + ["mean_expression"]
    observed_values = np.zeros((2, 3), dtype=np.float32)
    observed = np.ones(3, dtype=bool)
    named = to_anndata(result, measured_values=observed_values, observed=observed, embedding_columns=names)
    assert list(named.uns["bulkformer"]["embedding_columns"]) == names
    too_short = to_anndata(result, measured_values=observed_values, observed=observed, embedding_columns=names[1:])
    assert "embedding_columns" not in too_short.uns["bulkformer"]  # not this result's width: no names


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

    import pyarrow.parquet as pq

    monkeypatch.setattr(pq, "write_table", lambda table, path, *a, **k: interrupted(None, path))
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


def test_filled_keeps_measured_values_and_modes_differ() -> None:
    result = _result()
    measured = np.array([[1.5, -10.0, 0.0], [2.5, -10.0, 3.0]], dtype=np.float32)
    observed = np.array([True, False, True])
    filled = export.expression_values(result, measured_values=measured, observed=observed)[0]
    np.testing.assert_array_equal(filled[:, [0, 2]], measured[:, [0, 2]])  # never replaced
    np.testing.assert_array_equal(filled[:, 1], result.imputed[:, 1])
    model, genes = export.expression_values(result, measured_values=measured, observed=observed, mode="model")
    np.testing.assert_array_equal(model, result.imputed)
    assert genes == GENES
    only, genes = export.expression_values(result, measured_values=measured, observed=observed, mode="missing")
    assert genes == (GENES[1],) and only.shape == (2, 1)
    with pytest.raises(BulkFormerError, match="Unknown expression output"):
        export.expression_values(result, measured_values=measured, observed=observed, mode="imputed")


def test_expression_csv_is_plain_genes_as_rows_with_notes_beside_it(tmp_path: Path) -> None:
    """20,000 genes: the CSV is a header and data rows, read with the calls users type; the notes
    (demo, low coverage) and the layout go into the sidecar and Parquet's metadata."""
    import json

    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    genes = tuple(f"ENSG{i:011d}" for i in range(20_000))
    model = rng.random((3, 20_000)).astype(np.float32)
    result = InferenceResult(("a", "b", "c"), genes, None, model, None, (), "mean")
    measured = np.full((3, 20_000), -10.0, dtype=np.float32)
    measured[:, :500] = 7.0
    observed = np.arange(20_000) < 500
    notes = export.file_notes(is_demo=True, n_measured=500, n_model_genes=20_000)
    file = export.result_file(result, ".csv", kind="expression_imputation", measured_values=measured,
                              observed=observed, symbols={genes[0]: "TP53"})
    export.write_result(file, tmp_path / "filled.csv")
    export.write_output(file.data, tmp_path / "noted.csv", notes=notes, info=file.info)
    for name in ("filled.csv", "noted.csv"):
        assert not (tmp_path / name).read_text().startswith("#")
        back = pd.read_csv(tmp_path / name, index_col=0)  # exactly what users type
        assert back.shape == (20_000, 3) and back.index.name == "gene" and list(back.columns) == ["a", "b", "c"]
        assert back.index[0] == "TP53_ENSG00000000000" and list(back.index[1:]) == list(genes[1:])
        assert all(dtype.kind == "f" for dtype in back.dtypes)
        np.testing.assert_allclose(back.to_numpy()[:500], 7.0)
        np.testing.assert_allclose(back.to_numpy()[500:], model.T[500:], rtol=1e-6)
    report = (tmp_path / "noted.csv.report.md").read_text()
    assert "DEMO model trained on SIMULATED data" in report and "Low coverage" in report
    assert "genes as rows" in report and "log1p TPM" in report and "not counts" in report
    parquet_file = export.result_file(result, ".parquet", kind="expression_imputation", measured_values=measured,
                                      observed=observed, mode="missing")
    write_output(parquet_file.data, tmp_path / "missing.parquet", notes=notes, info=parquet_file.info)
    back = pd.read_parquet(tmp_path / "missing.parquet")
    assert back.index.name == "gene" and back.columns.name == "sample_id" and back.shape == (19_500, 3)
    meta = json.loads(pq.read_schema(tmp_path / "missing.parquet").metadata[b"bulkformer"])
    assert meta["notes"] == list(notes) and any("log1p TPM" in line for line in meta["contents"])


def test_format_table_agrees_with_the_choices() -> None:
    from bulkformer.choices import OUTPUT_FORMAT

    assert tuple(export.FORMATS) == OUTPUT_FORMAT.names
    assert export.formats_for("table") == (".csv", ".tsv", ".parquet", ".h5ad", ".pt")
    assert export.mime_of("csv") == "text/csv" and export.FORMATS[".h5ad"].mime == "application/x-hdf5"


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".parquet", ".h5ad", ".npy", ".pt"])
@pytest.mark.parametrize("kind", ["transcriptome_level", "expression_imputation", "gene_level"])
def test_every_result_in_every_format_opens_plainly(tmp_path: Path, ext: str, kind: str) -> None:
    """Each file read back with the default call of its reader; an h5ad holds only what it says."""
    result = _result()
    measured = np.array([[1.0, -10.0, 2.0], [3.0, -10.0, 0.0]], dtype=np.float32)
    observed = np.array([True, False, True])
    sheet = pd.DataFrame({"tissue": ["liver", "lung"], "is_outlier": [True, False]},
                         index=pd.Index(["s1", "s2"], name="sample_id"))
    file = export.result_file(result, ext, kind=kind, measured_values=measured, observed=observed,
                              metadata=sheet, symbols=SYMBOLS, facts=_facts())
    path = export.write_result(file, tmp_path / f"out{ext}", facts=_facts(),
                               id_paths=(tmp_path / "out.samples.csv", tmp_path / "out.genes.csv"))
    assert (tmp_path / f"out{ext}.report.md").read_text().startswith(f"# out{ext}")
    if ext in (".csv", ".tsv"):
        back = pd.read_csv(path, sep="," if ext == ".csv" else "\t", index_col=0)
        assert "tissue" not in back.columns  # the sample sheet stays out of result tables
        assert not path.read_text().startswith("#")
        _opens_in_a_spreadsheet(path, sep="," if ext == ".csv" else "\t")
    elif ext == ".parquet":
        back = pd.read_parquet(path)
        assert "tissue" not in back.columns
    elif ext == ".h5ad":
        adata = anndata.read_h5ad(path)
        assert adata.X is not None and adata.obs["is_outlier"].dtype == bool
        if kind == "expression_imputation":
            assert set(adata.layers) == {"measured", "bulkformer"} and adata.shape == (2, 3)
        else:
            assert not adata.layers and "measured" not in adata.uns["bulkformer"]["values"]
        if kind == "transcriptome_level":
            assert list(adata.var_names) == [f"emb_{i}" for i in range(4)]
            np.testing.assert_array_equal(adata.X, result.sample_embedding)
            np.testing.assert_array_equal(adata.obsm["X_bulkformer"], result.sample_embedding)
        if kind == "gene_level":
            assert adata.shape == (4, 4) and list(adata.obs["gene_id"]) == list(GENES[:2]) * 2
            np.testing.assert_array_equal(adata.X, result.gene_embedding.reshape(4, 4))
    elif ext == ".npy":
        assert np.load(path).shape[0] == 2
        assert list(pd.read_csv(tmp_path / "out.samples.csv")["sample_id"]) == ["s1", "s2"]
    else:
        saved = torch.load(path, weights_only=True)
        assert saved["sample_ids"] == ["s1", "s2"]


def test_run_report_carries_the_verdict_and_low_coverage() -> None:
    facts = RunFacts(model_name="147M", model_checksum="ab" * 32, model_source="x", is_demo=False, device="cpu",
                     aggregate="mean", batch_size=None, precision="fp32", n_samples=2, n_genes=20_000,
                     qc_summary=(), n_measured_genes=1_000,
                     holdout=("Verdict: the model is worse than the simple baselines", "BulkFormer: Pearson r 0.1"))
    report = run_report(facts)
    assert "Low coverage: the table measures only 1,000 of the model's 20,000 genes" in report
    assert "## Imputation hold-out check" in report and "- Verdict: the model is worse" in report
    assert not dataclasses.replace(facts, n_measured_genes=19_000).notes  # enough genes: nothing to say


def test_h5ad_stores_pandas_string_arrays_as_plain_text(tmp_path: Path) -> None:
    """pandas 3 reads text as string arrays, which anndata < 0.13 will not write by default:
    they are written as the plain strings every anndata (and R) reads, missing values kept."""
    import h5py

    text = pd.StringDtype()
    obs = pd.DataFrame({"tissue": pd.array(["liver", None], dtype=text)}, index=pd.Index(["s1", "s2"], dtype=text))
    adata = anndata.AnnData(np.ones((2, 3), dtype=np.float32), obs=obs,
                            var=pd.DataFrame(index=pd.Index(list(GENES), dtype=text)))
    write_output(adata, tmp_path / "a.h5ad")
    write_output(pd.DataFrame(np.eye(2), index=pd.Index(["s1", "s2"], dtype=text),
                              columns=pd.Index(GENES[:2], dtype=text)), tmp_path / "t.h5ad")
    with h5py.File(tmp_path / "a.h5ad", "r") as file:
        assert file["obs/_index"].attrs["encoding-type"] == "string-array"
        assert file["var/_index"].attrs["encoding-type"] == "string-array"
        assert file["obs/tissue"].attrs["encoding-type"] == "categorical"
    back = anndata.read_h5ad(tmp_path / "a.h5ad")
    assert list(back.obs_names) == ["s1", "s2"] and list(back.var_names) == list(GENES)
    assert back.obs["tissue"].iloc[0] == "liver" and pd.isna(back.obs["tissue"].iloc[1])
    table = anndata.read_h5ad(tmp_path / "t.h5ad")
    assert list(table.obs_names) == ["s1", "s2"] and list(table.var_names) == list(GENES[:2])
    assert adata.obs.index.dtype == text  # the caller's object is left as it was


def test_a_v2_models_sample_features_are_named() -> None:
    import dataclasses

    from bulkformer.model._config import BulkFormerConfig

    names = BulkFormerConfig(family="v2", n_genes=10, dim=32, heads=8, esm_dim=None).feature_names()
    assert len(names) == 35  # 32 learned dimensions, then the three sample features
    result = dataclasses.replace(_result(), sample_embedding=np.zeros((2, 35), dtype=np.float32))
    d = 35
    emb = embedding_frame(result, column_names=names)
    assert list(emb.columns[-3:]) == ["missing_share", "mean_expression", "nonzero_share"]
    assert list(emb.columns[:2]) == ["emb_0", "emb_1"]
    # names that do not fit the width are not used
    assert list(embedding_frame(result, column_names=["a"]).columns) == [f"emb_{i}" for i in range(d)]


def _rscript(code: str, *args: str) -> str:
    """Run R code with the default reading calls; skip, saying why, where R is not installed."""
    import shutil
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("R is not installed (Rscript not on PATH): the R reading checks need it")
    done = subprocess.run([rscript, "--vanilla", "-e", code, *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_csv_and_tsv_open_in_r_with_the_default_calls(tmp_path: Path) -> None:
    """R reads every table as users do: ``read.csv(f, row.names = 1, check.names = FALSE)``;
    embedding column names survive R's ``check.names`` unchanged; gene row keys stay as written;
    numbers stay numbers."""
    result = _result()
    measured = np.array([[1.0, -10.0, 2.0], [3.0, -10.0, 0.0]], dtype=np.float32)
    observed = np.array([True, False, True])
    expression = export.result_file(result, ".csv", kind="expression_imputation", measured_values=measured,
                                    observed=observed, symbols={**SYMBOLS, GENES[2]: "HLA-A"})
    write_output(expression.data, tmp_path / "expr.csv", info=expression.info)
    names = [f"emb_{i}" for i in range(3)] + ["missing_share"]
    write_output(embedding_frame(result, column_names=names), tmp_path / "emb.tsv")
    out = _rscript(
        "a <- commandArgs(TRUE); "
        "e <- read.csv(a[1], row.names = 1, check.names = FALSE); "
        "m <- read.delim(a[2], row.names = 1); "  # check.names left on: the names must survive it
        "cat(rownames(e), sep = '\\n'); cat('--\\n'); cat(colnames(e), sep = '\\n'); cat('--\\n'); "
        "cat(colnames(m), sep = '\\n'); cat('--\\n'); cat(all(sapply(e, is.numeric)), all(sapply(m, is.numeric)), "
        "'\\n'); cat(sprintf('%.6f', e[1, 2]), sprintf('%.6f', m[2, 4]), '\\n')",
        str(tmp_path / "expr.csv"), str(tmp_path / "emb.tsv"))
    rows, columns, emb_columns, rest = out.split("--\n")
    types, values = rest.strip().split("\n")
    assert rows.split() == ["TP53_ENSG00000141510", "BRCA1_ENSG00000012048", "HLA-A_ENSG00000146648"]
    assert columns.split() == ["s1", "s2"] and emb_columns.split() == names
    assert types.split() == ["TRUE", "TRUE"]
    expected_expr = measured[1, 0]  # gene TP53 (measured), sample s2
    assert [float(v) for v in values.split()] == pytest.approx([expected_expr, result.sample_embedding[1, 3]],
                                                               abs=1e-6)


def _opens_in_a_spreadsheet(path: Path, *, sep: str) -> None:
    """What a spreadsheet opening a text table with no options needs: one header row first, every
    row as many cells as the header (no note line to split across cells), within the sheet's
    16,384 columns and 1,048,576 rows."""
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=sep))
    assert rows and all(len(row) == len(rows[0]) for row in rows)
    assert len(rows[0]) <= export.EXCEL_MAX_COLUMNS and len(rows) <= 1_048_576
    assert all(cell.strip() for cell in rows[0][1:])  # every column named


def test_big_expression_csv_fits_a_spreadsheet(tmp_path: Path) -> None:
    genes = tuple(f"ENSG{i:011d}" for i in range(20_000))
    result = InferenceResult(("a", "b"), genes, None, np.ones((2, 20_000), dtype=np.float32), None, (), "mean")
    file = export.result_file(result, ".csv", kind="expression_imputation",
                              measured_values=np.full((2, 20_000), -10.0, dtype=np.float32),
                              observed=np.zeros(20_000, dtype=bool))
    export.write_result(file, tmp_path / "e.csv", facts=_facts(is_demo=True))
    _opens_in_a_spreadsheet(tmp_path / "e.csv", sep=",")
