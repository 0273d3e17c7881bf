"""An upload too large for the app is refused with the exact commands that run it (item 6)."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer import io
from bulkformer.cohort import cohort_commands, open_source
from bulkformer.errors import InputError


def test_refusal_over_the_cell_budget_names_the_commands_for_that_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "2000")
    path = tmp_path / "my cohort.csv"
    pd.DataFrame(np.ones((60, 40)), index=[f"S{i}" for i in range(60)],
                 columns=[f"G{i}" for i in range(40)]).to_csv(path)
    with pytest.raises(InputError) as info:
        io.read_table(path)
    hint = info.value.hint
    assert f"bulkformer extract-cohort {shlex.quote('my cohort.csv')} embeddings.parquet" in hint
    assert "bulkformer workflow init cohort_run --input" in hint and "snakemake --profile profiles/slurm" in hint
    assert cohort_commands("my cohort.csv") in hint


def test_a_header_of_too_many_columns_is_refused_before_arrow_reads_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BULKFORMER_MAX_CELLS", "5000")
    path = tmp_path / "wide.csv"
    path.write_text("id," + ",".join(f"ENSG{i:011d}" for i in range(6000)) + "\nS1," + ",".join("1" * 6000) + "\n")
    with pytest.raises(InputError, match="read at once"):
        open_source(path)
