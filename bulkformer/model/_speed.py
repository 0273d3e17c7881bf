"""Expected inference time per sample, from the measurements shipped with the package.

The app's Model page quotes it. The figures come from ``benchmarks/bench_inference.py`` runs
(recorded in ``benchmarks/RESULTS.md``) and ship as ``assets/speed/time_per_sample.csv``, so an
installed package, which has no ``benchmarks/`` folder, quotes them too.
"""

from __future__ import annotations

import csv
from pathlib import Path

from bulkformer import paths

TIME_TABLE = Path("speed") / "time_per_sample.csv"
"""The shipped table, under the assets folder: model, device, seconds_per_sample, machine, date, source."""


def expected_time_per_sample(model_name: str, device_type: str, *, table: Path | None = None) -> str | None:
    """"0.19 s (CPU (2 cores …), measured 2026-11-24)" for this model and device, if measured.

    ``device_type`` is a torch device type (``"cpu"``, ``"cuda"``); ``None`` when the table
    has no row for the pair (or cannot be read).
    """
    path = table or paths.ASSETS_DIR / TIME_TABLE
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return None
    for row in rows:
        if row.get("model", "").strip().lower() == model_name.lower() and \
                row.get("device", "").strip().lower() == device_type.lower():
            seconds = row.get("seconds_per_sample", "").strip()
            if seconds:
                return f"{seconds} s ({row.get('machine', '').strip()}, measured {row.get('date', '').strip()})"
    return None
