"""Keeping a browser's state across a reload of the page.

Reloading the page starts a new Streamlit session. So that a reload does not lose the data,
results and running jobs, each session gives its browser an unguessable token in a cookie
(``SameSite=Strict``; never in the URL, so it cannot be passed on as a link); the server keeps,
under the token's sha256, references to the session's own state for :data:`RELOAD_KEEP_S`
after it was last used, and a new session of the same browser takes them over.

Expiry counts from the last use on both sides: every run marks the state used, and the cookie
is written again (at most every :data:`COOKIE_REFRESH_S`) with a lifetime that outlasts the
server's, so the server's clock alone decides (issue #26: the cookie once died an hour after
the first page, whatever the use).

The cookie is written by a script (``st.context.cookies`` is read-only and Streamlit 1.67 has
no supported way to set a response header under ``streamlit run``), so scripts in the page can
read it. A copied token is therefore made worth little: it is bound to the browser that got it
(its User-Agent and address: from another machine or browser it takes nothing over), and it
is used up by a takeover (the new session gets a new token), so a copy goes stale at the
owner's next reload, and a thief's use ends the owner's (a sign to notice).
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
    K_BATCH,
    K_DATASET,
    K_DEVICE,
    K_FOLDER,
    K_JOBS,
    K_MEMO,
    K_MODEL_SPEC,
    K_OVERRIDES,
    K_PACES,
    K_PREPARED,
    K_RELOAD_COOKIE,
    K_RELOAD_TOKEN,
    K_RESULTS,
    K_SHEET_ERROR,
    K_SHEET_FILE_ID,
    K_SHEET_ID_COLUMN,
    K_SID,
    K_TABLE_FILE_ID,
)

log = logging.getLogger("bulkformer.app")

#: How long after its last use a session's state waits for a reload of its browser.
RELOAD_KEEP_S = 3600
#: The cookie is written again when its last writing is this old (a rerun in between writes
#: nothing); its lifetime is RELOAD_KEEP_S plus this, so it never dies before the server's copy.
COOKIE_REFRESH_S = 300
RELOAD_COOKIE = "bf_reload"


def now() -> float:
    """The clock of every expiry here (one place, so tests can move it)."""
    return time.time()
#: What a reload takes over: the data, the reading choices, results, jobs and settings.
_KEPT_KEYS = (K_SID, K_FOLDER, K_DATASET, K_PREPARED, K_OVERRIDES, K_JOBS, K_RESULTS, K_MEMO, K_MODEL_SPEC,
              K_DEVICE, K_BATCH, K_SHEET_ID_COLUMN, K_SHEET_ERROR, K_TABLE_FILE_ID, K_SHEET_FILE_ID, K_PACES)


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
    """A session's state as kept for a reload: when it was last used, and which browser
    (:func:`browser_tag`) may take it over."""

    state: _LiveState
    seen: float
    browser: str = ""


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
    at = now()
    with lock:
        for key in [k for k, kept in registry.items() if at - kept.seen > RELOAD_KEEP_S]:
            del registry[key]


def browser_token() -> str | None:
    """The reload token the browser sent with its cookie (``None`` without one)."""
    try:
        value = st.context.cookies.get(RELOAD_COOKIE)
    except Exception:  # noqa: BLE001 - no browser behind this session (bare mode, tests)
        return None
    return value if isinstance(value, str) and value else None


def browser_tag() -> str:
    """sha256 of what the browser says it is and where it connects from (User-Agent and IP
    address), so a token copied to another machine or browser takes nothing over. Behind a
    proxy that hides client addresses, the User-Agent alone binds."""
    try:
        agent, address = st.context.headers.get("User-Agent"), st.context.ip_address
    except Exception:  # noqa: BLE001 - no browser behind this session (bare mode, tests)
        agent = address = ""
    agent, address = (v if isinstance(v, str) else "" for v in (agent, address))
    return hashlib.sha256(f"{agent}\n{address}".encode()).hexdigest()


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def take_over_after_reload() -> None:
    """A new session whose browser holds a known token, bound to this browser, takes over that
    browser's state; the token is used up (this session gets a new one)."""
    ss = st.session_state
    token = browser_token()
    registry, lock = reload_registry()
    prune(registry, lock)
    with lock:
        kept = registry.get(_token_key(token)) if token else None
        if kept is not None and kept.browser != browser_tag():
            log.warning("A reload token was presented by another browser or address; refused")
            kept = None
        if kept is not None:
            del registry[_token_key(token)]  # used up: a copy of it is worth nothing from now on
    if kept is not None:
        for key in _KEPT_KEYS:
            if key in kept.state:
                value = kept.state[key]
                ss[key] = dict(value) if isinstance(value, dict) else value  # tabs diverge from here on
        log.info("A reload took over its browser's session state")
    ss[K_RELOAD_TOKEN] = secrets.token_urlsafe(32)


def keep_for_reload() -> None:
    """Point this browser's token at this session's state, and note that it is in use now."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    token = st.session_state.get(K_RELOAD_TOKEN)
    ctx = get_script_run_ctx()
    if not token or ctx is None:
        return
    registry, lock = reload_registry()
    with lock:
        registry[_token_key(token)] = Kept(_LiveState(ctx.session_state), now(), browser_tag())


def write_reload_cookie() -> None:
    """Hand the browser its token as a cookie (a script in a 1-pixel iframe with same-origin
    access: ``st.context.cookies`` is read-only): on a new token, and again whenever the last
    writing is :data:`COOKIE_REFRESH_S` old, so that its life counts from the last use."""
    ss = st.session_state
    token = ss.get(K_RELOAD_TOKEN)
    written = ss.get(K_RELOAD_COOKIE)
    if not token or (isinstance(written, tuple) and written[0] == token
                     and now() - written[1] < COOKIE_REFRESH_S):
        return
    ss[K_RELOAD_COOKIE] = (token, now())
    st.iframe(
        "<script>"
        f"window.parent.document.cookie = '{RELOAD_COOKIE}={token}; path=/; "
        f"max-age={RELOAD_KEEP_S + COOKIE_REFRESH_S}; "
        "SameSite=Strict' + (window.parent.location.protocol === 'https:' ? '; Secure' : '');"
        "</script>",
        height=1,
    )
