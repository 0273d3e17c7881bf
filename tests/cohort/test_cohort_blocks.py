"""Block readers against the dense table they were written from (the independent reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer.cohort import open_source
from bulkformer.errors import InputError
from bulkformer.export import write_h5ad

GENES = ["ENSG00000141510", "ENSG00000111640", "ENSG00000075624", "ENSG00000169429", "ENSG00000105329",
         "ENSG00000115414"]


def _table(n: int = 37, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.poisson(50, size=(n, len(GENES))).astype(np.float32),
                        index=pd.Index([f"GSM{1000 + i}" for i in range(n)], name="sample_id"), columns=GENES)


BLOCKS = [np.array([0, 1, 2]), np.array([5, 7, 8, 9, 10, 11, 12]), np.array([20]), np.array([30, 36])]


def _check(path: Path, table: pd.DataFrame, *, fmt: str) -> None:
    source = open_source(path)
    assert source.source_format == fmt
    assert source.sample_ids == tuple(table.index)
    assert source.gene_labels == tuple(table.columns)
    got = list(source.iter_blocks(BLOCKS))
    for positions, values in zip(BLOCKS, got, strict=True):
        np.testing.assert_array_equal(values, table.to_numpy()[positions])


def test_csv_tsv_gzip_parquet_and_h5ad_give_the_table_values(tmp_path: Path) -> None:
    import anndata

    table = _table()
    table.to_csv(tmp_path / "t.csv")
    _check(tmp_path / "t.csv", table, fmt="csv")
    table.to_csv(tmp_path / "t.tsv.gz", sep="\t")
    _check(tmp_path / "t.tsv.gz", table, fmt="csv")
    table.to_parquet(tmp_path / "t.parquet", row_group_size=4)  # blocks span several row groups
    _check(tmp_path / "t.parquet", table, fmt="parquet")
    write_h5ad(anndata.AnnData(table.to_numpy(), obs=pd.DataFrame(index=table.index.astype(str)),
                               var=pd.DataFrame(index=table.columns)), tmp_path / "t.h5ad")
    _check(tmp_path / "t.h5ad", table, fmt="h5ad")


def test_archs4_file_is_read_by_column_slices(tmp_path: Path) -> None:
    import h5py

    table = _table()
    with h5py.File(tmp_path / "human_gene_v2.h5", "w") as f:
        f["data/expression"] = table.to_numpy().T.astype(np.uint32)  # genes × samples
        f["meta/samples/geo_accession"] = np.array([s.encode() for s in table.index])
        f["meta/genes/ensembl_gene"] = np.array([g.encode() for g in GENES])
    _check(tmp_path / "human_gene_v2.h5", table, fmt="archs4")
    assert open_source(tmp_path / "human_gene_v2.h5").value_hint.value == "counts"


def test_archs4_file_without_the_datasets_is_refused(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data/expression"] = np.zeros((3, 2))
    with pytest.raises(InputError, match="meta/samples/geo_accession") as info:
        open_source(tmp_path / "other.h5")
    assert "ARCHS4" in info.value.hint


def test_genes_as_rows_table_is_read_whole_within_the_budget(tmp_path: Path) -> None:
    table = _table()
    table.T.to_csv(tmp_path / "genes_rows.csv")
    source = open_source(tmp_path / "genes_rows.csv")
    assert not source.streamed and source.layout.value == "genes_in_rows"
    got = list(source.iter_blocks(BLOCKS))
    for positions, values in zip(BLOCKS, got, strict=True):
        np.testing.assert_array_equal(values, table.to_numpy()[positions])


def test_genes_as_rows_table_over_the_budget_says_how_to_convert(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "100000")  # the header passes, the whole table does not
    wide = pd.DataFrame(np.ones((3000, 37), dtype=np.float32), index=[f"ENSG{i:011d}" for i in range(3000)],
                        columns=[f"GSM{i}" for i in range(37)])
    wide.to_csv(tmp_path / "genes_rows.csv")
    with pytest.raises(InputError) as info:
        open_source(tmp_path / "genes_rows.csv")
    assert "samples as rows" in info.value.hint and "to_parquet" in info.value.hint


def test_an_empty_cell_in_a_later_block_is_named(tmp_path: Path, ) -> None:
    from bulkformer.cohort._blocks import check_finite

    table = _table()
    text = table.to_csv().splitlines()
    text[31] = text[31].rsplit(",", 1)[0] + ","  # GSM1030's last gene left empty
    (tmp_path / "t.csv").write_text("\n".join(text) + "\n")
    source = open_source(tmp_path / "t.csv")
    values = list(source.iter_blocks(BLOCKS))[3]
    with pytest.raises(InputError, match="empty / NA cell for sample 'GSM1030', gene 'ENSG00000115414'"):
        check_finite(values, sample_ids=("GSM1030", "GSM1036"), gene_labels=GENES, name="t.csv")


def test_csv_blocks_across_many_parser_batches(tmp_path: Path, monkeypatch) -> None:
    from bulkformer.cohort import _blocks

    monkeypatch.setattr(_blocks, "CSV_BLOCK_BYTES", 300)  # a few rows per pyarrow batch
    table = _table(n=120, seed=4)
    table.to_csv(tmp_path / "t.csv")
    blocks = [np.arange(0, 7), np.array([9, 40, 41]), np.arange(42, 100, 3), np.array([119])]
    got = list(open_source(tmp_path / "t.csv").iter_blocks(blocks))
    for positions, values in zip(blocks, got, strict=True):
        np.testing.assert_array_equal(values, table.to_numpy()[positions])


def test_sparse_h5ad_with_a_counts_layer_is_read_from_the_layer(tmp_path: Path) -> None:
    import anndata
    import scipy.sparse

    table = _table()
    adata = anndata.AnnData(scipy.sparse.csr_matrix(np.log1p(table.to_numpy())),
                            obs=pd.DataFrame(index=table.index.astype(str)), var=pd.DataFrame(index=table.columns))
    adata.layers["counts"] = scipy.sparse.csr_matrix(table.to_numpy())
    write_h5ad(adata, tmp_path / "t.h5ad")
    _check(tmp_path / "t.h5ad", table, fmt="h5ad")
    assert open_source(tmp_path / "t.h5ad").value_hint.value == "counts"
