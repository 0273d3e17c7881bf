"""The gene-length tables a model's counts input is normalised with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bulkformer import paths
from bulkformer.errors import CheckpointError
from bulkformer.genes import load_annotation
from bulkformer.inputs._gene_lengths import (
    ANNOTATION,
    UPSTREAM,
    check_name,
    load_gene_lengths,
)
from tests.conftest import SHARED

REFERENCE = SHARED / "reference" / "gene_length_df.csv"


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"{REFERENCE} not found (the ../shared folder is absent)")
def test_shipped_upstream_table_is_upstreams_file() -> None:
    shipped = pd.read_csv(paths.GENE_LENGTHS_DIR / "gene_length_df.csv.gz")
    pd.testing.assert_frame_equal(shipped, pd.read_csv(REFERENCE))


def test_upstream_lookup_ignores_versions_and_gives_nan_when_unlisted() -> None:
    table = load_gene_lengths(UPSTREAM)
    raw = pd.read_csv(paths.GENE_LENGTHS_DIR / "gene_length_df.csv.gz").iloc[[0, 5]]
    ids = [f"{raw.ensg_id.iloc[0]}.7", raw.ensg_id.iloc[1], "ENSG99999999999", None]
    got = table.lengths_bp(ids)
    np.testing.assert_array_equal(got[:2], raw.length.to_numpy(dtype=float))
    assert np.isnan(got[2:]).all()
    assert len(table.lengths) == 78_932 and "gene_length_df.csv" in table.description


def test_annotation_table_matches_the_annotation() -> None:
    annotation = load_annotation()
    ids = list(annotation.protein_coding_ids()[:20])
    np.testing.assert_array_equal(load_gene_lengths(ANNOTATION).lengths_bp(ids), annotation.lengths_bp(ids))


def test_unknown_table_names_the_choices() -> None:
    with pytest.raises(CheckpointError, match="Unknown gene-length table") as info:
        check_name("hg38")
    assert "upstream" in info.value.hint and "annotation" in info.value.hint
