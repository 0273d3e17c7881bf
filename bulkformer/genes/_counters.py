"""Rows of read-counting tools that are counters, not genes.

HTSeq-count ends its table with ``__no_feature``, ``__ambiguous``, ``__too_low_aQual``,
``__not_aligned`` and ``__alignment_not_unique``; STAR's ``ReadsPerGene.out.tab`` starts with
``N_unmapped``, ``N_multimapping``, ``N_noFeature`` and ``N_ambiguous``. Read as genes, they
take a share of every sample's TPM (so every real gene comes out too low) and inflate the
library size with reads that never reached a gene. They are left out where a table is turned
into samples × genes (:func:`bulkformer.genes.orient`) and where a cohort is streamed
(:mod:`bulkformer.cohort`), by this one rule, so both give the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: A counter's label, matched against the whole label (surrounding spaces ignored). HTSeq marks
#: its counters with a leading ``__`` (no gene symbol or ID starts so); a label that also ends in
#: ``__`` (pandas' ``__index_level_0__``) is not one of them. STAR's four are matched exactly.
COUNTER_LABEL = re.compile(r"__[A-Za-z]\w*(?<!__)|N_(?:unmapped|multimapping|noFeature|ambiguous)")


def is_counter_label(label: object) -> bool:
    """Whether ``label`` is a counter of HTSeq-count or STAR rather than a gene."""
    return isinstance(label, str) and COUNTER_LABEL.fullmatch(label.strip()) is not None


def counter_mask(labels: Sequence[object]) -> np.ndarray:
    """Boolean array: ``True`` where the label is a counter (:func:`is_counter_label`)."""
    return np.fromiter((is_counter_label(label) for label in labels), dtype=bool, count=len(labels))


def split_counters(labels: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray | None]:
    """``labels`` split into genes and counters, with the genes' positions among ``labels``
    (``None`` when there is no counter: every position), for a reader to keep its values by."""
    counters = counter_mask(labels)
    if not counters.any():
        return tuple(labels), (), None
    genes = tuple(label for label, c in zip(labels, counters) if not c)
    return genes, tuple(label for label, c in zip(labels, counters) if c), np.flatnonzero(~counters)


def counting_tools(labels: Sequence[str]) -> str:
    """The tool(s) whose counters ``labels`` are, for people to read: ``"HTSeq-count"``,
    ``"STAR"`` or both."""
    stripped = [str(label).strip() for label in labels]
    tools = [name for name, prefix in (("HTSeq-count", "__"), ("STAR", "N_"))
             if any(label.startswith(prefix) for label in stripped)]
    return " and ".join(tools) or "the read-counting tool"
