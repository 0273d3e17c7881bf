"""Background work for the app's server: jobs, the result cache and the sweep of old sessions.

``_job`` (:class:`Job`: a run in a thread with progress, time left, cancel), ``_result_cache``
(:class:`ResultCache`: finished results on disk under a content key, size-capped),
``_sweep`` (deleting ended sessions' folders). No Streamlit here; ``ui/`` drives them.
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_job": (
        "Status", "ProgressFn", "StopFn", "GENERIC_ERROR", "OUT_OF_MEMORY", "OUT_OF_MEMORY_HINT",
        "ETA_AFTER_REPORTS", "PACE_WINDOW", "Job",
    ),
    "_result_cache": (
        "content_key", "DEFAULT_CACHE_MAX_BYTES", "CACHE_MAX_BYTES_ENV", "cache_max_bytes",
        "ResultCache",
    ),
    "_sweep": ("SESSION_FOLDER", "sweep_session_folders",),
})
