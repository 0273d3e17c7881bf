"""One browser session: its random id, private cache folder, defaults and one-off messages; and
the server's warm-up of the model and map code, in the background once the first page is drawn.

Privacy: uploads live in this session's ``st.session_state`` only; results cached on disk go
to a folder named by a random per-session id (``paths.cache_dir() / <id>``) that a janitor
thread removes within half a minute of the session ending and no reload being able to take it
over any more (and, should the server crash, once a day old).
Nothing derived from a user's data is put into ``st.cache_data``/``st.cache_resource``: the
only shared objects are the loaded model and the reload registry (:mod:`ui.reload`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from bulkformer import paths
from ui.keys import (
    K_BATCH,
    K_DEVICE,
    K_FLASH,
    K_FOLDER,
    K_IMAGE_FORMAT,
    K_JOBS,
    K_MEMO,
    K_MODEL_SPEC,
    K_OVERRIDES,
    K_RESULTS,
    K_SID,
)
from ui.reload import (
    Kept,
    keep_for_reload,
    prune,
    reload_registry,
    take_over_after_reload,
)

log = logging.getLogger("bulkformer.app")

#: Session folders this server did not make (left by a crash) are removed after this long.
CACHE_MAX_AGE_S = 24 * 3600
#: How often the janitor deletes the folders of sessions that ended.
JANITOR_INTERVAL_S = 30


class _SessionFolder:
    """This session's private cache folder; removed when the session's state is dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        make_private(path)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(path), True)

    def remove(self) -> None:
        self._finalizer()


def make_private(folder: Path) -> None:
    """Make ``folder`` readable by this server's user only (0700): a session's uploads and
    results are no one else's business on a shared machine. The cache root is made 0700 when
    it is made here; one that exists is left as it is (it may be a folder an admin chose)."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)  # made earlier, or under a umask that mkdir's mode cannot widen past


@dataclass
class _Owners:
    """Which Streamlit session uses which session folder (one per server), for the janitor."""

    by_session: dict[str, str] = field(default_factory=dict)
    made: set[str] = field(default_factory=set)  # every folder this server made and still has
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(show_spinner=False)
def _folder_owners() -> _Owners:
    """Once per server: the owners table, and the janitor thread that deletes every session
    folder whose session ended (within :data:`JANITOR_INTERVAL_S`), instead of waiting for the
    session's state to be garbage-collected (which Streamlit does only when a later session
    disconnects)."""
    owners = _Owners()
    registry, registry_lock = reload_registry()  # fetched here: the thread has no script context

    def sweep_forever() -> None:
        while True:
            time.sleep(JANITOR_INTERVAL_S)
            try:
                _sweep_session_folders(owners, registry, registry_lock)
            except Exception:  # the janitor must outlive any one failure
                log.exception("Sweeping ended sessions' folders failed")

    threading.Thread(target=sweep_forever, name="bulkformer-janitor", daemon=True).start()
    return owners


def _sweep_session_folders(owners: _Owners, registry: dict[str, Kept], registry_lock: threading.Lock) -> None:
    """Delete the folders no live session holds: a session is live while Streamlit has it
    connected, or while the reload registry keeps its state for a reload of its browser."""
    from streamlit import runtime

    from bulkformer.jobs import sweep_session_folders

    if not runtime.exists():
        return
    server = runtime.get_instance()
    prune(registry, registry_lock)
    with registry_lock:
        live = {kept.state.get(K_SID) for kept in registry.values()}
    with owners.lock:
        for session_id in [s for s in owners.by_session if not server.is_active_session(s)]:
            del owners.by_session[session_id]
        live |= set(owners.by_session.values())
        made = set(owners.made)
    deleted = sweep_session_folders(paths.cache_dir(), live=live, ours=made, now=time.time(),
                                    stale_after_s=CACHE_MAX_AGE_S)
    with owners.lock:
        owners.made -= {p.name for p in deleted}


def _own_folder(folder_id: str) -> None:
    """Record that this Streamlit session uses ``folder_id`` (every run: a reload takes over)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    owners = _folder_owners()
    with owners.lock:
        owners.made.add(folder_id)
        if ctx is not None:
            owners.by_session[ctx.session_id] = folder_id


#: How often the sidebar's line about the warm-up is redrawn while it goes on, in seconds.
WARM_UP_POLL_S = 1.0


@dataclass
class _WarmUp:
    """The server's one background warm-up: what it is doing (in words; ``""`` before it
    starts and once it is done) and an event per stage."""

    step: str = ""
    started: bool = False
    code: threading.Event = field(default_factory=threading.Event)
    maps: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


_WARM_UP = _WarmUp()


def start_warm_up() -> None:
    """Once per server process, in the background, called after a page is drawn so that the
    first page appears without waiting for it: import the model code (torch; every page but
    Home needs it, ~5 s), then make a first UMAP map, which compiles the map code (~15 s, a
    minute on a busy machine or with numba's cache empty) while the user is still uploading
    rather than when they wait for a map."""
    with _WARM_UP.lock:
        if _WARM_UP.started:
            return
        _WARM_UP.started = True
        _WARM_UP.step = "loading the model"
    threading.Thread(target=_warm_up, args=(_WARM_UP,), name="bulkformer-warmup", daemon=True).start()


def _warm_up(state: _WarmUp) -> None:
    """The warm-up's work; a failed stage is only logged (the page that needs it then does it)."""
    try:
        import bulkformer.model._bulkformer_model  # noqa: F401 - imported for its side effect: torch and the model code loaded
    except Exception:
        log.debug("Model code warm-up failed", exc_info=True)
    finally:
        state.code.set()
    state.step = "preparing the sample maps (the first time on this server: up to a minute)"
    try:
        from bulkformer.analysis._projection import project

        project(np.random.default_rng(0).normal(size=(16, 4)), method="umap")
    except Exception:  # the first real map then compiles instead
        log.debug("UMAP warm-up failed", exc_info=True)
    finally:
        state.step = ""
        state.maps.set()


def model_code_ready() -> bool:
    """Whether the warm-up has loaded the model code (else loading a model waits for torch)."""
    return _WARM_UP.code.is_set()


def maps_ready() -> bool:
    """Whether the map code is compiled (else the first map of this server waits for it)."""
    return _WARM_UP.maps.is_set()


def warm_up_status() -> None:
    """The sidebar's line saying what the warm-up is doing, redrawn every second until it is done."""
    if not maps_ready():
        _warm_up_line()


@st.fragment(run_every=WARM_UP_POLL_S)
def _warm_up_line() -> None:
    if _WARM_UP.step:
        st.caption(f":material/hourglass_top: Getting ready in the background: {_WARM_UP.step}…")


def init_session() -> None:
    """Give this browser session its random id, private cache folder and defaults (or, after a
    reload, the state its browser had: :func:`take_over_after_reload`)."""
    ss = st.session_state
    if K_SID not in ss:
        take_over_after_reload()
    if K_SID not in ss:
        ss[K_SID] = uuid.uuid4().hex
    _own_folder(ss[K_SID])  # before the folder exists, so the janitor never sees it unowned
    if K_FOLDER not in ss:
        ss[K_FOLDER] = _SessionFolder(paths.cache_dir() / ss[K_SID])
    for key, default in ((K_JOBS, {}), (K_RESULTS, {}), (K_MEMO, {}), (K_MODEL_SPEC, "demo"),
                         (K_DEVICE, "auto"), (K_BATCH, 0), (K_IMAGE_FORMAT, "png"),
                         (K_OVERRIDES, {"orientation": "auto", "id_type": "auto", "value_type": "auto"})):
        if key not in ss:
            ss[key] = default
    keep_for_reload()


def session_folder() -> Path:
    init_session()
    folder: _SessionFolder = st.session_state[K_FOLDER]
    make_private(folder.path)
    return folder.path


def result_cache() -> Any:
    from bulkformer.jobs import ResultCache

    return ResultCache(session_folder() / "results")


def memo() -> dict[str, Any]:
    """Per-session memo of cheap-to-keep derived objects (clusters, frames), keyed by content."""
    init_session()
    return st.session_state[K_MEMO]


def flash(message: str, kind: str = "success") -> None:
    """Show ``message`` once, on the next page drawn (survives st.switch_page)."""
    st.session_state[K_FLASH] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop(K_FLASH, None)
    if item:
        getattr(st, item[0])(item[1])
