"""How long a download may run and how it is stopped: the overall deadline (:class:`Pace`),
progress reports, and the caller's stop request."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from bulkformer.errors import DownloadError
from bulkformer.fetch.zenodo._disk import human_size

ProgressFn = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_done`` includes bytes resumed from disk."""
MIN_RATE_ENV = "BULKFORMER_DOWNLOAD_MIN_RATE"
"""Slowest average transfer (bytes/s) a download may have before its deadline ends it."""
GRACE_ENV = "BULKFORMER_DOWNLOAD_GRACE_S"
"""Seconds every request may take on top of its bytes at the slowest rate (default 120)."""
LISTING_BUDGET_BYTES = 256 * 1024
"""A record listing's deadline counts this many bytes (listings are a few kB), not the most
that is read of one: a trickled listing once ran for 292 s."""


class DownloadCancelled(DownloadError):
    """The caller asked to stop; the part fetched so far is kept, so the next start resumes."""


@dataclass(frozen=True)
class Pace:
    """The overall deadline of one file: ``grace_s + bytes / min_rate`` seconds.

    A server that sends a byte every minute never trips a per-read timeout; this deadline
    ends it. ``min_rate`` defaults to ``BULKFORMER_DOWNLOAD_MIN_RATE`` or 50 kB/s (a 600 MB
    checkpoint then has 3 h 22 min).
    """

    min_rate: float = 50_000.0
    grace_s: float = 120.0

    @classmethod
    def from_env(cls) -> Pace:
        """``BULKFORMER_DOWNLOAD_MIN_RATE`` and ``BULKFORMER_DOWNLOAD_GRACE_S`` where set."""
        rate = _positive_env(MIN_RATE_ENV, "bytes per second", example="50000")
        grace = _positive_env(GRACE_ENV, "seconds", example="120")
        return cls(min_rate=cls.min_rate if rate is None else rate,
                   grace_s=cls.grace_s if grace is None else grace)

    def deadline(self, n_bytes: int) -> float:
        """``time.monotonic()`` value by which ``n_bytes`` must have arrived. It is a real
        bound: every read waits at most until it (:func:`read_timeout`)."""
        return time.monotonic() + self.grace_s + max(n_bytes, 0) / self.min_rate


def _positive_env(name: str, unit: str, *, example: str) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise DownloadError(f"{name}={text!r} is not a positive number of {unit}.",
                            hint=f"Set {name} to e.g. {example}, or unset it.")
    return value


def read_timeout(timeout: float, deadline: float) -> float:
    """How long the next network wait may block: the per-read ``timeout``, but never past
    ``deadline`` (one stalled read once overshot a deadline by a whole read timeout)."""
    return max(0.01, min(timeout, deadline - time.monotonic()))


def progress_reporter(progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> ProgressFn:
    """``progress``, raising :class:`DownloadCancelled` first when ``should_stop()`` says so."""

    def report(done: int, total: int) -> None:
        if should_stop is not None and should_stop():
            raise DownloadCancelled("The download was cancelled.",
                                    hint="Start it again to continue: the part fetched so far is kept.")
        if progress is not None:
            progress(done, total)

    return report


def too_slow_error(key: str, done: int, total: int, *, batch: str = "") -> DownloadError:
    """The error for a file that missed its :class:`Pace` deadline (its part is kept). It says
    what was SAVED (what the next start resumes from): a client that saves in batches (``batch``
    says how) can have received more than it saved, so "arrived" would mislead."""
    return DownloadError(
        f"The download of {key} is too slow: {human_size(done)} of {human_size(total)} saved "
        f"before its deadline{f' ({batch})' if batch else ''}.",
        hint=f"Run the download again later: it resumes where it stopped. To allow slower "
        f"connections, set {MIN_RATE_ENV} to fewer bytes per second (default 50000) or "
        f"{GRACE_ENV} to more seconds (default 120).",
    )
