"""QC report: per-sample numbers by hand, and each warning."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bulkformer.genes import map_genes
from bulkformer.inputs._align import align
from bulkformer.inputs._qc import QCReport, make_report, robust_z

GENES = ["ENSG00000141510", "ENSG00000075624", "ENSG00000111640", "not_a_gene"]
NO_DUPLICATES = pd.DataFrame({"ensg_id": [], "n_rows": [], "labels": []})


def report(values: np.ndarray, *, value_type: str = "counts", order: list[str] | None = None,
           **kwargs: object) -> QCReport:
    samples = [f"S{i}" for i in range(values.shape[0])]
    mapping = map_genes(GENES)
    table = pd.DataFrame(np.log1p(values[:, :3]), index=samples, columns=GENES[:3])
    aligned = align(table, gene_order=order or GENES[:3])
    return make_report(values, sample_ids=samples, value_type=value_type, mapping=mapping,
                       duplicates=NO_DUPLICATES, aligned=aligned, source_format="csv", **kwargs)


def test_per_sample_numbers() -> None:
    values = np.array([[2e6, 0, 1e6, 5], [4e6, 3e6, 0, 0]])
    qc = report(values)
    ps = qc.per_sample
    assert list(ps.index) == ["S0", "S1"]
    np.testing.assert_array_equal(ps["library_size"], [3_000_005, 7_000_000])
    np.testing.assert_array_equal(ps["detected_genes"], [3, 2])
    np.testing.assert_array_equal(ps["zero_fraction"], [0.25, 0.5])
    np.testing.assert_array_equal(ps["model_genes_detected"], [2, 2])
    assert (qc.n_genes_read, qc.n_genes_mapped, qc.n_genes_unmapped) == (4, 3, 1)
    assert qc.unmapped_examples == ("not_a_gene",) and qc.coverage == 1.0
    assert not qc.warnings and not ps["outlier"].any()
    assert any("outlier checks need at least 5" in n for n in qc.notes)
    assert not qc.outliers_checked  # 2 samples: "none flagged" would mean "not checked"
    lines = qc.summary_lines()
    assert lines[0] == "Read 4 genes × 2 samples (csv, counts)."
    assert any("3 of 3 (100.0%)" in line for line in lines)


def test_library_size_needs_counts() -> None:
    qc = report(np.array([[5e5, 5e5, 0, 0]]), value_type="tpm")
    assert qc.per_sample["library_size"].isna().all() and not qc.warnings


def test_warnings() -> None:
    rng = np.random.default_rng(1)
    values = rng.poisson(5e6, size=(12, 4)).astype(float)
    values[3] = [3e4, 2e4, 1e4, 0]  # a failed library
    unmeasured = [f"ENSG{i:011d}" for i in range(1, 11)]
    qc = report(values, order=[*GENES[:3], *unmeasured], sheet_missing=["S5"], sheet_unused=["X1"])
    text = "\n".join(qc.warnings)
    assert "fewer than 1,000,000 reads (very low depth): 'S3'" in text
    assert "look like outliers" in text and "'S3'" in text
    assert "Low coverage: the table measures only 3 of the model's 13 genes (23.1%, under 25%)" in text
    assert "no row in the sample sheet: 'S5'" in text
    assert any("'X1'" in n for n in qc.notes)
    flagged = qc.per_sample.loc["S3"]
    assert flagged["outlier"] and "very low depth" in flagged["flags"]
    assert flagged["library_size_z"] < -3.5
    assert qc.per_sample["outlier"].sum() == 1
    assert qc.outliers_checked  # 12 samples


def test_robust_z() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD median(|x-3|) = median(2,1,0,1,97) = 1
    np.testing.assert_allclose(robust_z(x), 0.6745 * (x - 3.0))
    assert (robust_z(np.ones(4)) == 0).all()


def test_gene_names_that_excel_turned_into_dates_are_named() -> None:
    labels = [*GENES[:3], "1-Mar", "2-SEP", "Dec-1", "2023-09-02", "9/2/23", "MARCHF1x"]
    mapping = map_genes(labels)
    values = np.full((2, len(labels)), 10.0)
    table = pd.DataFrame(np.log1p(values[:, :3]), index=["S0", "S1"], columns=GENES[:3])
    qc = make_report(values, sample_ids=["S0", "S1"], value_type="tpm", mapping=mapping,
                     duplicates=NO_DUPLICATES, aligned=align(table, gene_order=GENES[:3]), source_format="csv")
    (warning,) = [w for w in qc.warnings if "look like dates" in w]
    assert warning.startswith("5 gene names look like dates ('1-Mar', '2-SEP', 'Dec-1', '2023-09-02', '9/2/23')")
    assert "Ensembl IDs" in warning and "MARCHF1x" not in warning


def test_near_matched_sheet_names_and_value_type_warning_are_reported() -> None:
    qc = report(np.array([[5e5, 5e5, 0, 0]]), value_type="tpm", sheet_near_matched=[("Sample_S0", "S0")],
                value_type_warning="You said the values are TPM, but …")
    assert qc.warnings == ("You said the values are TPM, but …",)
    assert "Matched 1 sample(s) by near-identical names in the sample sheet ('Sample_S0 → S0')" \
        in "\n".join(qc.notes)
    assert qc.sheet_near_matched == (("Sample_S0", "S0"),)
    assert qc.value_type_warning == "You said the values are TPM, but …"


def test_former_ensembl_ids_are_counted() -> None:
    labels = ["ENSG00000108296", "ENSG00000108278", *GENES[:3]]
    values = np.full((2, len(labels)), 10.0)
    table = pd.DataFrame(np.log1p(values[:, 2:]), index=["S0", "S1"], columns=GENES[:3])
    qc = make_report(values, sample_ids=["S0", "S1"], value_type="tpm", mapping=map_genes(labels),
                     duplicates=NO_DUPLICATES, aligned=align(table, gene_order=GENES[:3]), source_format="csv")
    assert any(n.startswith("2 former (GRCh37-era) Ensembl gene IDs were matched") for n in qc.notes)
    assert qc.n_genes_mapped == 5


def _detected_cohort(detected: list[int], n_genes: int = 12_000) -> np.ndarray:
    """Counts whose sample i has exactly ``detected[i]`` genes above zero (equal depth)."""
    values = np.zeros((len(detected), n_genes))
    for i, n in enumerate(detected):
        values[i, :n] = 5e6 / n
    return values


def test_a_near_constant_cohort_flags_no_outlier() -> None:
    """10,080 detected genes against a median of 10,099 (range 10,080–10,101) is noise: a robust z
    on a nearly constant quantity must not flag it (issue #26: a false QC outlier)."""
    detected = [10_099, 10_101, 10_100, 10_098, 10_099, 10_100, 10_080, 10_101, 10_097, 10_099]
    qc = report(_detected_cohort(detected))
    assert abs(qc.per_sample.loc["S6", "detected_genes_z"]) > 3.5  # the z alone would flag it
    assert not qc.per_sample["outlier"].any() and not any("outliers" in w for w in qc.warnings)


def test_a_sample_far_from_the_median_is_still_flagged() -> None:
    detected = [10_099, 10_101, 10_100, 10_098, 10_099, 10_100, 5_000, 10_101, 10_097, 10_099]
    qc = report(_detected_cohort(detected))
    assert list(qc.per_sample.index[qc.per_sample["outlier"]]) == ["S6"]
    assert "outlying detected genes" in qc.per_sample.loc["S6", "flags"]
