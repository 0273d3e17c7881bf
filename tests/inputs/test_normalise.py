"""Value-type detection and the log1p TPM formulas, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bulkformer.errors import InputError
from bulkformer.inputs._normalise import check_values, detect_value_type, log1p_tpm


def test_counts_to_tpm_by_hand() -> None:
    # rates c/L_kb: 10/1 = 10, 20/2 = 10, 30/0.5 = 60; total 80
    counts = np.array([[10, 20, 30]], dtype=np.float32)
    lengths = np.array([1000.0, 2000.0, 500.0])
    expected = np.log1p([[125_000.0, 125_000.0, 750_000.0]])
    result = log1p_tpm(counts, value_type="counts", lengths_bp=lengths)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_unknown_lengths_are_one_kb() -> None:
    counts = np.array([[10, 20, 30]], dtype=np.float32)
    # NaN and 0 lengths mean "unknown" → 1 kb, as no lengths at all
    same = log1p_tpm(counts, value_type="counts", lengths_bp=np.array([np.nan, 0.0, 1000.0]))
    np.testing.assert_allclose(same, log1p_tpm(counts, value_type="counts"))
    np.testing.assert_allclose(same, np.log1p([[1e6 / 6, 2e6 / 6, 3e6 / 6]]), rtol=1e-6)


def test_fpkm_tpm_and_logs() -> None:
    fpkm = np.array([[1.0, 3.0], [2.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(log1p_tpm(fpkm, value_type="fpkm"),
                               np.log1p([[250_000.0, 750_000.0], [500_000.0, 500_000.0]]), rtol=1e-6)
    tpm = np.array([[5.0, 999_995.0]], dtype=np.float32)
    np.testing.assert_allclose(log1p_tpm(tpm, value_type="tpm"), np.log1p(tpm))  # not rescaled
    logged = np.log1p(tpm)
    assert np.array_equal(log1p_tpm(logged, value_type="log1p_tpm"), logged)  # passes through
    np.testing.assert_allclose(log1p_tpm(np.log2(tpm + 1), value_type="log2_tpm"), logged, rtol=1e-6)
    with pytest.raises(InputError, match="Unknown value type"):
        log1p_tpm(tpm, value_type="rpkm")


def test_detect_value_type() -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(20, size=(4, 500)).astype(np.float32)
    assert detect_value_type(counts).value == "counts"
    tpm = counts / counts.sum(axis=1, keepdims=True) * 1e6
    guess = detect_value_type(tpm)
    assert guess.value == "tpm" and "1,000,000" in guess.reason
    assert detect_value_type(np.log1p(tpm)).value == "log1p_tpm"
    assert detect_value_type(np.log2(tpm + 1)).value == "log2_tpm"
    fpkm = tpm / rng.uniform(0.2, 3, size=(4, 1))  # totals vary from sample to sample
    assert detect_value_type(fpkm).value == "fpkm"
    estimated = counts * 1000 + 0.5  # RSEM-like fractional counts, millions per sample
    assert detect_value_type(estimated).value == "counts"


def test_check_values() -> None:
    check_values(np.ones((2, 3)), sample_ids=["a", "b"], gene_labels=["x", "y", "z"])
    with pytest.raises(InputError, match="Negative value -1 for gene 'y' in sample 'b'"):
        check_values(np.array([[1, 2, 3], [1, -1, 3]], dtype=float), sample_ids=["a", "b"],
                     gene_labels=["x", "y", "z"])
    with pytest.raises(InputError, match="Value 1e\\+20 for gene 'z' in sample 'a' is larger"):
        check_values(np.array([[1, 2, 1e20]]), sample_ids=["a"], gene_labels=["x", "y", "z"])
    with pytest.raises(InputError, match="'b' have only zeros"):
        check_values(np.array([[1, 2, 3], [0, 0, 0]], dtype=float), sample_ids=["a", "b"],
                     gene_labels=["x", "y", "z"])


@settings(max_examples=40, deadline=None)
@given(values=arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 8)),
                     elements=st.floats(0, 1e7, width=32) | st.floats(0, 2.0**127, width=32)),
       lengths=st.none() | arrays(np.float64, 8, elements=st.floats(-1, 1e5) | st.just(np.nan)))
def test_random_values_give_finite_log_tpm(values: np.ndarray, lengths: np.ndarray | None) -> None:
    names = [str(i) for i in range(values.shape[0])], [str(i) for i in range(values.shape[1])]
    try:
        check_values(values, sample_ids=names[0], gene_labels=names[1])
        guess = detect_value_type(values)
        out = log1p_tpm(values, value_type=guess.value,
                        lengths_bp=None if lengths is None else lengths[: values.shape[1]])
    except InputError:
        return
    assert out.shape == values.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()
    if guess.value == "counts":  # TPM sums to a million per sample
        np.testing.assert_allclose(np.expm1(out.astype(np.float64)).sum(axis=1), 1e6, rtol=1e-3)


def test_a_chosen_value_type_is_checked_against_the_values() -> None:
    from bulkformer.inputs._normalise import value_type_warning

    # two samples of raw counts, 20 and 10 million reads, by hand
    counts = np.zeros((2, 2000), dtype=np.float32)
    counts[0, :] = 10_000.0
    counts[1, :] = 5_000.0
    tpm = counts / counts.sum(axis=1, keepdims=True) * 1e6  # 500 per gene, 10⁶ per sample
    said_tpm = value_type_warning(counts, "tpm")
    assert "whole number" in said_tpm and "add up to 15,000,000 (median)" in said_tpm
    fractional_tpm = tpm.copy()
    fractional_tpm[:, 0] += 0.5
    fractional_tpm[:, 1] -= 0.5  # still 10⁶ per sample
    assert "adds up to about 1,000,000, as TPM do" in value_type_warning(fractional_tpm, "counts")
    logged = np.log1p(tpm + np.linspace(0, 1, 2000, dtype=np.float32))
    assert "already logged" in value_type_warning(logged, "tpm")
    assert "already logged" in value_type_warning(logged, "fpkm")
    # log1p(TPM) is at most log1p(10⁶) = 13.8; log2(TPM + 1) at most 19.9
    too_big = value_type_warning(counts, "log1p_tpm")
    assert "10,000" in too_big and "13.8" in too_big and "whole number" in too_big
    assert "19.9" in value_type_warning(np.full((1, 3), 25.5, dtype=np.float32), "log2_tpm")
    # choices that fit the values: no warning
    assert value_type_warning(counts, "counts") == ""
    assert value_type_warning(tpm + 0.5, "tpm") == ""
    assert value_type_warning(logged, "log1p_tpm") == ""
    assert value_type_warning(counts, "auto") == ""


def test_a_log_value_type_beyond_any_log_of_tpm_is_refused() -> None:
    from bulkformer.inputs._normalise import check_value_type

    counts = np.array([[0, 7, 1024, 40_000]], dtype=np.float32)
    # undone, 2^40000 overflows: counts called log2(TPM + 1) would reach the model as inf
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp2(counts.astype(np.float64))).all()
    for chosen, limit in (("log2_tpm", "20.0"), ("log1p_tpm", "13.9")):
        with pytest.raises(InputError, match=f"largest is 40,000.*at most {limit}") as err:
            check_value_type(counts, value_type=chosen)
        assert "raw counts" in err.value.hint
    # the largest possible logs (a gene with all 10⁶ TPM) pass, as do counts called counts
    check_value_type(np.array([[np.log1p(1e6), 0]], dtype=np.float32), value_type="log1p_tpm")
    check_value_type(np.array([[np.log2(1e6 + 1), 0]], dtype=np.float32), value_type="log2_tpm")
    check_value_type(counts, value_type="counts")


def test_prepare_refuses_counts_called_logs() -> None:
    from bulkformer import prepare

    table = b"gene,S1,S2\nTP53,10,2000\nACTB,5000,7\nGAPDH,300,40\n"
    with pytest.raises(InputError, match="cannot be log2"):
        prepare(table, filename="c.csv", gene_order=("ENSG00000141510",), value_type="log2_tpm")
