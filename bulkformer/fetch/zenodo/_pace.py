"""How long a download may run and how it is stopped: the overall deadline (:class:`Pace`),
progress reports, and the caller's stop request."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from bulkformer.fetch.zenodo._disk import human_size
from bulkformer.errors import DownloadError

ProgressFn = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_done`` includes bytes resumed from disk."""
MIN_RATE_ENV = "BULKFORMER_DOWNLOAD_MIN_RATE"
"""Slowest average transfer (bytes/s) a download may have before its deadline ends it."""


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
        text = os.environ.get(MIN_RATE_ENV, "").strip()
        if not text:
            return cls()
        try:
            rate = float(text)
        except ValueError:
            rate = -1.0
        if not rate > 0:
            raise DownloadError(f"{MIN_RATE_ENV}={text!r} is not a positive number of bytes per second.",
                                hint=f"Set {MIN_RATE_ENV} to e.g. 50000, or unset it.")
        return cls(min_rate=rate)

    def deadline(self, n_bytes: int) -> float:
        """``time.monotonic()`` value by which ``n_bytes`` must have arrived."""
        return time.monotonic() + self.grace_s + max(n_bytes, 0) / self.min_rate


def progress_reporter(progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> ProgressFn:
    """``progress``, raising :class:`DownloadCancelled` first when ``should_stop()`` says so."""

    def report(done: int, total: int) -> None:
        if should_stop is not None and should_stop():
            raise DownloadCancelled("The download was cancelled.",
                                    hint="Start it again to continue: the part fetched so far is kept.")
        if progress is not None:
            progress(done, total)

    return report


def too_slow_error(key: str, done: int, total: int) -> DownloadError:
    """The error for a file that missed its :class:`Pace` deadline (its part is kept)."""
    return DownloadError(
        f"The download of {key} is too slow: {human_size(done)} of {human_size(total)} arrived "
        "before its deadline.",
        hint=f"Run the download again later: it resumes where it stopped. To allow slower "
        f"connections, set {MIN_RATE_ENV} to fewer bytes per second (default 50000).",
    )
