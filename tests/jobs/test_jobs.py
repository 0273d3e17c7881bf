"""Background jobs (progress, cancel, errors) and the on-disk result cache."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from bulkformer.errors import BulkFormerError, InputError
from bulkformer.jobs import GENERIC_ERROR, Job, ResultCache, content_key
from bulkformer.model._bulkformer_model import InferenceResult
from bulkformer.model._inference import InferenceCancelled
from tests.waiting import EVENT_WAIT_S


def test_content_key_is_length_prefixed_and_stable() -> None:
    assert content_key("ab", "c") != content_key("a", "bc")
    assert content_key("ab", b"c") == content_key(b"ab", "c")
    assert len(content_key("x")) == 64 and content_key("x") == content_key("x")
    assert content_key() != content_key("")


def test_eta_comes_from_the_runs_own_pace_after_the_first_batches(monkeypatch) -> None:
    """A first sample that took 40 s (compiling), then 10 s a sample: no guess from the first
    batch, nor from one more; after two more, 6 left → 60 s (not 6 × 80/5 = 96 s)."""
    from bulkformer.jobs import _job as jobs

    clock = [0.0]
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    steps = [threading.Event() for _ in range(4)]
    reported = [threading.Event() for _ in range(3)]

    def work(progress, should_stop):
        for (done, at), go, told in zip([(1, 40.0), (3, 60.0), (5, 80.0)], steps, reported):
            go.wait(EVENT_WAIT_S)
            clock[0] = at
            progress(done, 11)
            told.set()
        steps[3].wait(EVENT_WAIT_S)

    job = Job(work).start()
    steps[0].set()
    assert reported[0].wait(EVENT_WAIT_S)
    assert job.eta_seconds is None  # the first batch says nothing about the pace
    steps[1].set()
    assert reported[1].wait(EVENT_WAIT_S)
    assert job.eta_seconds is None  # one batch after it is too few
    steps[2].set()
    assert reported[2].wait(EVENT_WAIT_S)
    assert job.eta_seconds == pytest.approx(10.0 * 6)
    steps[3].set()
    assert job.wait(EVENT_WAIT_S)


def test_job_reports_progress_and_result() -> None:
    halfway, go_on = threading.Event(), threading.Event()

    def work(progress, should_stop):
        progress(1, 2)
        halfway.set()
        go_on.wait(EVENT_WAIT_S)
        progress(2, 2)
        return "finished"

    job = Job(work)
    assert job.status == "pending" and job.progress == (0, 0) and job.eta_seconds is None
    job.start()
    assert halfway.wait(EVENT_WAIT_S)
    assert job.status == "running" and job.progress == (1, 2)
    assert job.eta_seconds is None  # no estimate from the first batch alone
    go_on.set()
    assert job.wait(EVENT_WAIT_S)
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
    assert started.wait(EVENT_WAIT_S)
    job.cancel()
    assert job.wait(EVENT_WAIT_S)
    assert job.status == "cancelled" and job.result is None


def test_a_cancelled_download_ends_as_cancelled_not_failed() -> None:
    from bulkformer.fetch.zenodo import DownloadCancelled

    def work(progress, should_stop):
        raise DownloadCancelled("The download was cancelled.")

    job = Job(work).start()
    assert job.wait(EVENT_WAIT_S)
    assert job.status == "cancelled" and job.error is None


def test_cancel_before_start() -> None:
    ran = []
    job = Job(lambda progress, should_stop: ran.append(1))
    job.cancel()
    job.start()
    assert job.wait(EVENT_WAIT_S) and job.status == "cancelled" and ran == []


def test_errors_become_messages(caplog: pytest.LogCaptureFixture) -> None:
    def user_problem(progress, should_stop):
        raise InputError("Sample 'x' has only zeros.", hint="Remove it.")

    job = Job(user_problem).start()
    job.wait(EVENT_WAIT_S)
    assert job.status == "failed" and job.error == "Sample 'x' has only zeros.\n→ Remove it."

    def bug(progress, should_stop):
        raise KeyError("internal detail")

    with caplog.at_level(logging.ERROR, logger="bulkformer.jobs"):
        job = Job(bug).start()
        job.wait(EVENT_WAIT_S)
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


def _sized_result(n_bytes: int) -> InferenceResult:
    """A result holding exactly ``n_bytes`` of float32 sample embeddings."""
    return InferenceResult(sample_ids=("S1",), gene_ids=("G1",), gene_embedding_ids=(), aggregate="mean",
                           sample_embedding=np.zeros((1, n_bytes // 4), dtype=np.float32), imputed=None,
                           gene_embedding=None)


def test_cache_evicts_the_entries_used_longest_ago(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("BULKFORMER_CACHE_MAX_BYTES", "10_000")
    cache = ResultCache(tmp_path)
    assert cache.max_bytes == 10_000
    keys = [content_key(str(i)) for i in range(4)]
    for age, key in enumerate(keys[:3]):
        cache.put(key, _sized_result(3000))  # each ~3.3 kB on disk with its header and meta.json
        os.utime(tmp_path / key, (1000 + age, 1000 + age))  # stored in this order, seconds apart
    assert cache.get(keys[0]) is not None  # using the oldest makes it the newest
    cache.put(keys[3], _sized_result(3000))  # 4 × 3.3 kB > 10 kB: the least recently used goes
    assert cache.get(keys[1]) is None
    assert all(cache.get(k) is not None for k in (keys[0], keys[2], keys[3]))
    assert cache.size_bytes() <= 10_000
    cache.put(content_key("huge"), _sized_result(20_000))  # bigger than the whole cache: not kept
    assert cache.get(content_key("huge")) is None and cache.get(keys[3]) is not None


def test_session_folders_of_ended_sessions_are_swept(tmp_path: Path) -> None:
    import os

    from bulkformer.jobs import sweep_session_folders

    names = {n: f"{n:032x}" for n in range(1, 6)}
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results").mkdir()
    os.utime(tmp_path / names[4], (0, 0))  # not ours, untouched since 1970: a crashed server's
    (tmp_path / "notes").mkdir()  # not a session folder: never touched
    (tmp_path / ("f" * 32)).write_text("a file with a session-like name")
    deleted = sweep_session_folders(tmp_path, live={names[1], names[3]}, ours={names[1], names[2], names[3]},
                                    now=10_000.0, stale_after_s=3600)
    assert sorted(p.name for p in deleted) == [names[2], names[4]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[1], names[3], names[5], "notes", "f" * 32])
    # names[5] belongs to another server (not ours) and is recent: kept; the live ones too
    assert sweep_session_folders(tmp_path / "absent", live=(), ours=(), now=0.0, stale_after_s=1) == []


def test_the_time_left_is_a_range_that_widens_when_the_pace_changes(monkeypatch) -> None:
    """After the first batch: 10 s, 10 s, then 30 s, 30 s a sample (the machine got busy), 10 left.
    The range runs from the faster quarter's pace to the slower's: 10 × 10 s to 10 × 30 s, with
    the average pace (20 s → 200 s) inside it."""
    from bulkformer.jobs import _job as jobs

    clock = [0.0]
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    reports = [(1, 40.0), (2, 50.0), (3, 60.0), (4, 90.0), (5, 120.0)]
    done_reporting, finish = threading.Event(), threading.Event()

    def work(progress, should_stop):
        for done, at in reports:
            clock[0] = at
            progress(done, 15)
        done_reporting.set()
        finish.wait(EVENT_WAIT_S)

    job = Job(work).start()
    assert done_reporting.wait(EVENT_WAIT_S)
    assert job.eta_seconds == pytest.approx(20.0 * 10)
    assert job.eta_range == pytest.approx((10.0 * 10, 30.0 * 10))
    finish.set()
    assert job.wait(EVENT_WAIT_S)
    assert job.eta_range is None  # finished: nothing left to estimate

