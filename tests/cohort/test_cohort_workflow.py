"""The shipped Snakemake workflow, run locally (``snakemake --cores 2``) on 300 samples in 3 uneven
shards, against a single-process run; and the one-process ``extract-cohort`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bulkformer.cli import app
from bulkformer.model import BulkFormerModel, RunOptions
from tests.cohort.conftest import cohort_counts

REFERENCE = RunOptions(impute=False, precision="fp32", compile="off", batch_size=64)


def _reference(model_dir: Path, path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    model = BulkFormerModel.load(str(model_dir), device="cpu")
    prepared = model.prepare(path)
    return prepared.aligned.sample_ids, model.run(prepared.aligned.values, prepared.aligned.sample_ids,
                                                  REFERENCE).sample_embedding


def _snakemake(folder: Path, *targets: str) -> None:
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *targets], check=False, cwd=folder,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_snakemake_workflow_equals_a_single_process_run_and_resumes(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("snakemake")
    model = BulkFormerModel.load(str(tiny_model_dir), device="cpu")
    data = tmp_path / "cohort.parquet"
    cohort_counts(300, list(model.gene_ids), seed=11).to_parquet(data, row_group_size=50)
    folder = tmp_path / "run"
    result = CliRunner().invoke(app, ["workflow", "init", str(folder), "--input", str(data), "--output",
                                      "embeddings.parquet", "--shards", "3", "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    config = (folder / "config.yaml").read_text()
    config = config.replace('chunk: 1000', 'chunk: 64').replace('batch_size: ""', 'batch_size: 64') \
        .replace('device: "auto"', 'device: "cpu"')
    config = config.replace(config.split("bulkformer: ")[1].split("\n")[0], json.dumps(f"{sys.executable} -m bulkformer"))
    (folder / "config.yaml").write_text(config)

    _snakemake(folder, "cohort_work/done/shard-0000.json")  # one shard, then a stop
    plan = json.loads((folder / "cohort_work" / "plan.json").read_text())
    sizes = [plan["blocks"][b - 1][1] - plan["blocks"][a][0] for a, b in plan["shards"]]
    assert sizes == [128, 128, 44]  # 5 blocks of up to 64 samples in 3 uneven shards
    first = sorted((folder / "cohort_work" / "parts").glob("block-00000[01].*"))
    stamps = {p.name: p.stat().st_mtime_ns for p in first}
    assert len(stamps) == 4

    _snakemake(folder)
    assert {p.name: p.stat().st_mtime_ns for p in first} == stamps  # shard 0 not computed again
    got = pd.read_parquet(folder / "embeddings.parquet")
    ids, ref = _reference(tiny_model_dir, data)
    assert tuple(got.index) == ids
    assert np.abs(got.to_numpy() - ref).max() <= 1e-5
    report = (folder / "cohort_work" / "report.md").read_text()
    assert plan["plan_sha256"] in report and "shard 2" in report


def test_extract_cohort_command_continues_after_a_stop(tmp_path: Path, tiny_model_dir: Path) -> None:
    model = BulkFormerModel.load(str(tiny_model_dir), device="cpu")
    data = tmp_path / "cohort.csv"
    cohort_counts(60, list(model.gene_ids), seed=2).to_csv(data)
    out = tmp_path / "emb.csv"
    args = ["extract-cohort", str(data), str(out), "--model", str(tiny_model_dir), "--chunk", "25",
            "--batch-size", "64", "--device", "cpu"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    got = pd.read_csv(out, comment="#", index_col=0)
    ids, ref = _reference(tiny_model_dir, data)
    assert tuple(got.index) == ids and np.abs(got.to_numpy() - ref).max() <= 1e-5
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "3 block(s) were already finished" in again.output
    changed = CliRunner().invoke(app, [*args[:-2], "--chunk", "10"])
    assert changed.exit_code == 1 and "--restart" in changed.output


def test_run_shard_out_of_range_is_a_clear_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    model = BulkFormerModel.load(str(tiny_model_dir), device="cpu")
    data = tmp_path / "cohort.csv"
    cohort_counts(20, list(model.gene_ids)).to_csv(data)
    planned = CliRunner().invoke(app, ["plan", str(data), str(tmp_path / "w"), "--model", str(tiny_model_dir),
                                       "--chunk", "10", "--shards", "2"])
    assert planned.exit_code == 0, planned.output
    result = CliRunner().invoke(app, ["run-shard", str(tmp_path / "w"), "--shard", "5"])
    assert result.exit_code == 1 and "Shard 5 does not exist" in result.output
    result = CliRunner().invoke(app, ["gather", str(tmp_path / "w"), str(tmp_path / "e.parquet")])
    assert result.exit_code == 1 and "not finished" in result.output


def test_workflow_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert CliRunner().invoke(app, ["workflow", "init", str(tmp_path)]).exit_code == 0
    for name in ("Snakefile", "config.yaml", "profiles/local/config.yaml", "profiles/slurm/config.yaml"):
        assert (tmp_path / name).is_file()
    assert "executor: slurm" in (tmp_path / "profiles/slurm/config.yaml").read_text()
    again = CliRunner().invoke(app, ["workflow", "init", str(tmp_path)])
    assert again.exit_code == 1 and "--overwrite" in again.output
