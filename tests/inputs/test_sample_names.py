"""Near-identical sample names: matched only where no other reading is possible."""

from __future__ import annotations

from bulkformer.inputs._sample_names import near_matches
from bulkformer.io import read_sample_sheet

AIRWAY = ["SRR1039508", "SRR1039509", "SRR1039512", "SRR1039513"]


def test_prefix_shared_by_every_sheet_name_is_dropped() -> None:
    sheet = [f"Sample_{s}" for s in AIRWAY]
    assert near_matches(sheet, AIRWAY) == dict(zip(sheet, AIRWAY))


def test_case_separators_and_suffixes() -> None:
    sheet = ["srr1039508.counts", "SRR-1039509.counts", "SRR1039512.counts", "SRR1039513.counts"]
    assert near_matches(sheet, AIRWAY) == dict(zip(sheet, AIRWAY))
    # the same on the table's side: its names carry the shared word
    table = [f"{s}_star" for s in AIRWAY]
    assert near_matches(AIRWAY, table) == dict(zip(AIRWAY, table))


def test_unique_containment_only() -> None:
    # GEO-style: accession and run joined; each run is in exactly one sheet name
    sheet = ["GSM1275862_SRR1039508", "GSM1275863_SRR1039509"]
    assert near_matches(sheet, AIRWAY[:2]) == {"GSM1275862_SRR1039508": "SRR1039508",
                                               "GSM1275863_SRR1039509": "SRR1039509"}
    # "ctl" is inside two table names: ambiguous, so not matched; "drug1" is unique
    assert near_matches(["ctl", "drug1"], ["ctl_a", "ctl_b", "xdrug1"]) == {"drug1": "xdrug1"}
    # one table name inside two sheet names: not matched either
    assert near_matches(["liver_rep1x", "liver_rep1y"], ["rep1"]) == {}


def test_short_names_and_exact_names_are_left_alone() -> None:
    # "S1" is inside "S10": two-character names never match by containment
    assert near_matches(["S1"], ["xS1y", "xS10y"]) == {}
    # names already equal are not re-matched, and a sample is matched at most once
    assert near_matches(["SRR1039508", "sample_srr1039508"], ["SRR1039508"]) == {}
    assert near_matches(["a"], ["b"]) == {}


def test_read_sample_sheet_matches_near_identical_names() -> None:
    rows = "\n".join(f"Sample_{s},{t}" for s, t in zip(AIRWAY, ["untrt", "trt", "untrt", "trt"]))
    sheet = read_sample_sheet(f"run,dex\n{rows}\n".encode(), filename="s.csv", sample_ids=AIRWAY)
    assert sheet.id_column.value == "run" and "written slightly differently" in sheet.id_column.reason
    assert list(sheet.table.index) == AIRWAY and list(sheet.table["dex"]) == ["untrt", "trt", "untrt", "trt"]
    assert sheet.missing == () and sheet.unused == ()
    assert sheet.near_matched == tuple((f"Sample_{s}", s) for s in AIRWAY)
