"""The one rule for how many measured genes are hidden, and both maskers keeping to it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bulkformer.analysis._holdout import hide_measured
from bulkformer.model import MISSING
from bulkformer.model._masking import hidden_count
from bulkformer.model._training import mask_measured


@pytest.mark.parametrize(("n_measured", "fraction", "expected"), [
    (25, 0.1, 3),    # 2.5: half up (half-to-even would give 2)
    (15, 0.1, 2),    # 1.5
    (5, 0.1, 1),     # 0.5
    (4, 0.1, 1),     # 0.4 rounds to 0, but a sample with measured genes hides at least one
    (1, 0.5, 1),
    (0, 0.1, 0),     # nothing measured: nothing to hide
    (30, 0.15, 5),   # 4.5
    (90, 0.35, 32),  # 31.5, which binary floating point computes as 31.4999…
    (37, 0.25, 9),   # 9.25
    (100, 0.15, 15),
])
def test_hidden_count_by_hand(n_measured: int, fraction: float, expected: int) -> None:
    assert int(hidden_count(n_measured, fraction)) == expected
    assert hidden_count(np.array([n_measured, n_measured]), fraction).tolist() == [expected, expected]


def _cohort_measuring(n_measured: list[int], n_genes: int = 40) -> np.ndarray:
    """Row i measures its first ``n_measured[i]`` genes (log1p TPM 1.0 … ), the rest are -10."""
    values = np.full((len(n_measured), n_genes), MISSING, dtype=np.float32)
    for row, n in enumerate(n_measured):
        values[row, :n] = np.arange(1, n + 1, dtype=np.float32)
    return values


MEASURED = [25, 15, 5, 4, 0, 30]
FRACTION = 0.1
EXPECTED = [3, 2, 1, 1, 0, 3]  # by hand: 2.5 → 3, 1.5 → 2, 0.5 → 1, 0.4 → at least 1, none, 3.0


def test_the_training_masker_hides_that_many_per_sample() -> None:
    values = torch.from_numpy(_cohort_measuring(MEASURED))
    masked, hidden = mask_measured(values, FRACTION, torch.Generator().manual_seed(0))
    assert hidden.sum(1).tolist() == EXPECTED
    assert not (hidden & (values == MISSING)).any()
    assert torch.all(masked[hidden] == MISSING)


def test_the_holdout_masker_hides_that_many_per_sample() -> None:
    values = _cohort_measuring(MEASURED)
    holdout = hide_measured(values, np.ones(values.shape[1], dtype=bool), fraction=FRACTION, seed=0)
    assert holdout.hidden.sum(axis=1).tolist() == EXPECTED
    assert not (holdout.hidden & (values == MISSING)).any()
