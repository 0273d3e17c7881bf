"""What the numbers are (counts, TPM, FPKM or already log), and turning them into log1p TPM.

BulkFormer was trained on ``log1p(TPM)``, with TPM computed from counts as upstream does:
``TPM_i = (c_i / L_i) / Σ_j (c_j / L_j) · 10⁶`` with gene lengths ``L`` in kb over *all* genes
of the table, and 1 kb where a gene's length is unknown. Detection is a guess with a reason;
the caller can always override it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bulkformer.choices import VALUE_TYPE
from bulkformer.errors import InputError
from bulkformer.io import Guess

VALUE_TYPES = VALUE_TYPE.names
"""The value types a table may be declared as (their one list: :data:`bulkformer.choices.VALUE_TYPE`)."""
#: Length used for a gene whose length is unknown, as upstream: 1 kb.
DEFAULT_LENGTH_BP = 1000.0

_MAX_VALUE = 1e15  # above any read count; keeps float32 arithmetic finite
_TPM_TOTAL_MAX = 1.05e6  # TPM add up to 10⁶; a little more for rounding in exported files


def _log_ceiling(value_type: str, tpm: float = 1e6) -> float:
    """The largest value a log of TPM can take: one gene holding ``tpm`` (all of a sample's 10⁶)."""
    return float(np.log1p(tpm) if value_type == "log1p_tpm" else np.log2(tpm + 1))


def _sums_like_tpm(totals: np.ndarray) -> bool:
    """Per-sample totals steady near 10⁶ (or a steady share of it, for a gene subset), as TPM have."""
    low, high = float(totals.min()), float(totals.max())
    return high <= _TPM_TOTAL_MAX and low >= 0.1e6 and high / low <= 1.1


_MAX_LOG1P = _log_ceiling("log1p_tpm")  # 13.8: the largest possible log1p(TPM)
_MAX_LOG2 = _log_ceiling("log2_tpm")  # 19.9: the largest possible log2(TPM + 1)
_ROWS_CHECKED = 256  # samples looked at for the whole-number and log tests


def check_values(values: np.ndarray, *, sample_ids: Sequence[str],
                 gene_labels: Sequence[str]) -> None:
    """Refuse negative values (no input BulkFormer takes has them), absurdly large ones
    (beyond any sequencing depth; they would overflow float32 arithmetic) and samples that
    are all zero, naming the first offender."""
    lowest, highest = values.min(axis=1), values.max(axis=1)  # no full-size temporaries
    if (lowest < 0).any():
        s = int(np.argmax(lowest < 0))
        g = int(np.argmax(values[s] < 0))
        raise InputError(
            f"Negative value {values[s, g]:g} for gene {gene_labels[g]!r} in sample "
            f"{sample_ids[s]!r}.",
            hint="BulkFormer needs raw counts, TPM, FPKM or log1p(TPM), which are never "
                 "negative; log-ratios, z-scores or batch-corrected values cannot be used.")
    if (highest > _MAX_VALUE).any():
        s = int(np.argmax(highest > _MAX_VALUE))
        g = int(np.argmax(values[s] > _MAX_VALUE))
        raise InputError(
            f"Value {values[s, g]:g} for gene {gene_labels[g]!r} in sample {sample_ids[s]!r} "
            f"is larger than any expression value can be.",
            hint="Check the export: the column may hold something other than expression.")
    empty = highest == 0
    if empty.any():
        names = ", ".join(repr(sample_ids[i]) for i in np.flatnonzero(empty)[:5])
        raise InputError(f"Sample(s) {names} have only zeros.",
                         hint="Remove failed samples, or check that they were exported.")


def detect_value_type(values: np.ndarray) -> Guess:
    """Guess counts / TPM / FPKM / log1p_tpm / log2_tpm from ``[n_samples, n_genes]`` values.

    Whole numbers are counts; values no larger than a log of 10⁶ are logs (natural or base
    2, whichever brings the per-sample totals back to at most 10⁶); otherwise the per-sample
    totals decide: a steady 10⁶ (or a steady share of it) is TPM, totals in the millions are
    estimated counts, anything else FPKM.
    """
    head = values[:_ROWS_CHECKED]
    largest = float(values.max())
    if np.array_equal(head, np.round(head)) and largest > 0:
        return Guess("counts", "all values are whole numbers")
    if largest <= _MAX_LOG2:
        return _which_log(head, largest)
    totals = values.sum(axis=1, dtype=np.float64)
    low, high = float(totals.min()), float(totals.max())
    span = f"per-sample totals {low:,.0f} to {high:,.0f}"
    if _sums_like_tpm(totals):
        return Guess("tpm", f"fractional values with steady {span}, as TPM (or CPM) have")
    if np.median(totals) >= 3e6:
        return Guess("counts", f"fractional values with {span}: estimated counts "
                               f"(RSEM, salmon, tximport)")
    return Guess("fpkm", f"fractional values with {span}, not a steady 10⁶: FPKM/RPKM")


def _which_log(values: np.ndarray, largest: float) -> Guess:
    """log1p vs log2(x + 1): undone, TPM add up to at most 10⁶ per sample (less for a gene
    subset); undoing the wrong log gives totals far off (or values impossible for log1p)."""
    as_ln = float(np.median(np.expm1(values, dtype=np.float64).sum(axis=1)))
    as_log2 = float(np.median((np.exp2(values, dtype=np.float64) - 1).sum(axis=1)))
    if largest <= _MAX_LOG1P and as_ln <= _TPM_TOTAL_MAX:
        return Guess("log1p_tpm", f"values up to {largest:.3g} whose expm1 totals "
                                  f"{as_ln:,.0f} per sample (median): log1p(TPM)")
    if as_log2 <= _TPM_TOTAL_MAX:
        return Guess("log2_tpm", f"values up to {largest:.3g} whose 2^x - 1 totals "
                                 f"{as_log2:,.0f} per sample (median): log2(TPM + 1)")
    kind = "log1p_tpm" if largest <= _MAX_LOG1P else "log2_tpm"
    return Guess(kind, f"values up to {largest:.3g} look logged, but undone they do not add up "
                       f"to TPM (totals {min(as_ln, as_log2):,.0f}); check the value type")


def check_value_type(values: np.ndarray, *, value_type: str) -> None:
    """Refuse a value type the values cannot have: a log of TPM is at most the log of 10⁶ (a
    little more for rounding); larger values (counts called logs, say) would overflow when the
    log is undone and feed infinities to the model. Other mismatches only earn a warning."""
    if value_type not in ("log1p_tpm", "log2_tpm") or values.size == 0:
        return
    limit = _log_ceiling(value_type, _TPM_TOTAL_MAX)
    largest = float(values.max())
    if largest > limit:
        words = "log(TPM + 1)" if value_type == "log1p_tpm" else "log2(TPM + 1)"
        raise InputError(
            f"The values cannot be {words}: the largest is {largest:,.6g}, and {words} is at most "
            f"{limit:.1f} (a gene holding all 10⁶ TPM).",
            hint="Choose the value type that matches the file (whole numbers are usually raw "
                 "counts), or leave it on automatic detection.")


def log1p_tpm(values: np.ndarray, *, value_type: str,
              lengths_bp: np.ndarray | None = None) -> np.ndarray:
    """float32 ``log1p(TPM)`` of ``[n_samples, n_genes]`` values of ``value_type``.

    ``lengths_bp`` (counts only): per-gene lengths; NaN, below 1 bp or missing → 1 kb. TPM is taken as is;
    FPKM is rescaled to sum to 10⁶; log1p(TPM) passes through; log2(TPM + 1) is converted.
    """
    if value_type == "log1p_tpm":
        return np.asarray(values, dtype=np.float32)
    if value_type == "log2_tpm":
        return np.log1p(np.exp2(values, dtype=np.float64) - 1.0).astype(np.float32)
    if value_type == "counts":
        lengths = np.full(values.shape[1], DEFAULT_LENGTH_BP) if lengths_bp is None \
            else np.where(np.isfinite(lengths_bp) & (lengths_bp >= 1), lengths_bp, DEFAULT_LENGTH_BP)
        tpm = _per_million(values * (1000.0 / lengths).astype(np.float32))
    elif value_type == "fpkm":
        tpm = _per_million(np.array(values, dtype=np.float32))
    elif value_type == "tpm":
        tpm = np.array(values, dtype=np.float32)
    else:
        raise InputError(f"Unknown value type {value_type!r}.",
                         hint=f"Use one of {', '.join(VALUE_TYPES)}.")
    return np.log1p(tpm, out=tpm)


def _per_million(rate: np.ndarray) -> np.ndarray:
    """Scale each sample (row) to sum to 10⁶, in place; sums taken in float64."""
    totals = rate.sum(axis=1, dtype=np.float64, keepdims=True)
    if not np.all(totals > 0):
        raise InputError("A sample has no expression left after dividing by gene lengths.",
                         hint="Check that the sample has non-zero values.")
    rate *= 1e6 / totals  # scale factors stay float64: tiny totals would overflow float32
    return rate


_VALUE_WORDS = {"counts": "raw read counts", "tpm": "TPM", "fpkm": "FPKM/RPKM",
                "log1p_tpm": "log(TPM + 1)", "log2_tpm": "log2(TPM + 1)"}


def value_type_warning(values: np.ndarray, value_type: str) -> str:
    """A warning in words when the values of ``[n_samples, n_genes]`` contradict the value
    type a user chose, else ``""``; the choice is kept either way (the user may know better).

    Checked: logs no larger than a log of 10⁶ can be; TPM adding up to about 10⁶ per sample;
    counts and TPM/FPKM not looking logged; whole numbers where fractions are expected.
    """
    if value_type not in _VALUE_WORDS or values.size == 0:
        return ""
    head = values[:_ROWS_CHECKED]
    largest = float(values.max())
    whole = bool(np.array_equal(head, np.round(head))) and largest > 0
    totals = values.sum(axis=1, dtype=np.float64)
    median_total = float(np.median(totals))
    chosen = f"You said the values are {_VALUE_WORDS[value_type]}"
    reasons: list[str] = []
    if value_type in ("log1p_tpm", "log2_tpm"):
        limit = _log_ceiling(value_type)
        if largest > limit:
            reasons.append(f"the largest value is {largest:,.6g}, more than {_VALUE_WORDS[value_type]} "
                           f"can be ({limit:.1f}, for a gene holding all 10⁶ TPM)")
        if whole and largest > 1:
            reasons.append("every value is a whole number, as raw read counts are")
    else:
        if largest <= _MAX_LOG2 and not whole:
            reasons.append(f"no value is above {largest:.3g}, as in values that are already logged "
                           f"(unlogged, the most expressed genes reach thousands)")
        if value_type in ("tpm", "fpkm") and whole:
            reasons.append("every value is a whole number, as raw read counts are")
        if value_type == "tpm" and median_total > 2 * _TPM_TOTAL_MAX:
            reasons.append(f"the samples add up to {median_total:,.0f} (median), while TPM add up "
                           f"to 1,000,000 per sample")
        if value_type == "counts" and not whole and largest > _MAX_LOG2:
            if _sums_like_tpm(totals):
                reasons.append(f"the values have fractions and every sample adds up to about "
                               f"{median_total:,.0f}, as TPM do")
    if not reasons:
        return ""
    return (f"{chosen}, but {'; and '.join(reasons)}. If that is not what your file holds, choose "
            f"“Decide for me” or the right type: a wrong type distorts every result.")
