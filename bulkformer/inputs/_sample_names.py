"""Matching a sample sheet's names to a table's sample names when they are written slightly
differently (``Sample_SRR1039508`` in the sheet, ``SRR1039508`` in the table).

Only matches that cannot be wrong are made: after normalising case and separators and
dropping words that every name on one side shares (``Sample_``, ``_counts``), names must be
equal, or one must contain the other with no second candidate on either side. Anything
ambiguous stays unmatched, and the caller reports it as missing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence

#: Names shorter than this (after normalising) are never matched by containment: "1" is in "S10".
MIN_CONTAINED_LENGTH = 3
#: Containment compares every pair; above this many pairs it is skipped (exact stages still run).
MAX_CONTAINMENT_PAIRS = 4_000_000

_SEPARATORS = re.compile(r"[\s_.\-:/|]+")


def near_matches(sheet_names: Sequence[str], sample_names: Sequence[str]) -> dict[str, str]:
    """Sheet name → table sample name for names that differ only in case, separators, a word
    shared by all names of one side, or by one containing the other (uniquely both ways).

    Names that are already equal are not listed (nor used for anything else); each sample
    and each sheet name is matched at most once.
    """
    sheet_all, samples_all = list(dict.fromkeys(sheet_names)), list(dict.fromkeys(sample_names))
    in_sheet, in_table = set(sheet_all), set(samples_all)
    sheet_left = [s for s in sheet_all if s not in in_table]
    samples_left = [s for s in samples_all if s not in in_sheet]
    found: dict[str, str] = {}
    _match_equal_keys(found, sheet_left, samples_left, _plain, _plain)
    _match_equal_keys(found, sheet_left, samples_left, _without_shared_ends(sheet_all),
                      _without_shared_ends(samples_all))
    _match_containment(found, sheet_left, samples_left)
    return found


def _plain(name: str) -> str:
    """Lower case, separators removed."""
    return _SEPARATORS.sub("", name.strip().lower())


def _words(name: str) -> list[str]:
    return [w for w in _SEPARATORS.split(name.strip().lower()) if w]


def _shared_ends(names: Sequence[str]) -> tuple[int, int]:
    """How many leading and trailing words every name (of two words or more) has in common."""
    split = [_words(n) for n in names]
    if len(split) < 2 or any(len(w) < 2 for w in split):
        return 0, 0
    shortest = min(len(w) for w in split)
    lead = 0
    while lead < shortest - 1 and len({tuple(w[: lead + 1]) for w in split}) == 1:
        lead += 1
    trail = 0
    while lead + trail < shortest - 1 and len({tuple(w[len(w) - trail - 1:]) for w in split}) == 1:
        trail += 1
    return lead, trail


def _without_shared_ends(names: Sequence[str]) -> Callable[[str], str]:
    """Key function: :func:`_plain`, less the leading/trailing words all of ``names`` share."""
    lead, trail = _shared_ends(names)

    def key(name: str) -> str:
        words = _words(name)
        return "".join(words[lead: len(words) - trail]) if lead or trail else _plain(name)

    return key


def _match_equal_keys(found: dict[str, str], sheet_left: list[str], samples_left: list[str],
                      key_sheet: Callable[[str], str], key_sample: Callable[[str], str]) -> None:
    """Pair names whose keys are equal and unique on both sides; matched names leave the lists."""
    if not sheet_left or not samples_left:
        return
    by_key_sheet: dict[str, list[str]] = defaultdict(list)
    for s in sheet_left:
        by_key_sheet[key_sheet(s)].append(s)
    by_key_sample: dict[str, list[str]] = defaultdict(list)
    for s in samples_left:
        by_key_sample[key_sample(s)].append(s)
    for key, sheets in by_key_sheet.items():
        samples = by_key_sample.get(key, [])
        if key and len(sheets) == 1 and len(samples) == 1:
            found[sheets[0]] = samples[0]
    _drop_matched(found, sheet_left, samples_left)


def _match_containment(found: dict[str, str], sheet_left: list[str], samples_left: list[str]) -> None:
    """Pair names where one normalised name contains the other and neither has a rival."""
    if not sheet_left or not samples_left or len(sheet_left) * len(samples_left) > MAX_CONTAINMENT_PAIRS:
        return
    sheet_keys = {s: _plain(s) for s in sheet_left}
    sample_keys = {s: _plain(s) for s in samples_left}
    candidates: dict[str, list[str]] = defaultdict(list)
    rivals: dict[str, int] = defaultdict(int)
    for sheet, a in sheet_keys.items():
        for sample, b in sample_keys.items():
            shorter = a if len(a) <= len(b) else b
            if len(shorter) >= MIN_CONTAINED_LENGTH and (a in b or b in a):
                candidates[sheet].append(sample)
                rivals[sample] += 1
    for sheet, samples in candidates.items():
        if len(samples) == 1 and rivals[samples[0]] == 1:
            found[sheet] = samples[0]
    _drop_matched(found, sheet_left, samples_left)


def _drop_matched(found: dict[str, str], sheet_left: list[str], samples_left: list[str]) -> None:
    matched_samples = set(found.values())
    sheet_left[:] = [s for s in sheet_left if s not in found]
    samples_left[:] = [s for s in samples_left if s not in matched_samples]
