"""Sample sheets come in every format and compression an expression table may (CSV/TSV/TXT,
XLSX, Parquet, the obs of an .h5ad, each gzipped too), and yes/no columns stay booleans."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from bulkformer.export import write_h5ad
from bulkformer.io import read_sample_sheet

SAMPLES = ["S1", "S2", "S3"]


def _sheet() -> pd.DataFrame:
    return pd.DataFrame({"sample_id": SAMPLES, "tissue": ["liver", "lung", "liver"],
                         "is_outlier": [True, False, False], "age": [30.5, 41.0, 52.0]})


def _as(fmt: str, tmp_path: Path) -> Path:
    sheet = _sheet()
    path = tmp_path / f"samples.{fmt}"
    if fmt in ("csv", "csv.gz"):
        sheet.to_csv(path, index=False)  # pandas gzips by the name
    elif fmt == "tsv":
        sheet.to_csv(path, index=False, sep="\t")
    elif fmt == "xlsx":
        sheet.to_excel(path, index=False)
    elif fmt in ("parquet", "parquet.gz"):
        buffer = io.BytesIO()
        sheet.set_index("sample_id").to_parquet(buffer)
        path.write_bytes(gzip.compress(buffer.getvalue()) if fmt.endswith(".gz") else buffer.getvalue())
    else:
        adata = anndata.AnnData(np.zeros((3, 2), dtype=np.float32), obs=sheet.set_index("sample_id"))
        write_h5ad(adata, tmp_path / "tmp.h5ad")  # as pandas 3's text too
        data = (tmp_path / "tmp.h5ad").read_bytes()
        path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "tsv", "xlsx", "parquet", "parquet.gz", "h5ad", "h5ad.gz"])
def test_every_table_format_is_a_sample_sheet(tmp_path: Path, fmt: str) -> None:
    path = _as(fmt, tmp_path)
    for source, name in ((path, None), (path.read_bytes(), path.name)):  # a path, and an upload's bytes
        sheet = read_sample_sheet(source, filename=name, sample_ids=SAMPLES)
        table = sheet.table
        assert list(table.index) == SAMPLES and not sheet.missing
        assert list(table["tissue"]) == ["liver", "lung", "liver"]
        assert table["is_outlier"].dtype == bool and list(table["is_outlier"]) == [True, False, False]
        assert (table["is_outlier"] == True).sum() == 1
        np.testing.assert_allclose(table["age"].to_numpy(dtype=float), [30.5, 41.0, 52.0])


def test_true_false_text_with_gaps_is_a_nullable_boolean() -> None:
    text = b"sample,flag,word\nS1,TRUE,yes\nS2,false,no\nS3,,maybe\n"
    table = read_sample_sheet(text, filename="s.csv", sample_ids=SAMPLES).table
    assert str(table["flag"].dtype) == "boolean" and list(table["flag"][:2]) == [True, False]
    assert pd.isna(table["flag"].iloc[2]) and table["word"].dtype != bool  # yes/no words stay text


@pytest.mark.parametrize("fmt", ["parquet", "h5ad.gz"])
def test_the_id_column_chooser_lists_an_index_of_sample_ids(tmp_path: Path, fmt: str) -> None:
    from bulkformer.io import sample_sheet_columns

    assert sample_sheet_columns(_as(fmt, tmp_path))[0] == "sample_id"
    sheet = read_sample_sheet(_as(fmt, tmp_path), sample_ids=SAMPLES, id_column="sample_id")
    assert list(sheet.table.index) == SAMPLES
