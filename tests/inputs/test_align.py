"""Alignment to a model's gene order: placement, the -10 placeholder and the mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bulkformer.errors import InputError
from bulkformer.inputs._align import AlignedMatrix, align
from bulkformer.model._config import MISSING

ORDER = ("G1", "G2", "G3", "G4", "G5")


@pytest.fixture
def aligned() -> AlignedMatrix:
    # table in its own order, with a gene the model lacks (GX) and two genes missing (G2, G5)
    table = pd.DataFrame([[1.0, 0.0, 3.0, 9.0], [4.0, 5.0, 6.0, 9.0]], index=["a", "b"],
                         columns=["G4", "G1", "G3", "GX"])
    return align(table, gene_order=ORDER)


def test_values_in_model_order(aligned: AlignedMatrix) -> None:
    expected = np.array([[0.0, -10, 3.0, 1.0, -10], [5.0, -10, 6.0, 4.0, -10]], dtype=np.float32)
    np.testing.assert_array_equal(aligned.values, expected)
    assert aligned.values.dtype == np.float32 and MISSING == -10.0
    assert aligned.sample_ids == ("a", "b") and aligned.gene_ids == ORDER


def test_mask(aligned: AlignedMatrix) -> None:
    np.testing.assert_array_equal(aligned.observed, [True, False, True, True, False])
    assert aligned.mask_prob == pytest.approx(2 / 5)
    # a measured zero is observed, not missing
    assert aligned.observed[0] and aligned.values[0, 0] == 0.0


def test_immutable(aligned: AlignedMatrix) -> None:
    with pytest.raises(ValueError):
        aligned.values[0, 0] = 1.0
    with pytest.raises(ValueError):
        aligned.observed[0] = False


def test_subset_samples(aligned: AlignedMatrix) -> None:
    sub = aligned.subset_samples(["b"])
    assert sub.sample_ids == ("b",) and sub.gene_ids == ORDER
    np.testing.assert_array_equal(sub.values, aligned.values[[1]])
    np.testing.assert_array_equal(sub.observed, aligned.observed)
    assert aligned.subset_samples(["b", "a"]).sample_ids == ("b", "a")
    with pytest.raises(InputError, match="Unknown sample"):
        aligned.subset_samples(["c"])


def test_no_overlap_and_bad_orders() -> None:
    none = align(pd.DataFrame([[1.0]], index=["a"], columns=["GX"]), gene_order=ORDER)
    assert none.mask_prob == 1.0 and (none.values == MISSING).all()
    with pytest.raises(ValueError, match="repeats"):
        align(pd.DataFrame([[1.0]], index=["a"], columns=["G1"]), gene_order=["G1", "G1"])
    with pytest.raises(ValueError, match="shape"):
        AlignedMatrix(np.zeros((1, 2), np.float32), ("a",), ("G1",), np.ones(1, bool))
