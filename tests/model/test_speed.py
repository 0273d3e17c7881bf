"""The expected time per sample comes from the table shipped with the package."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from bulkformer import paths
from bulkformer.model._speed import TIME_TABLE, expected_time_per_sample


def test_the_row_for_model_and_device_is_quoted(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    assert expected_time_per_sample("147M", "cpu", table=table) is None  # no table: no figure
    table.write_text("model,device,seconds_per_sample,machine,date,source\n"
                     "147M,cuda,0.05,NVIDIA H100,2026-11-24,x\n147M,cpu,4.1,CPU (2 cores),2026-11-25,x\n")
    assert expected_time_per_sample("147M", "cuda", table=table) == "0.05 s (NVIDIA H100, measured 2026-11-24)"
    assert expected_time_per_sample("147m", "CPU", table=table) == "4.1 s (CPU (2 cores), measured 2026-11-25)"
    assert expected_time_per_sample("37M", "cpu", table=table) is None


def test_the_shipped_table_agrees_with_the_recorded_benchmark() -> None:
    """Each shipped figure is the one benchmarks/RESULTS.md records for that model (when the
    checkout has it): the table is a copy of measurements, not a second source of numbers."""
    with (paths.ASSETS_DIR / TIME_TABLE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["model"] for r in rows} >= {"demo", "147M"}
    results = paths.PROJECT_ROOT / "benchmarks" / "RESULTS.md"
    if not results.is_file():
        return
    text = results.read_text()
    for row in rows:
        line = re.search(rf"^\| {re.escape(row['model'])} \| CPU[^|]*\| ([0-9.]+) \|", text, re.M)
        assert line is not None and line.group(1) == row["seconds_per_sample"], row
