"""HTSeq-count's and STAR's counter rows are not genes: ``prepare`` gives the numbers of the same
table without them (checked against a hand computation with numpy), and says so in the QC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer.genes import load_annotation, protein_coding_ids
from bulkformer.inputs._pipeline import prepare

ORDER = protein_coding_ids()[:300]
HTSEQ = ["__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique"]
STAR = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]


@pytest.fixture(scope="module")
def genes() -> pd.DataFrame:
    """Counts of 200 model genes and one gene the model lacks (MALAT1), genes × 6 samples."""
    rng = np.random.default_rng(7)
    labels = [*ORDER[:200], "ENSG00000251562"]
    values = rng.negative_binomial(2, 0.01, size=(len(labels), 6)) + 1
    return pd.DataFrame(values, index=pd.Index(labels, name="gene"), columns=[f"S{i}" for i in range(6)])


def hand_log_tpm(counts: pd.DataFrame) -> np.ndarray:
    """log1p TPM of genes × samples counts with numpy: counts per kb of the annotation's length
    (1 kb when unknown), scaled to a million over these rows only; samples × genes."""
    annotation = load_annotation()
    lengths = np.array([annotation.length_of(g) or 1000.0 for g in counts.index])
    rate = counts.to_numpy(dtype=np.float64) / (lengths[:, None] / 1000.0)
    return np.log1p(rate / rate.sum(axis=0, keepdims=True) * 1e6).T


def _prepare(path: Path):  # type: ignore[no-untyped-def]
    return prepare(path, gene_order=ORDER, gene_lengths="annotation")


def test_htseq_counter_rows_are_left_out(genes: pd.DataFrame, tmp_path: Path) -> None:
    counters = pd.DataFrame(np.full((len(HTSEQ), genes.shape[1]), 5_000_000), index=pd.Index(HTSEQ, name="gene"),
                            columns=genes.columns)
    genes.to_csv(tmp_path / "genes.csv")
    pd.concat([genes, counters]).to_csv(tmp_path / "htseq.csv")  # HTSeq writes them last
    got, plain = _prepare(tmp_path / "htseq.csv"), _prepare(tmp_path / "genes.csv")

    np.testing.assert_allclose(got.aligned.values[:, :200], hand_log_tpm(genes)[:, :200], rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(got.aligned.values, plain.aligned.values)
    pd.testing.assert_frame_equal(got.other_genes, plain.other_genes)
    assert not any(c.startswith("__") for c in got.other_genes.columns)
    qc = got.qc
    assert qc.n_genes_read == 201 and qc.counter_labels == tuple(HTSEQ)
    np.testing.assert_array_equal(qc.per_sample["library_size"], genes.sum(axis=0).to_numpy())
    np.testing.assert_array_equal(qc.per_sample["detected_genes"], plain.qc.per_sample["detected_genes"])
    note = next(n for n in qc.notes if n.startswith("Left out"))
    assert note.startswith("Left out 5 rows that are counters of the read-counting tool (HTSeq-count), not genes")
    assert "'__no_feature'" in note and "TPM" in note and "library size" in note
    assert not any("__" in label for label in qc.unmapped_examples)
    assert not any(n.startswith("Left out") for n in plain.qc.notes)


def test_star_counter_columns_are_left_out(genes: pd.DataFrame, tmp_path: Path) -> None:
    counters = pd.DataFrame(np.full((len(STAR), genes.shape[1]), 3_000_000), index=pd.Index(STAR, name="gene"),
                            columns=genes.columns)
    samples_as_rows = pd.concat([counters, genes]).T  # STAR writes them first
    samples_as_rows.index.name = "sample"
    samples_as_rows.to_csv(tmp_path / "star.csv")
    genes.T.rename_axis("sample").to_csv(tmp_path / "genes.csv")
    got, plain = _prepare(tmp_path / "star.csv"), _prepare(tmp_path / "genes.csv")

    assert got.guesses.orientation.value == "genes_in_columns"
    np.testing.assert_allclose(got.aligned.values[:, :200], hand_log_tpm(genes)[:, :200], rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(got.aligned.values, plain.aligned.values)
    np.testing.assert_array_equal(got.qc.per_sample["library_size"], genes.sum(axis=0).to_numpy())
    assert got.qc.counter_labels == tuple(STAR)
    assert any(n.startswith("Left out 4 columns that are counters of the read-counting tool (STAR)")
               and "'N_unmapped'" in n for n in got.qc.notes)
