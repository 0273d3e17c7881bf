"""Counters of HTSeq-count and STAR streamed through a cohort run: every reader leaves them out,
the plan lists them, the report says so, and the numbers are those of a single-process run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer import cohort
from bulkformer.cohort import open_source
from bulkformer.export import write_h5ad
from bulkformer.model import BulkFormerModel, RunOptions
from tests.cohort.conftest import cohort_counts

OPTIONS = RunOptions(impute=False, precision="fp32", compile="off", batch_size=32)
HTSEQ = ["__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique"]
STAR = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]
GENES = ["ENSG00000141510", "ENSG00000111640", "ENSG00000075624", "ENSG00000169429", "ENSG00000105329",
         "ENSG00000115414"]
BLOCKS = [np.array([0, 1, 2]), np.array([5, 7, 8, 9, 10, 11, 12]), np.array([20]), np.array([30, 36])]


def with_counters(genes: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """``genes`` (samples as rows) with STAR's counters first, HTSeq's in the middle, large counts."""
    rng = np.random.default_rng(seed)
    star = pd.DataFrame(rng.integers(10**6, 10**7, size=(len(genes), len(STAR))), index=genes.index, columns=STAR)
    htseq = pd.DataFrame(rng.integers(10**6, 10**7, size=(len(genes), len(HTSEQ))), index=genes.index,
                         columns=HTSEQ)
    half = genes.shape[1] // 2
    return pd.concat([star, genes.iloc[:, :half], htseq, genes.iloc[:, half:]], axis=1).astype(genes.dtypes.iloc[0])


def _small(n: int = 37) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(rng.poisson(50, size=(n, len(GENES))).astype(np.float32),
                        index=pd.Index([f"GSM{1000 + i}" for i in range(n)], name="sample_id"), columns=GENES)


def _check(path: Path, genes: pd.DataFrame) -> None:
    source = open_source(path)
    assert source.gene_labels == tuple(genes.columns)
    assert set(source.counter_labels) == set(STAR + HTSEQ)
    for positions, values in zip(BLOCKS, source.iter_blocks(BLOCKS), strict=True):
        np.testing.assert_array_equal(values, genes.to_numpy()[positions])


def test_every_reader_leaves_the_counters_out(tmp_path: Path) -> None:
    import anndata
    import h5py
    import scipy.sparse

    genes = _small()
    table = with_counters(genes)
    table.to_csv(tmp_path / "t.csv")
    _check(tmp_path / "t.csv", genes)
    table.to_parquet(tmp_path / "t.parquet", row_group_size=4)
    _check(tmp_path / "t.parquet", genes)
    obs, var = pd.DataFrame(index=table.index.astype(str)), pd.DataFrame(index=table.columns)
    write_h5ad(anndata.AnnData(table.to_numpy(), obs=obs, var=var), tmp_path / "dense.h5ad")
    _check(tmp_path / "dense.h5ad", genes)
    write_h5ad(anndata.AnnData(scipy.sparse.csr_matrix(table.to_numpy()), obs=obs, var=var), tmp_path / "sparse.h5ad")
    _check(tmp_path / "sparse.h5ad", genes)
    with h5py.File(tmp_path / "human_gene_v2.h5", "w") as f:
        f["data/expression"] = table.to_numpy().T.astype(np.uint32)
        f["meta/samples/geo_accession"] = np.array([s.encode() for s in table.index])
        f["meta/genes/ensembl_gene"] = np.array([g.encode() for g in table.columns])
    _check(tmp_path / "human_gene_v2.h5", genes)
    table.T.to_csv(tmp_path / "genes_rows.csv")  # read whole, through genes.orient
    source = open_source(tmp_path / "genes_rows.csv")
    assert not source.streamed and source.layout.value == "genes_in_rows"
    _check(tmp_path / "genes_rows.csv", genes)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> BulkFormerModel:
    return BulkFormerModel.load(str(tiny_model_dir), device="cpu")


def _embeddings(model: BulkFormerModel, path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """The single-process run: prepare, then the model on the whole table."""
    prepared = model.prepare(path)
    return prepared.aligned.sample_ids, model.run(prepared.aligned.values, prepared.aligned.sample_ids,
                                                  OPTIONS).sample_embedding


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_streamed_cohort_with_counters_gives_the_single_process_numbers(tmp_path: Path, model, suffix) -> None:
    genes = cohort_counts(50, list(model.gene_ids), seed=4)
    table = with_counters(genes, seed=5)
    path, plain = tmp_path / f"cohort{suffix}", tmp_path / f"genes{suffix}"
    for frame, where in ((table, path), (genes, plain)):
        frame.to_csv(where) if suffix == ".csv" else frame.to_parquet(where, row_group_size=16)

    plan = cohort.make_plan(path, model=model, model_spec=str(model.source), options=OPTIONS, chunk=20, n_shards=2)
    assert plan.facts["input"]["streamed"]
    assert plan.facts["genes"]["counter_labels"] == STAR + HTSEQ
    assert plan.facts["genes"]["n_labels"] == genes.shape[1]
    work = tmp_path / "w"
    cohort.write_plan(plan, work)
    for shard in range(len(plan.shards)):
        cohort.run_shard(plan, work, shard, model)
    outcome = cohort.gather(plan, work, tmp_path / "emb.parquet")
    got = pd.read_parquet(outcome.output)

    ids, ref = _embeddings(model, path)
    plain_ids, plain_ref = _embeddings(model, plain)
    assert tuple(got.index) == ids == plain_ids
    assert np.abs(got.to_numpy() - ref).max() <= 1e-5
    assert np.abs(got.to_numpy() - plain_ref).max() <= 1e-5  # as if the counters were never there
    qc = pd.read_csv(outcome.qc_table, index_col=0)
    np.testing.assert_allclose(qc["library_size"].to_numpy(), genes.sum(axis=1).to_numpy())
    note = next(line for line in outcome.qc_lines if line.startswith("Left out"))
    assert note.startswith("Left out 9 columns that are counters of the read-counting tool")
    assert "'N_unmapped'" in note and "library size" in note
    assert note in outcome.report.read_text()
    assert "counter_labels" not in cohort.make_plan(plain, model=model, model_spec=str(model.source), options=OPTIONS,
                                                    chunk=20).facts["genes"]
