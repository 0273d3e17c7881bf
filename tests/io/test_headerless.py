"""Tool outputs without a header line: HTSeq-count (gene, count) and STAR's
``ReadsPerGene.out.tab`` (gene, then three count columns by strandedness). Before, their first
line was taken as column names: the first gene vanished and the sample was named by its count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bulkformer.errors import InputError
from bulkformer.io import read_table

GENES = ["ENSG00000141510", "ENSG00000111640", "ENSG00000075624", "ENSG00000169429"]
HTSEQ_COUNTERS = ["__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique"]
STAR_COUNTERS = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]


def test_htseq_count_output_is_one_sample_named_after_the_file(tmp_path: Path) -> None:
    counts = [723, 0, 15402, 88]
    lines = [f"{g}\t{c}" for g, c in zip(GENES, counts)] + [f"{c}\t{1000 + i}" for i, c in enumerate(HTSEQ_COUNTERS)]
    path = tmp_path / "patient7.htseq.counts.txt"
    path.write_text("\n".join(lines) + "\n")
    raw = read_table(path)
    assert raw.column_labels == ("patient7",)
    assert raw.row_labels == (*GENES, *HTSEQ_COUNTERS)  # the first gene is a gene, not a header
    np.testing.assert_array_equal(raw.values[:, 0], [*counts, 1000, 1001, 1002, 1003, 1004])
    assert raw.layout.value == "genes_in_rows" and raw.value_hint.value == "counts"
    assert "HTSeq-count" in raw.value_hint.reason


@pytest.mark.parametrize(("forward", "reverse", "column", "words"), [
    ([10, 0, 500, 4], [400, 0, 9000, 70], 3, "column 4, a reverse-stranded library"),
    ([400, 0, 9000, 70], [10, 0, 500, 4], 2, "column 3, a forward-stranded library"),
    ([200, 0, 4800, 40], [210, 0, 4700, 35], 1, "column 2, an unstranded library"),
])
def test_star_reads_per_gene_takes_the_column_that_fits_the_library(
        tmp_path: Path, forward: list[int], reverse: list[int], column: int, words: str) -> None:
    unstranded = [f + r for f, r in zip(forward, reverse)]
    columns = {1: unstranded, 2: forward, 3: reverse}
    head = [f"{c}\t{n}\t{n}\t{n}" for c, n in zip(STAR_COUNTERS, (2674603, 350000, 1200000, 90000))]
    body = [f"{g}\t{u}\t{f}\t{r}" for g, u, f, r in zip(GENES, unstranded, forward, reverse)]
    path = tmp_path / "S12_ReadsPerGene.out.tab"
    path.write_text("\n".join(head + body) + "\n")
    raw = read_table(path)
    assert raw.column_labels == ("S12",)
    assert raw.row_labels == (*STAR_COUNTERS, *GENES)
    np.testing.assert_array_equal(raw.values[4:, 0], columns[column])
    assert words in raw.value_hint.reason and raw.value_hint.value == "counts"


def test_samples_named_by_numbers_keep_their_header(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("gene_id,1001,1002\n" + "".join(f"{g},{i},{i + 1}\n" for i, g in enumerate(GENES)))
    raw = read_table(path)
    assert raw.column_labels == ("1001", "1002") and raw.row_labels == tuple(GENES)


def test_a_headerless_table_of_several_samples_is_refused_saying_what_to_add(tmp_path: Path) -> None:
    path = tmp_path / "counts.tsv"
    path.write_text("".join(f"{g}\t{i}\t{i + 1}\t{i + 2}\n" for i, g in enumerate(GENES)))
    with pytest.raises(InputError, match="holds numbers, not column names") as info:
        read_table(path)
    assert "Add a header line" in info.value.hint


def test_htseq_output_through_prepare_leaves_the_counters_out(tmp_path: Path) -> None:
    """End to end: the HTSeq file's counts become TPM over its genes only (hand computation)."""
    from bulkformer import prepare
    from bulkformer.genes import load_annotation
    from bulkformer.inputs import load_gene_lengths

    annotation = load_annotation()
    genes = list(annotation.protein_coding_ids())[:300]
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5000, size=len(genes))
    lines = [f"{g}\t{c}" for g, c in zip(genes, counts)] + [f"{c}\t{10**6}" for c in HTSEQ_COUNTERS]
    path = tmp_path / "liver_1.txt"
    path.write_text("\n".join(lines) + "\n")
    prepared = prepare(path, gene_order=genes)
    lengths = load_gene_lengths("upstream").lengths_bp(genes)  # prepare's default table
    lengths = np.where(np.isfinite(lengths) & (lengths >= 1), lengths, 1000.0)
    rate = counts / lengths
    expected = np.log1p(rate / rate.sum() * 1e6)
    assert prepared.aligned.sample_ids == ("liver_1",)
    np.testing.assert_allclose(prepared.aligned.values[0], expected, rtol=1e-5, atol=1e-5)
