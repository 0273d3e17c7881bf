"""Keeping a browser's state across a reload of the page.

Reloading the page starts a new Streamlit session. So that a reload does not lose the data,
results and running jobs, each session gives its browser an unguessable token in a cookie
(``SameSite=Strict``, one hour; never in the URL, so it cannot be passed on as a link); the
server keeps, under the token's sha256, references to the session's own state for an hour
after it was last used, and a new session of the same browser takes them over.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.keys import (
    K_BATCH, K_DATASET, K_DEVICE, K_FOLDER, K_JOBS, K_MEMO, K_MODEL_SPEC, K_OVERRIDES, K_PREPARED,
    K_RELOAD_COOKIE, K_RELOAD_TOKEN, K_RESULTS, K_SHEET_ERROR, K_SHEET_FILE_ID, K_SHEET_ID_COLUMN, K_SID, K_TABLE_FILE_ID,
)

log = logging.getLogger("bulkformer.app")

#: How long after its last use a session's state waits for a reload of its browser.
RELOAD_KEEP_S = 3600
RELOAD_COOKIE = "bf_reload"
#: What a reload takes over: the data, the reading choices, results, jobs and settings.
_KEPT_KEYS = (K_SID, K_FOLDER, K_DATASET, K_PREPARED, K_OVERRIDES, K_JOBS, K_RESULTS, K_MEMO, K_MODEL_SPEC,
              K_DEVICE, K_BATCH, K_SHEET_ID_COLUMN, K_SHEET_ERROR, K_TABLE_FILE_ID, K_SHEET_FILE_ID)


class _LiveState:
    """Read access to a session's own (thread-safe) state from elsewhere: always as current as
    the session itself, so a reload finds what the last run left, whichever page it ended on."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def __contains__(self, key: str) -> bool:
        return key in self._state

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._state[key]
        except KeyError:
            return default


@dataclass
class Kept:
    state: _LiveState
    seen: float


@st.cache_resource(show_spinner=False)
def reload_registry() -> tuple[dict[str, Kept], threading.Lock]:
    """sha256(browser token) → the state that browser's last session had; one per server,
    pruned every few minutes (so an abandoned session's folder goes within the hour)."""
    registry: dict[str, Kept] = {}
    lock = threading.Lock()

    def prune_forever() -> None:
        while True:
            time.sleep(RELOAD_KEEP_S / 12)
            prune(registry, lock)

    threading.Thread(target=prune_forever, name="bulkformer-reload-prune", daemon=True).start()
    return registry, lock


def prune(registry: dict[str, Kept], lock: threading.Lock) -> None:
    """Forget states unused for :data:`RELOAD_KEEP_S`; a session still using one keeps it."""
    now = time.time()
    with lock:
        for key in [k for k, kept in registry.items() if now - kept.seen > RELOAD_KEEP_S]:
            del registry[key]


def browser_token() -> str | None:
    """The reload token the browser sent with its cookie (``None`` without one)."""
    try:
        value = st.context.cookies.get(RELOAD_COOKIE)
    except Exception:  # noqa: BLE001 - no browser behind this session (bare mode, tests)
        return None
    return value if isinstance(value, str) and value else None


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def take_over_after_reload() -> None:
    """A new session whose browser holds a known token takes over that browser's state."""
    ss = st.session_state
    token = browser_token()
    registry, lock = reload_registry()
    prune(registry, lock)
    with lock:
        kept = registry.get(_token_key(token)) if token else None
    if kept is not None:
        for key in _KEPT_KEYS:
            if key in kept.state:
                value = kept.state[key]
                ss[key] = dict(value) if isinstance(value, dict) else value  # tabs diverge from here on
        ss[K_RELOAD_TOKEN] = token
        log.info("A reload took over its browser's session state")
    else:
        ss[K_RELOAD_TOKEN] = secrets.token_urlsafe(32)


def keep_for_reload() -> None:
    """Point this browser's token at this session's state, and note that it is in use."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    token = st.session_state.get(K_RELOAD_TOKEN)
    ctx = get_script_run_ctx()
    if not token or ctx is None:
        return
    registry, lock = reload_registry()
    with lock:
        registry[_token_key(token)] = Kept(_LiveState(ctx.session_state), time.time())


def write_reload_cookie() -> None:
    """Once per session: hand the browser its token as a cookie (a script in a 1-pixel iframe
    with same-origin access: ``st.context.cookies`` is read-only)."""
    ss = st.session_state
    token = ss.get(K_RELOAD_TOKEN)
    if not token or ss.get(K_RELOAD_COOKIE) == token:
        return
    ss[K_RELOAD_COOKIE] = token
    st.iframe(
        "<script>"
        f"window.parent.document.cookie = '{RELOAD_COOKIE}={token}; path=/; max-age={RELOAD_KEEP_S}; "
        "SameSite=Strict' + (window.parent.location.protocol === 'https:' ? '; Secure' : '');"
        "</script>",
        height=1,
    )
