"""Background runs with progress and cancellation, and the on-disk cache of their results.

A model run takes minutes; the app starts it as a :class:`Job` and polls ``status``,
``progress`` and ``eta_seconds`` while the page stays responsive. Finished results are stored
in a :class:`ResultCache` under a content key (input, model checksum, options), so running the
same thing twice costs nothing. The cache holds only ``.npy`` arrays (read with
``allow_pickle=False``) and JSON: a cache folder can never make Python run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Generic, Literal, TypeVar

import numpy as np

from bulkformer.download import DownloadCancelled
from bulkformer.errors import BulkFormerError
from bulkformer.inference import InferenceCancelled
from bulkformer.wrapper import InferenceResult

log = logging.getLogger(__name__)

T = TypeVar("T")
Status = Literal["pending", "running", "done", "failed", "cancelled"]
ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]

GENERIC_ERROR = "Something unexpected went wrong during the run; the details were written to the log."
OUT_OF_MEMORY = "The computer ran out of memory during the run."
OUT_OF_MEMORY_HINT = "Use fewer samples at once (a smaller batch size), or a smaller model."
#: Progress reports (batches) after the first one needed before the time left is estimated:
#: the first batch carries one-off costs, and one more batch is a poor guide to the pace.
ETA_AFTER_REPORTS = 2


def content_key(*parts: bytes | str) -> str:
    """sha256 hex over ``parts``, each length-prefixed so ``("ab", "c") != ("a", "bc")``."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class Job(Generic[T]):
    """Runs ``fn(progress, should_stop)`` in a daemon thread and reports how it is going.

    ``fn`` calls ``progress(done, total)`` as it goes and should check ``should_stop()``
    between steps, raising :class:`~bulkformer.inference.InferenceCancelled` (or, for a
    download, :class:`~bulkformer.download.DownloadCancelled`) when it is True.
    """

    def __init__(self, fn: Callable[[ProgressFn, StopFn], T]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._status: Status = "pending"
        self._progress = (0, 0)
        self._started_at: float | None = None
        self._first_report: tuple[int, float] | None = None
        self._reports_since_first = 0
        self._result: T | None = None
        self._error: str | None = None

    def start(self) -> Job[T]:
        """Start the run (once); a job cancelled before it started stays cancelled."""
        with self._lock:
            if self._status != "pending":
                return self
            self._status = "running"
            self._started_at = time.monotonic()
        threading.Thread(target=self._run, name="bulkformer-job", daemon=True).start()
        return self

    def cancel(self) -> None:
        """Ask the run to stop at its next check; a job not yet started is cancelled at once."""
        self._stop.set()
        with self._lock:
            if self._status == "pending":
                self._status = "cancelled"
                self._finished.set()

    @property
    def status(self) -> Status:
        return self._status

    @property
    def progress(self) -> tuple[int, int]:
        """``(done, total)`` as last reported by the run; ``(0, 0)`` before the first report."""
        return self._progress

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left, from the run's own pace; ``None`` until :data:`ETA_AFTER_REPORTS`
        reports came after the first one, and once the job finished.

        The pace is measured from the first report on: the first batch carries one-off costs
        (compiling the model takes ~30 s) that later batches do not repeat.
        """
        done, total = self._progress
        first = self._first_report
        if (self._status != "running" or first is None or total <= 0 or done <= first[0]
                or self._reports_since_first < ETA_AFTER_REPORTS):
            return None
        per_step = (time.monotonic() - first[1]) / (done - first[0])
        return max(0.0, per_step * (total - done))

    @property
    def result(self) -> T | None:
        return self._result

    @property
    def error(self) -> str | None:
        """What went wrong, for the user (no traceback: that goes to the log)."""
        return self._error

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (done, failed or cancelled); False on timeout."""
        return self._finished.wait(timeout)

    def _report(self, done: int, total: int) -> None:
        if self._first_report is None and done > 0:
            self._first_report = (int(done), time.monotonic())
        elif self._first_report is not None and done > self._progress[0]:
            self._reports_since_first += 1
        self._progress = (int(done), int(total))

    def _run(self) -> None:
        try:
            result = self._fn(self._report, self._stop.is_set)
        except (InferenceCancelled, DownloadCancelled):
            self._finish("cancelled")
        except BulkFormerError as exc:
            self._finish("failed", error=str(exc))
        except MemoryError:
            log.exception("Job ran out of memory")
            self._finish("failed", error=str(BulkFormerError(OUT_OF_MEMORY, hint=OUT_OF_MEMORY_HINT)))
        except Exception:  # anything else is a bug: log it in full, show a short message
            log.exception("Job failed")
            self._finish("failed", error=GENERIC_ERROR)
        else:
            self._finish("done", result=result)

    def _finish(self, status: Status, *, result: T | None = None, error: str | None = None) -> None:
        with self._lock:
            self._result, self._error, self._status = result, error, status
        self._finished.set()


_KEY = re.compile(r"[0-9a-f]{16,128}")
#: Default cap on one result cache's size on disk: 2 GiB (a 147M run over 1,000 samples with
#: imputation takes ~80 MB). ``BULKFORMER_CACHE_MAX_BYTES`` overrides it.
DEFAULT_CACHE_MAX_BYTES = 2 * 1024**3
CACHE_MAX_BYTES_ENV = "BULKFORMER_CACHE_MAX_BYTES"
#: A per-session folder's name: 32 hex digits (``uuid4().hex``).
SESSION_FOLDER = re.compile(r"[0-9a-f]{32}")


def cache_max_bytes() -> int:
    """The result-cache cap: ``BULKFORMER_CACHE_MAX_BYTES`` if set (whole bytes), else the default."""
    text = os.environ.get(CACHE_MAX_BYTES_ENV, "").strip().replace("_", "")
    return int(text) if text.isdigit() else DEFAULT_CACHE_MAX_BYTES


def sweep_session_folders(root: Path, *, live: Collection[str], ours: Collection[str], now: float,
                          stale_after_s: float) -> list[Path]:
    """Delete the per-session folders under ``root`` whose session ended; returns them.

    ``ours`` are the folders this server made: each is deleted once no ``live`` session holds
    it. Any other session folder (a crashed server's, or another server's sharing ``root``) is
    deleted only when untouched for ``stale_after_s``. Other files and folders are left alone.
    """
    deleted = []
    for child in root.iterdir() if root.is_dir() else ():
        if not SESSION_FOLDER.fullmatch(child.name) or child.name in live:
            continue
        with contextlib.suppress(OSError):
            if child.is_dir() and (child.name in ours or now - child.stat().st_mtime > stale_after_s):
                shutil.rmtree(child, ignore_errors=True)
                deleted.append(child)
    return deleted
_ARRAYS = ("sample_embedding", "imputed", "gene_embedding")
_META = "meta.json"
_TMP_PREFIX = ".tmp-"
_FORMAT = 1


class ResultCache:
    """:class:`~bulkformer.wrapper.InferenceResult` s on disk, one folder per content key.

    A folder appears only complete: it is written under a temporary name and renamed.
    """

    def __init__(self, directory: Path, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = cache_max_bytes() if max_bytes is None else max_bytes

    def get(self, key: str) -> InferenceResult | None:
        """The stored result, or ``None`` if there is none (or it cannot be read)."""
        folder = self._folder(key)
        try:
            meta = json.loads((folder / _META).read_text())
            with contextlib.suppress(OSError):  # a read-only cache still serves its entries
                os.utime(folder)  # used now: evicted last
            if meta.get("format") != _FORMAT:
                return None
            arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) if name in meta["arrays"] else None
                      for name in _ARRAYS}
            return InferenceResult(
                sample_ids=tuple(meta["sample_ids"]),
                gene_ids=tuple(meta["gene_ids"]),
                gene_embedding_ids=tuple(meta["gene_embedding_ids"]),
                aggregate=str(meta["aggregate"]),
                **arrays,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("Ignoring unreadable cache entry %s", folder, exc_info=True)
            return None

    def put(self, key: str, result: InferenceResult) -> None:
        """Store ``result`` under ``key``; an existing entry for the key is kept as it is. The
        entries used longest ago are deleted until all fit in ``max_bytes``; a result larger
        than that on its own is not stored (it is computed again when asked for)."""
        final = self._folder(key)
        if final.is_dir():
            return
        size = sum(a.nbytes for a in (getattr(result, name) for name in _ARRAYS) if a is not None)
        if size > self.max_bytes:
            log.info("Not caching a %d-byte result: larger than the %d-byte cache", size, self.max_bytes)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.directory))
        try:
            stored = []
            for name in _ARRAYS:
                array = getattr(result, name)
                if array is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
                    stored.append(name)
            meta = {
                "format": _FORMAT,
                "arrays": stored,
                "sample_ids": list(result.sample_ids),
                "gene_ids": list(result.gene_ids),
                "gene_embedding_ids": list(result.gene_embedding_ids),
                "aggregate": result.aggregate,
            }
            (tmp / _META).write_text(json.dumps(meta))
            os.replace(tmp, final)
            self._evict(keep=final)
        except OSError as exc:
            if not final.is_dir():  # else another thread stored the same key first: fine
                raise BulkFormerError(
                    f"Could not store the result in the cache folder {self.directory}: {exc.strerror or exc}.",
                    hint="Check the free disk space, or set BULKFORMER_CACHE_DIR to another folder.",
                ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def size_bytes(self) -> int:
        """Bytes held by the complete entries."""
        return sum(size for _, size in self._entries())

    def _entries(self) -> list[tuple[Path, int]]:
        """Complete entries and their sizes, used longest ago first."""
        found = []
        for child in self.directory.iterdir() if self.directory.is_dir() else ():
            with contextlib.suppress(OSError):  # an entry deleted meanwhile by another thread
                if child.is_dir() and _KEY.fullmatch(child.name):
                    found.append((child.stat().st_mtime, child, sum(f.stat().st_size for f in child.iterdir())))
        return [(path, size) for _, path, size in sorted(found)]

    def _evict(self, *, keep: Path) -> None:
        entries = self._entries()
        total = sum(size for _, size in entries)
        for path, size in entries:
            if total <= self.max_bytes:
                break
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)
                total -= size

    def clear(self) -> None:
        """Delete every entry (and leftovers of interrupted writes); other files are left alone."""
        if not self.directory.is_dir():
            return
        for child in self.directory.iterdir():
            if child.is_dir() and (_KEY.fullmatch(child.name) or child.name.startswith(_TMP_PREFIX)):
                shutil.rmtree(child, ignore_errors=True)

    def _folder(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise BulkFormerError(f"{key!r} is not a cache key.",
                                  hint="Cache keys are lower-case hex digests, as content_key() makes them.")
        return self.directory / key
