"""Reading the expected time per sample from benchmarks/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

from bulkformer.model._speed import expected_time_per_sample


def test_expected_time_is_read_from_the_benchmark_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    assert expected_time_per_sample("147M", "cpu", results_file=results) is None
    results.write_text(
        "# Results\n\nSome text.\n\n| model | device | time per sample (s) |\n|---|---|---|\n"
        "| 147M | NVIDIA H100 | 0.05 |\n| 147M | CPU (2 cores) | 4.1 |\n| demo | CPU (2 cores) | 0.2 |\n"
    )
    assert expected_time_per_sample("147M", "cuda", results_file=results).startswith("0.05 (time per sample (s) on NVIDIA H100")
    assert expected_time_per_sample("147M", "cpu", results_file=results).startswith("4.1")
    assert expected_time_per_sample("37M", "cpu", results_file=results) is None
