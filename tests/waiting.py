"""How long tests wait for something to happen: generously, since they wait on events (a job
finished, a page drawn), not on a stopwatch; a slow or loaded machine must never fail them
(issue #28: one run failed on a `job.wait(240)` under load). A test that hangs for real still
ends, after half an hour."""

from __future__ import annotations

import threading

#: Seconds any wait for an event may take before the test fails.
EVENT_WAIT_S = 1800.0

#: The names of the app's background threads that may run torch or numba code (see
#: bulkformer.jobs.Job and ui.session.start_warm_up).
_WORKER_THREADS = ("bulkformer-job", "bulkformer-warmup")


def join_background_work(timeout: float = EVENT_WAIT_S) -> list[str]:
    """Wait for the app's background jobs and warm-up to end; → the names of those still
    running after ``timeout``. A daemon thread still inside torch when the interpreter exits
    ends the process with "terminate called without an active exception"."""
    for thread in [t for t in threading.enumerate() if t.name in _WORKER_THREADS]:
        thread.join(timeout)
    return [t.name for t in threading.enumerate() if t.name in _WORKER_THREADS and t.is_alive()]
