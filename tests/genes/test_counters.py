"""Counters of HTSeq-count and STAR are told from genes, and ``orient`` leaves them out of the
gene axis only (values, labels and the file's lengths together)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bulkformer.errors import InputError
from bulkformer.genes import (
    counter_mask,
    counting_tools,
    is_counter_label,
    load_annotation,
    orient,
)
from bulkformer.io import Guess, RawTable

HTSEQ = ["__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique"]
STAR = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]
TP53, ACTB, GAPDH = "ENSG00000141510", "ENSG00000075624", "ENSG00000111640"


def test_every_counter_of_both_tools_is_one() -> None:
    for label in HTSEQ + STAR:
        assert is_counter_label(label) and is_counter_label(f" {label}\t"), label
    assert counter_mask(HTSEQ + STAR).all()
    assert counting_tools(HTSEQ) == "HTSeq-count" and counting_tools(STAR[:1]) == "STAR"


@pytest.mark.parametrize("label", ["TP53", TP53, f"{TP53}.17", "", "__", "__index_level_0__", "N_unmappedX",
                                   "n_unmapped", "N_", "N_other", "MT-N_unmapped", "x__no_feature", "1"])
def test_labels_that_are_not_counters(label: str) -> None:
    assert not is_counter_label(label)
    assert not is_counter_label(None) and not is_counter_label(3.0)


def test_no_gene_of_the_shipped_annotation_is_a_counter() -> None:
    annotation = load_annotation()
    table = annotation.table
    aliases = table["aliases"].str.split("|").explode()
    names = pd.concat([table["ensg_id"], table["symbol"], aliases[aliases != ""],
                       pd.Series(annotation.former_ids.index), pd.Series(annotation.entrez_ids.index)])
    assert len(names) > 50_000
    hits = names[counter_mask(names.astype(str).tolist())]
    assert hits.empty, list(hits[:5])


def _raw(rows: list[str], columns: list[str], **kwargs: object) -> RawTable:
    values = np.arange(len(rows) * len(columns), dtype=np.float32).reshape(len(rows), len(columns))
    return RawTable(values, tuple(rows), tuple(columns), "csv", **kwargs)


def test_orient_leaves_counter_rows_out_of_values_labels_and_lengths() -> None:
    rows = ["N_unmapped", TP53, ACTB, "__no_feature", GAPDH, "__ambiguous"]
    raw = _raw(rows, ["S1", "S2"], row_lengths=np.array([9.0, 1.0, 2.0, 9.0, 3.0, 9.0]))
    table = orient(raw)
    assert table.orientation.value == "genes_in_rows"
    assert table.gene_labels == (TP53, ACTB, GAPDH)
    assert table.counter_labels == ("N_unmapped", "__no_feature", "__ambiguous")
    np.testing.assert_array_equal(table.values, raw.values[[1, 2, 4]].T)
    np.testing.assert_array_equal(table.gene_lengths, [1.0, 2.0, 3.0])
    assert table.values.flags.c_contiguous and table.sample_ids == ("S1", "S2")


def test_orient_leaves_counter_columns_out_and_never_a_sample() -> None:
    # a sample named like a counter stays: only the gene axis is looked at
    raw = _raw(["N_unmapped", "__ambiguous", "S3"], [*STAR, TP53, ACTB, GAPDH],
               layout=Guess("genes_in_columns", "test"))
    table = orient(raw)
    assert table.sample_ids == ("N_unmapped", "__ambiguous", "S3")
    assert table.gene_labels == (TP53, ACTB, GAPDH) and table.counter_labels == tuple(STAR)
    np.testing.assert_array_equal(table.values, raw.values[:, 4:])
    plain = orient(_raw(["S1", "S2"], [TP53, ACTB]))
    assert plain.counter_labels == () and plain.gene_labels == (TP53, ACTB)


def test_a_table_of_counters_only_is_refused() -> None:
    with pytest.raises(InputError, match="counter of the read-counting tool"):
        orient(_raw(HTSEQ, ["S1", "S2"], layout=Guess("genes_in_rows", "test")))
