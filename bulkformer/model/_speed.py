"""Expected inference time per sample, read from the recorded benchmark results.

The app's Model and Embeddings pages quote it; the numbers come from
``benchmarks/bench_inference.py`` runs recorded in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bulkformer import paths


def expected_time_per_sample(model_name: str, device_type: str, *, results_file: Path | None = None) -> str | None:
    """The "time per sample" for this model and device from ``benchmarks/RESULTS.md``, if listed.

    The file is filled in by the benchmark runs; any Markdown table whose header has a column
    mentioning "per sample" is read, and the row naming this model (and device, if a column
    says so) gives the answer. Returns ``None`` when the file, table or row is absent.
    """
    path = results_file or (paths.PROJECT_ROOT / "benchmarks" / "RESULTS.md")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for header, rows in _markdown_tables(text):
        lower = [h.lower() for h in header]
        time_col = next((i for i, h in enumerate(lower) if "per sample" in h or "/sample" in h
                         or "per-sample" in h), None)
        if time_col is None:
            continue
        model_col = next((i for i, h in enumerate(lower) if h in ("model", "checkpoint", "size", "name")), 0)
        device_col = next((i for i, h in enumerate(lower) if "device" in h or h in ("gpu", "hardware")), None)
        unit = header[time_col]
        for row in rows:
            if len(row) <= max(time_col, model_col):
                continue
            if row[model_col].strip().strip("`*").lower() != model_name.lower():
                continue
            if device_col is not None and len(row) > device_col:
                dev = row[device_col].lower()
                if device_type == "cpu" and "cpu" not in dev:
                    continue
                if device_type == "cuda" and "cpu" in dev:
                    continue
            value = row[time_col].strip()
            if value:
                where = f" on {row[device_col].strip()}" if device_col is not None and len(row) > device_col else ""
                return f"{value} ({unit}{where}, from benchmarks/RESULTS.md)"
    return None


def _markdown_tables(text: str) -> Iterator[tuple[list[str], list[list[str]]]]:
    lines = [ln.strip() for ln in text.splitlines()]
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.fullmatch(r"\|?\s*:?-{2,}.*", lines[i + 1]):
            header = _cells(lines[i])
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(_cells(lines[j]))
                j += 1
            yield header, rows
            i = j
        else:
            i += 1


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]
