"""The byte and cell budgets: how large a file, and how many cells of a table, are read at once.

Checked from a file's size and metadata before its values are loaded, so an oversized upload is
refused without being read.
"""

from __future__ import annotations

import os

from bulkformer.errors import InputError

#: Default upper bound on a file's size (compressed and decompressed): 2 GiB.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Default upper bound on a table's cells (rows × columns) read at once: 150 million, room for
#: 2,000 samples × 60,000 genes as rows (``prepare`` then peaks at ~2.2 GB; benchmarks/RESULTS.md;
#: with the genes as CSV columns, each costing :data:`ARROW_COLUMN_CELLS`, 1,898 samples).
#: Compressed files can be tiny and still huge once read, so the bound is checked from the
#: file's metadata before its values are loaded.
DEFAULT_MAX_CELLS = 150_000_000
#: Environment variable that overrides :data:`DEFAULT_MAX_CELLS` (for large servers).
MAX_CELLS_ENV = "BULKFORMER_MAX_CELLS"
#: What one row or column label costs, counted in cells: a Python string and its copies while
#: genes are mapped take some 30× the memory and time of a float32 value.
LABEL_CELLS = 32
#: What one column costs Arrow's CSV and Parquet readers, counted in cells: some 9 KB of parser
#: and builder state per column whatever its rows (1 row × 400,000 columns peaks at 3.5 GB;
#: benchmarks/RESULTS.md), about 600 cells at the ~15 bytes a budgeted cell costs ``prepare``.
#: Without it a one-row CSV of 4 million columns passed the budget and died in ``std::bad_alloc``.
ARROW_COLUMN_CELLS = 600


def _too_large(name: str, limit: int, *, decompressed: bool = False) -> InputError:
    what = "decompresses to more than" if decompressed else "is larger than"
    return InputError(f"{name} {what} the {_format_bytes(limit)} limit.",
                      hint="Split the samples over several files, or drop genes you do not need.")


def max_cells() -> int:
    """The cell budget: ``BULKFORMER_MAX_CELLS`` if set (a positive whole number), else
    :data:`DEFAULT_MAX_CELLS`. Read on every call, so a server can change it without a restart."""
    text = os.environ.get(MAX_CELLS_ENV, "").strip().replace("_", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_CELLS


def check_cells(name: str, n_rows: int, n_columns: int, *, at_least: bool = False,
                column_cells: int = LABEL_CELLS) -> None:
    """Refuse a table of ``n_rows × n_columns`` cells over the budget, before it is loaded
    (``at_least``: the rows were counted only until the budget was passed; ``column_cells``:
    what the reader spends on each column besides its values, :data:`ARROW_COLUMN_CELLS` for
    Arrow's readers)."""
    cells = _cells_cost(n_rows, n_columns, column_cells=column_cells)
    _check_budget(name, f"{'at least ' if at_least else ''}{n_rows:,} row{'' if n_rows == 1 else 's'} × "
                        f"{n_columns:,} columns "
                        f"(with their labels, as much as {cells:,} values)", cells)


def _cells_cost(n_rows: int, n_columns: int, *, column_cells: int = LABEL_CELLS) -> int:
    return n_rows * n_columns + LABEL_CELLS * n_rows + max(LABEL_CELLS, column_cells) * n_columns


def _check_budget(name: str, what: str, cells: int) -> None:
    limit = max_cells()
    if cells > limit:
        from bulkformer.cohort._advice import (
            cohort_commands,  # its one wording; imports nothing heavy
        )

        raise InputError(
            f"{name} holds {what}, more than the {limit:,} that are read at once.",
            hint="Split the samples over several files, or keep only the genes the model uses "
                 "(about 20,000 protein-coding genes). A server administrator can raise the limit "
                 f"with the {MAX_CELLS_ENV} environment variable. For a file this large: {cohort_commands(name)}")


def _format_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:g} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.3g} {unit}"
