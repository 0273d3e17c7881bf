"""How many of a sample's measured genes are hidden: the one rule for training, the benchmark
(:func:`bulkformer.model._training.mask_measured`) and the app's hold-out check
(:func:`bulkformer.analysis._holdout.hide_measured`)."""

from __future__ import annotations

import numpy as np

#: ``fraction × measured`` is rounded to this many decimals before rounding to a whole count, so
#: that binary floating-point noise (``0.35 × 90`` is ``31.4999…``) cannot move a half.
_DECIMALS = 9


def hidden_count(n_measured: np.ndarray | int, fraction: float) -> np.ndarray:
    """``fraction × n_measured`` rounded half up, and at least one where a gene is measured.

    Half up rather than Python's and torch's half-to-even, so that a half always rounds the same
    way, as a user computing "10 % of 25 genes" by hand expects (3, not 2). At least
    one, so that every sample with a measured gene is scored (or trained on) and a small panel
    never silently drops out; a sample with no measured gene hides none. ``fraction`` is taken
    as given (callers check its range).

    Shapes:
        n_measured: ``[samples]`` (or a scalar) → int64 counts of the same shape.
    """
    n = np.asarray(n_measured, dtype=np.int64)
    count = np.floor(np.round(n * float(fraction), _DECIMALS) + 0.5).astype(np.int64)
    if fraction > 0:
        count = np.maximum(count, np.minimum(n, 1))
    return count
