"""Plan → shards → gather against a single-process run of the same table (prepare + model.run):
any split gives the same numbers, a rerun continues, and bad input is refused with nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer import cohort
from bulkformer.errors import BulkFormerError, InputError
from bulkformer.model import BulkFormerModel, RunOptions
from tests.cohort.conftest import cohort_counts

OPTIONS = RunOptions(impute=False, precision="fp32", compile="off", batch_size=32)


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> BulkFormerModel:
    return BulkFormerModel.load(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory: pytest.TempPathFactory, model: BulkFormerModel) -> Path:
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    cohort_counts(90, list(model.gene_ids)).to_csv(path)
    return path


def _reference(model: BulkFormerModel, path: Path, **prepare_options) -> tuple[tuple[str, ...], object]:
    prepared = model.prepare(path, **prepare_options)
    return prepared.aligned.sample_ids, model.run(prepared.aligned.values, prepared.aligned.sample_ids,
                                                  RunOptions.build(OPTIONS, impute=True))


def _run_all(plan, work: Path, model: BulkFormerModel) -> None:
    for shard in range(len(plan.shards)):
        cohort.run_shard(plan, work, shard, model)


def _plan(model, path, **kwargs):
    kwargs.setdefault("options", OPTIONS)
    return cohort.make_plan(path, model=model, model_spec=str(model.source), **kwargs)


def test_any_split_gives_the_single_process_numbers(tmp_path: Path, model, cohort_csv) -> None:
    ids, ref = _reference(model, cohort_csv)
    for chunk, n_shards in ((90, 1), (16, 3), (25, 2)):
        plan = _plan(model, cohort_csv, chunk=chunk, n_shards=n_shards)
        work = tmp_path / f"w{chunk}"
        cohort.write_plan(plan, work)
        _run_all(plan, work, model)
        out = cohort.gather(plan, work, tmp_path / f"emb{chunk}.parquet").output
        got = pd.read_parquet(out)
        assert got.attrs["notes"] == []  # the notes every file carries (none here: not the demo, coverage fine)
        assert tuple(got.index) == ids
        assert np.abs(got.to_numpy() - ref.sample_embedding).max() <= 1e-5


def test_expression_gathered_as_h5ad_equals_the_filled_reference(tmp_path: Path, model, cohort_csv) -> None:
    import anndata

    from bulkformer.export import expression_values

    prepared = model.prepare(cohort_csv)
    ref = model.run(prepared.aligned.values, prepared.aligned.sample_ids, RunOptions.build(OPTIONS, impute=True))
    filled, genes = expression_values(ref, measured_values=prepared.aligned.values, observed=prepared.aligned.observed)
    plan = _plan(model, cohort_csv, options=RunOptions.build(OPTIONS, embed=False, impute=True),
                 output="expression", chunk=20, n_shards=2)
    cohort.write_plan(plan, tmp_path / "w")
    _run_all(plan, tmp_path / "w", model)
    cohort.gather(plan, tmp_path / "w", tmp_path / "x.h5ad")
    adata = anndata.read_h5ad(tmp_path / "x.h5ad")
    assert list(adata.obs_names) == list(prepared.aligned.sample_ids) and list(adata.var_names) == list(genes)
    assert np.abs(np.asarray(adata.X) - filled).max() <= 1e-5


def test_a_block_of_whole_number_tpm_keeps_the_plan_value_type(tmp_path: Path, model) -> None:
    """Detected once: TPM. The second block holds whole numbers (rounded TPM), which detected on
    their own would be counts; the plan's type must be used there too."""
    counts = cohort_counts(40, list(model.gene_ids), seed=3)
    tpm = counts.div(counts.sum(axis=1), axis=0) * 1e6
    tpm.iloc[20:] = tpm.iloc[20:].round()
    path = tmp_path / "tpm.csv"
    tpm.to_csv(path)
    plan = _plan(model, path, chunk=20, n_shards=2)
    assert plan.facts["values"]["value"] == "tpm"
    cohort.write_plan(plan, tmp_path / "w")
    _run_all(plan, tmp_path / "w", model)
    got = pd.read_parquet(cohort.gather(plan, tmp_path / "w", tmp_path / "e.parquet").output)
    _, ref = _reference(model, path, value_type="tpm")
    assert np.abs(got.to_numpy() - ref.sample_embedding).max() <= 1e-5
    whole = tmp_path / "whole.csv"
    tpm.iloc[20:].to_csv(whole)
    _, as_counts = _reference(model, whole)  # detected alone: counts, other numbers
    assert np.abs(got.to_numpy()[20:] - as_counts.sample_embedding).max() > 1e-3


def test_a_stopped_shard_continues_from_the_first_missing_block(tmp_path: Path, model, cohort_csv, monkeypatch) -> None:
    from bulkformer.cohort import _shards

    plan = _plan(model, cohort_csv, chunk=15, n_shards=1)
    work = tmp_path / "w"
    cohort.write_plan(plan, work)
    real = _shards._write_block
    calls = []

    def stop_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_shards, "_write_block", stop_on_third)
    with pytest.raises(KeyboardInterrupt):
        cohort.run_shard(plan, work, 0, model)
    monkeypatch.setattr(_shards, "_write_block", real)
    finished = {b: cohort.part_path(work, b).stat().st_mtime_ns for b in (0, 1)}
    assert cohort.block_record(plan, work, 2) is None
    outcome = cohort.run_shard(plan, work, 0, model)
    assert (outcome.n_blocks_skipped, outcome.n_blocks_run) == (2, 4)
    assert {b: cohort.part_path(work, b).stat().st_mtime_ns for b in (0, 1)} == finished
    assert not list(work.rglob("*.part*"))


def test_a_full_disk_leaves_the_block_unrecorded(tmp_path: Path, model, cohort_csv, monkeypatch) -> None:
    plan = _plan(model, cohort_csv, chunk=30, n_shards=1)
    work = tmp_path / "w"
    cohort.write_plan(plan, work)
    real = pd.DataFrame.to_parquet
    calls = []

    def full_disk(self, path, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a block")
            raise OSError(28, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    with pytest.raises(BulkFormerError, match="No space left") as info:
        cohort.run_shard(plan, work, 0, model)
    assert "disk space" in info.value.hint
    assert cohort.block_record(plan, work, 0) is not None and cohort.block_record(plan, work, 1) is None
    assert not cohort.part_path(work, 1).exists() and not list(work.rglob("*.part*"))
    with pytest.raises(BulkFormerError, match="not finished"):
        cohort.gather(plan, work, tmp_path / "e.parquet")
    assert not (tmp_path / "e.parquet").exists()


def test_changed_input_option_or_model_is_refused(tmp_path: Path, model, cohort_csv) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(cohort_csv.read_bytes())
    plan = _plan(model, path, chunk=45, n_shards=2)
    work = tmp_path / "w"
    cohort.write_plan(plan, work)
    assert cohort.write_plan(_plan(model, path, chunk=45, n_shards=2), work) is False  # the same plan
    other = _plan(model, path, chunk=30, n_shards=2)
    with pytest.raises(BulkFormerError, match="another run") as info:
        cohort.write_plan(other, work)
    assert "--restart" in info.value.hint
    with pytest.raises(BulkFormerError, match="Shard 2 does not exist"):
        cohort.run_shard(plan, work, 2, model)
    demo = BulkFormerModel.load("demo", device="cpu")
    with pytest.raises(BulkFormerError, match="not the plan's"):
        cohort.run_shard(plan, work, 0, demo)
    with path.open("a") as handle:
        handle.write("S99999" + ",1" * len(pd.read_csv(path, nrows=0).columns[1:]) + "\n")
    with pytest.raises(InputError, match="changed since the plan"):
        cohort.run_shard(plan, work, 0, model)
    plan_b = _plan(model, path, chunk=30, n_shards=2)
    assert cohort.write_plan(plan_b, work, restart=True) and cohort.read_plan(work).hash == plan_b.hash


def test_hand_edited_plan_is_refused(tmp_path: Path, model, cohort_csv) -> None:
    plan = _plan(model, cohort_csv, chunk=45)
    cohort.write_plan(plan, tmp_path)
    body = json.loads((tmp_path / "plan.json").read_text())
    body["values"]["value"] = "tpm"
    (tmp_path / "plan.json").write_text(json.dumps(body))
    with pytest.raises(BulkFormerError, match="checksum"):
        cohort.read_plan(tmp_path)


def test_sample_list_and_repeated_ids(tmp_path: Path, model) -> None:
    counts = cohort_counts(12, list(model.gene_ids), seed=5)
    counts.index = ["A", "B", "A", "C", "D", "E", "F", "G", "H", "I", "J", "K"]
    path = tmp_path / "c.csv"
    counts.to_csv(path)
    plan = _plan(model, path)
    assert plan.sample_ids[:4] == ("A", "B", "A-2", "C")
    assert "renamed" in plan.facts["samples"]["notes"][0]
    chosen = _plan(model, path, samples=["K", "C", "B"])
    assert chosen.sample_ids == ("B", "C", "K") and chosen.positions == (1, 3, 11)
    with pytest.raises(InputError, match="not in c.csv"):
        _plan(model, path, samples=["B", "GSM404"])
