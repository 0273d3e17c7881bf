"""A background run with progress, time left and cancellation.

A model run takes minutes; the app starts it as a :class:`Job` and polls ``status``,
``progress`` and ``eta_seconds`` while the page stays responsive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Generic, Literal, TypeVar

from bulkformer.errors import BulkFormerError
from bulkformer.fetch.zenodo import DownloadCancelled
from bulkformer.model._inference import InferenceCancelled

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
#: How many recent batches the range of the time left is read from.
PACE_WINDOW = 20


class Job(Generic[T]):
    """Runs ``fn(progress, should_stop)`` in a daemon thread and reports how it is going.

    ``fn`` calls ``progress(done, total)`` as it goes and should check ``should_stop()``
    between steps, raising :class:`~bulkformer.model._inference.InferenceCancelled` (or, for a
    download, :class:`~bulkformer.fetch.zenodo.DownloadCancelled`) when it is True.
    """

    def __init__(self, fn: Callable[[ProgressFn, StopFn], T]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._status: Status = "pending"
        self._progress = (0, 0)
        self._started_at: float | None = None
        #: (samples done, time) of every report that moved on, from the first with samples done:
        #: the first one, how many came after it, and the pace of each batch.
        self._marks: list[tuple[int, float]] = []
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
        first = self._marks[0] if self._marks else None
        if (self._status != "running" or first is None or total <= 0 or done <= first[0]
                or len(self._marks) - 1 < ETA_AFTER_REPORTS):
            return None
        per_step = (time.monotonic() - first[1]) / (done - first[0])
        return max(0.0, per_step * (total - done))

    @property
    def eta_range(self) -> tuple[float, float] | None:
        """(shortest, longest) plausible seconds left: the time left at the pace of the faster and
        of the slower quarter of the recent batches (at most :data:`PACE_WINDOW`), around
        :attr:`eta_seconds`. A machine whose load changes mid-run widens it; ``None`` as for
        :attr:`eta_seconds`."""
        central = self.eta_seconds
        if central is None:
            return None
        done, total = self._progress
        marks = self._marks[-(PACE_WINDOW + 1):]
        paces = sorted((t1 - t0) / (d1 - d0) for (d0, t0), (d1, t1) in pairwise(marks))  # done only rises
        if not paces:
            return central, central
        low, high = paces[len(paces) // 4], paces[(3 * len(paces)) // 4 if len(paces) > 1 else 0]
        left = total - done
        return min(central, low * left), max(central, high * left)

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
        if done > 0 and (not self._marks or done > self._marks[-1][0]):
            self._marks.append((int(done), time.monotonic()))
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
