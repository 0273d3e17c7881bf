"""This session's background jobs: starting, progress panel with Cancel, collecting results,
and the sidebar's one line per running job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from ui.frame import GENERIC_ERROR
from ui.keys import K_JOBS, K_PACES, K_RESULTS
from ui.session import init_session


@dataclass
class JobEntry:
    """A background job of this session: what it computes (``key``) and for whom (``kind``)."""

    kind: str
    key: str
    label: str
    job: Any
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    cancel_requested: bool = False
    starting_note: str = ""


def jobs() -> dict[str, JobEntry]:
    init_session()
    return st.session_state[K_JOBS]


def results() -> dict[str, Any]:
    init_session()
    return st.session_state[K_RESULTS]


def start_job(kind: str, key: str, label: str, fn: Callable[[Callable[[int, int], None], Callable[[], bool]], Any],
              *, starting_note: str = "", **options: Any) -> str:
    """Run ``fn(progress, should_stop)`` in a background thread, remembered under ``kind``.

    Returns ``"running"`` (and starts nothing) when the same run (``key``) is already under
    way, e.g. after a double click; a different run of this kind is cancelled and replaced.
    """
    from bulkformer.jobs import Job

    old = jobs().get(kind)
    if old is not None and old.job.status in ("pending", "running"):
        if old.key == key and not old.cancel_requested:
            return "running"
        old.job.cancel()
    job = Job(fn)
    jobs()[kind] = JobEntry(kind, key, label, job, dict(options), starting_note=starting_note)
    job.start()
    return "started"


def is_running(kind: str) -> bool:
    entry = jobs().get(kind)
    return entry is not None and entry.job.status in ("pending", "running")


def collect(kind: str) -> None:
    """Move a finished job's outcome into the session's results (and say how it ended)."""
    entry = jobs().get(kind)
    if entry is None or entry.job.status in ("pending", "running"):
        return
    del jobs()[kind]
    status = entry.job.status
    if status == "done":
        results()[kind] = entry.job.result
    elif status == "cancelled":
        st.info(f"{entry.label} was cancelled.", icon=":material/cancel:")
    else:  # the job already turned the failure into a message for people (details in the log)
        st.error(f"{entry.label} failed: {entry.job.error or GENERIC_ERROR}", icon=":material/error:")


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def time_left_words(left: float | tuple[float, float] | None) -> str:
    """The run's own estimate of the time left, rounded as people say it: "about 2 minutes left",
    or for a (shortest, longest) range whose ends round apart, "about 2–5 minutes left"."""
    if left is None:
        return "estimating the time left…"
    low, high = left if isinstance(left, tuple) else (left, left)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "estimating the time left…"
    return f"{duration_words((low, high))} left"


def duration_words(seconds: tuple[float, float]) -> str:
    """A (shortest, longest) time in seconds, rounded as people say it: "about 2 minutes",
    "about 2–5 minutes", "less than a minute to about 2 minutes"."""
    low_words, high_words = _rounded(seconds[0]), _rounded(seconds[1])
    if low_words == high_words:
        return _words(low_words)
    if isinstance(low_words, tuple) and isinstance(high_words, tuple):
        return f"about {low_words[0]}–{high_words[0]} minutes"
    return f"{_words(low_words)} to {_words(high_words)}"


def _rounded(seconds: float) -> tuple[int, str] | str:
    """``(n, "minutes")`` for a count of minutes, else the words for under a minute or hours."""
    if seconds < 45:
        return "less than a minute"
    minutes = seconds / 60
    if minutes < 1.5:
        return "about a minute"
    if minutes < 60:
        return round(minutes), "minutes"
    hours, rest = divmod(round(minutes / 10) * 10, 60)
    return f"about {hours} hour{'s' if hours > 1 else ''}" + (f" {rest} minutes" if rest else "")


def _words(rounded: tuple[int, str] | str) -> str:
    return f"about {rounded[0]} {rounded[1]}" if isinstance(rounded, tuple) else rounded


MAX_PACES = 10
"""Paces kept per kind of run and table: the recent runs say how this server goes now."""


def remember_pace(kind: str, table_fp: str, key: str, pace: Any) -> None:
    """Keep the pace measured by this session's finished ``kind`` run ``key`` on table ``table_fp``
    (once per run), for the estimates of the next ones. In this session's own state: how fast a run
    went is nobody else's business, and another user's table says nothing of this one."""
    init_session()
    paces = st.session_state.setdefault(K_PACES, {}).setdefault((kind, table_fp), {})
    if key not in paces:
        paces[key] = pace
        for old in list(paces)[:-MAX_PACES]:
            del paces[old]


def measured_paces(kind: str, table_fp: str) -> list[Any]:
    """The paces this session's finished ``kind`` runs measured on table ``table_fp``, oldest first."""
    init_session()
    return list(st.session_state.get(K_PACES, {}).get((kind, table_fp), {}).values())


def job_panel(kind: str, *, finishing_text: str = "Finishing up…", where: str = "", unit: str = "samples") -> None:
    """A progress bar with ETA and a Cancel button that refreshes itself every second.

    When the job ends the whole page reruns, so the page can :func:`collect` the result.
    """
    if kind not in jobs():
        return

    @st.fragment(run_every=1.0)
    def _panel() -> None:
        entry = jobs().get(kind)
        if entry is None:
            return
        job = entry.job
        if job.status not in ("pending", "running"):
            st.rerun()
            return
        done, total = job.progress or (0, 0)
        fraction = min(1.0, done / total) if total else 0.0
        if entry.cancel_requested:
            text = f"{entry.label}: stopping…"
        elif total and done >= total:
            text = f"{entry.label}: {finishing_text}"
        elif total:
            text = f"{entry.label}: {done:,} of {total:,} {unit} · {time_left_words(job.eta_range)}"
        else:
            text = f"{entry.label}: starting…" + (f" {entry.starting_note}" if entry.starting_note else "")
        with st.container(border=True):
            st.progress(fraction, text=text)
            cols = st.columns([1, 3])
            if cols[0].button("Cancel", key=f"bf_cancel_{kind}{where}", icon=":material/stop_circle:",
                              help="Stop the run. Nothing from it is kept."):
                job.cancel()
                entry.cancel_requested = True
            cols[1].caption(f"Running in the background for {format_seconds(time.time() - entry.started)}. "
                            "You can visit other pages meanwhile.")

    _panel()


def sidebar_jobs() -> None:
    """A one-line note per running job, on every page (and the server's model download)."""
    from bulkformer.fetch._published import FETCHER

    for entry in jobs().values():
        if entry.job.status in ("pending", "running"):
            done, total = entry.job.progress or (0, 0)
            pct = f" ({100 * done // total}%)" if total else ""
            st.sidebar.caption(f":material/hourglass_top: {entry.label}{pct}")
    fetch = FETCHER.current
    if fetch is not None and fetch.job.status in ("pending", "running"):
        done, total = fetch.job.progress
        pct = f" ({100 * done // total}%)" if total else ""
        st.sidebar.caption(f":material/download: Downloading BulkFormer {fetch.name}{pct}")
