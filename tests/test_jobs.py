"""Background jobs (progress, cancel, errors) and the on-disk result cache."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from bulkformer.errors import BulkFormerError, InputError
from bulkformer.inference import InferenceCancelled
from bulkformer.jobs import GENERIC_ERROR, Job, ResultCache, content_key
from bulkformer.wrapper import InferenceResult


def test_content_key_is_length_prefixed_and_stable() -> None:
    assert content_key("ab", "c") != content_key("a", "bc")
    assert content_key("ab", b"c") == content_key(b"ab", "c")
    assert len(content_key("x")) == 64 and content_key("x") == content_key("x")
    assert content_key() != content_key("")


def test_eta_leaves_out_the_first_step_once_it_can(monkeypatch) -> None:
    """A first sample that took 40 s (compiling) and then 10 s a sample: 8 left → 80 s, not 160."""
    from bulkformer import jobs

    clock = [0.0]
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    steps = [threading.Event() for _ in range(3)]
    reported = [threading.Event() for _ in range(2)]

    def work(progress, should_stop):
        for (done, at), go, told in zip([(1, 40.0), (3, 60.0)], steps, reported):
            go.wait(5)
            clock[0] = at
            progress(done, 11)
            told.set()
        steps[2].wait(5)

    job = Job(work).start()
    steps[0].set()
    assert reported[0].wait(5)
    assert job.eta_seconds == pytest.approx(40.0 * 10)  # only the first step to go by
    steps[1].set()
    assert reported[1].wait(5)
    assert job.eta_seconds == pytest.approx(10.0 * 8)
    steps[2].set()
    assert job.wait(5)


def test_job_reports_progress_and_result() -> None:
    halfway, go_on = threading.Event(), threading.Event()

    def work(progress, should_stop):
        progress(1, 2)
        halfway.set()
        go_on.wait(5)
        progress(2, 2)
        return "finished"

    job = Job(work)
    assert job.status == "pending" and job.progress == (0, 0) and job.eta_seconds is None
    job.start()
    assert halfway.wait(5)
    assert job.status == "running" and job.progress == (1, 2)
    assert job.eta_seconds is not None and job.eta_seconds >= 0
    go_on.set()
    assert job.wait(5)
    assert job.status == "done" and job.result == "finished" and job.error is None
    assert job.progress == (2, 2)


def test_cancel_stops_a_running_job() -> None:
    started = threading.Event()

    def work(progress, should_stop):
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        raise InferenceCancelled("The run was cancelled.")

    job = Job(work).start()
    assert started.wait(5)
    job.cancel()
    assert job.wait(5)
    assert job.status == "cancelled" and job.result is None


def test_cancel_before_start() -> None:
    ran = []
    job = Job(lambda progress, should_stop: ran.append(1))
    job.cancel()
    job.start()
    assert job.wait(1) and job.status == "cancelled" and ran == []


def test_errors_become_messages(caplog: pytest.LogCaptureFixture) -> None:
    def user_problem(progress, should_stop):
        raise InputError("Sample 'x' has only zeros.", hint="Remove it.")

    job = Job(user_problem).start()
    job.wait(5)
    assert job.status == "failed" and job.error == "Sample 'x' has only zeros.\n→ Remove it."

    def bug(progress, should_stop):
        raise KeyError("internal detail")

    with caplog.at_level(logging.ERROR, logger="bulkformer.jobs"):
        job = Job(bug).start()
        job.wait(5)
    assert job.status == "failed" and job.error == GENERIC_ERROR
    assert "internal detail" not in job.error
    assert "KeyError" in caplog.text  # the traceback goes to the log


def _result(*, with_genes: bool = True) -> InferenceResult:
    rng = np.random.default_rng(0)
    return InferenceResult(
        sample_ids=("s1", "s2", "s3"),
        gene_ids=("ENSG00000000003", "ENSG00000000005"),
        sample_embedding=rng.normal(size=(3, 4)).astype(np.float32),
        imputed=rng.normal(size=(3, 2)).astype(np.float32),
        gene_embedding=rng.normal(size=(3, 1, 4)).astype(np.float32) if with_genes else None,
        gene_embedding_ids=("ENSG00000000005",) if with_genes else (),
        aggregate="median",
    )


def test_cache_round_trip_is_bit_identical(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    key = content_key("input", "model", "options")
    assert cache.get(key) is None
    for result in (_result(), _result(with_genes=False)):
        cache.put(key, result)
        back = cache.get(key)
        assert back is not None
        for name in ("sample_ids", "gene_ids", "gene_embedding_ids", "aggregate"):
            assert getattr(back, name) == getattr(result, name)
        for name in ("sample_embedding", "imputed", "gene_embedding"):
            a, b = getattr(back, name), getattr(result, name)
            assert (a is None and b is None) or (a.dtype == b.dtype and a.tobytes() == b.tobytes())
        cache.clear()
    assert cache.get(key) is None
    assert not any((tmp_path / "cache").iterdir())
    assert not list(tmp_path.rglob("*.pkl"))


@pytest.mark.parametrize("key", ["../escape", "ABC", "", "a" * 8, "0" * 64 + "/x"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    cache = ResultCache(tmp_path)
    with pytest.raises(BulkFormerError):
        cache.put(key, _result())
    with pytest.raises(BulkFormerError):
        cache.get(key)
    assert list(tmp_path.iterdir()) == []


def test_crash_while_writing_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ResultCache(tmp_path)
    key = content_key("x")
    real_save, calls = np.save, []

    def save_then_crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", save_then_crash)
    with pytest.raises(RuntimeError):
        cache.put(key, _result())
    assert cache.get(key) is None
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too
    monkeypatch.setattr(np, "save", real_save)
    cache.put(key, _result())
    assert cache.get(key) is not None


def test_damaged_entry_reads_as_missing(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = content_key("y")
    cache.put(key, _result())
    (tmp_path / key / "imputed.npy").write_bytes(b"not an array")
    assert cache.get(key) is None
