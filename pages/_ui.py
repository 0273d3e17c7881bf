"""Shared widgets and session state for the BulkFormer Studio pages.

Streamlit is imported only here, in ``app.py`` and in the pages: the ``bulkformer`` package
does every piece of reading, model math and exporting, and this module only keeps what one
browser session has done (its upload, its runs, its background jobs) and draws it.

Privacy: uploads live in this session's ``st.session_state`` only; results cached on disk go
to a folder named by a random per-session id (``paths.cache_dir() / <id>``) that a janitor
thread removes within half a minute of the session ending and no reload being able to take it
over any more (and, should the server crash, once a day old).
Nothing derived from a user's data is put into ``st.cache_data``/``st.cache_resource``: the
only shared objects are the loaded model and the reload registry below.

Reloading the page starts a new Streamlit session. So that a reload does not lose the data,
results and running jobs, each session gives its browser an unguessable token in a cookie
(``SameSite=Strict``, one hour; never in the URL, so it cannot be passed on as a link); the
server keeps, under the token's sha256, references to the session's own state for an hour
after it was last used, and a new session of the same browser takes them over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from bulkformer import paths
from bulkformer.errors import BulkFormerError

log = logging.getLogger("bulkformer.app")

APP_TITLE = "BulkFormer Studio"
DEMO_BANNER = (
    "**Demo model trained on simulated data — for trying the app only.** "
    "Get the published weights on the **Model** page (or `bulkformer download model`)."
)
GENERIC_ERROR = (
    "Something unexpected went wrong. Nothing was changed; please try again. "
    "If it happens again, the server log has the details for an administrator."
)
#: Session folders this server did not make (left by a crash) are removed after this long.
CACHE_MAX_AGE_S = 24 * 3600
#: How often the janitor deletes the folders of sessions that ended.
JANITOR_INTERVAL_S = 30

# session_state keys (one place, so pages never disagree)
K_SID = "bf_session_id"
K_FOLDER = "bf_session_folder"
K_DATASET = "bf_dataset"
K_PREPARED = "bf_prepared"
K_OVERRIDES = "bf_overrides"
K_JOBS = "bf_jobs"
K_RESULTS = "bf_results"
K_MEMO = "bf_memo"
K_MODEL_SPEC = "bf_model_spec"
K_DEVICE = "bf_device"
K_BATCH = "bf_batch_size"
K_IMAGE_FORMAT = "bf_image_format"
K_FLASH = "bf_flash"
K_MODEL_LINE = "bf_model_line"
K_SHEET_ID_COLUMN = "bf_sheet_id_column"  # the sample sheet's ID column, when the user chose it
K_SHEET_ERROR = "bf_sheet_error"  # why the sample sheet could not be used (the table still is)
K_RELOAD_TOKEN = "bf_reload_token"  # this browser's token in the reload registry
K_RELOAD_COOKIE = "bf_reload_cookie_written"

PAGES = {
    "home": "pages/home.py",
    "upload": "pages/upload.py",
    "embeddings": "pages/embeddings.py",
    "imputation": "pages/imputation.py",
    "downloads": "pages/downloads.py",
    "model": "pages/model.py",
    "predict": "pages/predict.py",
}


# =============================================================================== session
class _SessionFolder:
    """This session's private cache folder; removed when the session's state is dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(path), True)

    def remove(self) -> None:
        self._finalizer()


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
    registry, registry_lock = _reload_registry()  # fetched here: the thread has no script context

    def sweep_forever() -> None:
        while True:
            time.sleep(JANITOR_INTERVAL_S)
            try:
                _sweep_session_folders(owners, registry, registry_lock)
            except Exception:  # the janitor must outlive any one failure
                log.exception("Sweeping ended sessions' folders failed")

    threading.Thread(target=sweep_forever, name="bulkformer-janitor", daemon=True).start()
    return owners


def _sweep_session_folders(owners: _Owners, registry: dict[str, _Kept], registry_lock: threading.Lock) -> None:
    """Delete the folders no live session holds: a session is live while Streamlit has it
    connected, or while the reload registry keeps its state for a reload of its browser."""
    from streamlit import runtime

    from bulkformer.jobs import sweep_session_folders

    if not runtime.exists():
        return
    server = runtime.get_instance()
    _prune(registry, registry_lock)
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


@st.cache_resource(show_spinner=False)
def _warm_up_maps() -> threading.Event:
    """Once per server process, in the background: UMAP compiles itself on first use (~15 s,
    a minute on a busy machine), so do that while the user is still uploading rather than when
    they wait for a map. The event is set once that is done."""
    ready = threading.Event()

    def warm() -> None:
        try:
            from bulkformer.projection import project

            project(np.random.default_rng(0).normal(size=(16, 4)), method="umap")
        except Exception:  # the first real map then compiles instead
            log.debug("UMAP warm-up failed", exc_info=True)
        finally:
            ready.set()

    threading.Thread(target=warm, name="bulkformer-umap-warmup", daemon=True).start()
    return ready


def maps_ready() -> bool:
    """Whether the map code is compiled (else the first map of this server waits for it)."""
    return _warm_up_maps().is_set()


def init_session() -> None:
    """Give this browser session its random id, private cache folder and defaults (or, after a
    reload, the state its browser had: :func:`_take_over_after_reload`)."""
    _warm_up_maps()
    ss = st.session_state
    if K_SID not in ss:
        _take_over_after_reload()
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
    _keep_for_reload()


# ======================================================================== reload registry
#: How long after its last use a session's state waits for a reload of its browser.
RELOAD_KEEP_S = 3600
RELOAD_COOKIE = "bf_reload"
#: What a reload takes over: the data, the reading choices, results, jobs and settings.
_KEPT_KEYS = (K_SID, K_FOLDER, K_DATASET, K_PREPARED, K_OVERRIDES, K_JOBS, K_RESULTS, K_MEMO, K_MODEL_SPEC,
              K_DEVICE, K_BATCH, K_SHEET_ID_COLUMN, K_SHEET_ERROR, "bf_table_file_id", "bf_sheet_file_id")


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
class _Kept:
    state: _LiveState
    seen: float


@st.cache_resource(show_spinner=False)
def _reload_registry() -> tuple[dict[str, _Kept], threading.Lock]:
    """sha256(browser token) → the state that browser's last session had; one per server,
    pruned every few minutes (so an abandoned session's folder goes within the hour)."""
    registry: dict[str, _Kept] = {}
    lock = threading.Lock()

    def prune_forever() -> None:
        while True:
            time.sleep(RELOAD_KEEP_S / 12)
            _prune(registry, lock)

    threading.Thread(target=prune_forever, name="bulkformer-reload-prune", daemon=True).start()
    return registry, lock


def _prune(registry: dict[str, _Kept], lock: threading.Lock) -> None:
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


def _take_over_after_reload() -> None:
    """A new session whose browser holds a known token takes over that browser's state."""
    ss = st.session_state
    token = browser_token()
    registry, lock = _reload_registry()
    _prune(registry, lock)
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


def _keep_for_reload() -> None:
    """Point this browser's token at this session's state, and note that it is in use."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    token = st.session_state.get(K_RELOAD_TOKEN)
    ctx = get_script_run_ctx()
    if not token or ctx is None:
        return
    registry, lock = _reload_registry()
    with lock:
        registry[_token_key(token)] = _Kept(_LiveState(ctx.session_state), time.time())


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


def session_folder() -> Path:
    init_session()
    folder: _SessionFolder = st.session_state[K_FOLDER]
    folder.path.mkdir(parents=True, exist_ok=True)
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


# ================================================================================ errors
def show_error(err: BaseException, *, what: str = "") -> None:
    """A user-facing message for ``err``: its text for our errors, a short note otherwise."""
    if isinstance(err, BulkFormerError):
        st.error(str(err).replace("\n", "  \n"), icon=":material/error:")  # message, then the hint
    else:
        log.error("Unexpected error%s", f" while {what}" if what else "", exc_info=err)
        st.error(GENERIC_ERROR, icon=":material/error:")


@contextlib.contextmanager
def guarded(what: str = "") -> Iterator[None]:
    """Run a block; show any error as a message instead of a traceback."""
    try:
        yield
    except ScriptControlException:
        raise
    except Exception as err:  # noqa: BLE001 - the whole point: nothing escapes to the page
        show_error(err, what=what)


# ================================================================================= model
@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def _load_model(spec: str, device: str) -> Any:
    """One shared, eval-mode, thread-safe model per (spec, device) for the whole server."""
    from bulkformer.wrapper import BulkFormerModel

    return BulkFormerModel.load(spec, device=device)


def model_choice() -> tuple[str, str]:
    init_session()
    return str(st.session_state[K_MODEL_SPEC]), str(st.session_state[K_DEVICE])


def get_model(*, quiet: bool = False) -> Any | None:
    """The chosen model, or ``None`` after showing why it could not be loaded."""
    spec, device = model_choice()
    try:
        model = _load_model(spec, device)
    except Exception as err:  # noqa: BLE001
        if not quiet:
            show_error(err, what="loading the model")
            st.page_link(PAGES["model"], label="Choose another model", icon=":material/tune:")
        st.session_state.pop(K_MODEL_LINE, None)
        return None
    st.session_state[K_MODEL_LINE] = f"{'demo (simulated data)' if model.is_demo else model.name} · {model.device.type}"
    return model


def model_line() -> str | None:
    """'demo (simulated data) · cpu' once this session has loaded its model (never loads it)."""
    return st.session_state.get(K_MODEL_LINE)


def available_models() -> dict[str, str]:
    """Model choices for people: spec → label. The demo first, then what is on disk."""
    from bulkformer.registry import MODELS

    choices = {"demo": "Demo model (simulated data, for trying the app)"}
    folder = paths.model_dir()
    known: set[str] = set()
    for name, published in MODELS.items():
        known.add(published.checkpoint)
        if (folder / published.checkpoint).is_file():
            choices[name] = f"{published.label} — {published.checkpoint}"
    if folder.is_dir():
        for child in sorted(folder.iterdir()):
            if child.is_file() and child.suffix == ".pt" and child.name not in known:
                choices[str(child)] = f"Checkpoint file {child.name}"
            elif child.is_dir() and (child / "config.json").is_file():
                choices[str(child)] = f"Saved model folder {child.name}"
    return choices


def file_prefix(model: Any) -> str:
    """Every file made with the demo model says so in its name."""
    return "DEMO_" if getattr(model, "is_demo", False) else ""


def output_name(model: Any, what: str) -> str:
    """File name for a download: ``[DEMO_]<table name>_<what>``, e.g. ``DEMO_demo_counts_umap.csv``."""
    data = dataset()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(data.table.name).name.split(".")[0]) if data else ""
    return f"{file_prefix(model)}{stem or 'bulkformer'}_{what}"


DEMO_ON_OWN_DATA = (
    "**The demo model is not meant for your samples.** It was trained on simulated data, so what it says "
    "about a real table (embeddings, imputed genes, the hold-out check) means nothing biologically. Get a "
    "published BulkFormer model first: **Model page → Get the published model**."
)


def model_badge(model: Any) -> None:
    """The demo banner; stronger, with the way to a published model, when the table is the user's own."""
    if not getattr(model, "is_demo", False):
        return
    data = dataset()
    if data is not None and data.origin == "upload":
        st.warning(DEMO_ON_OWN_DATA, icon=":material/report:")
        st.page_link(PAGES["model"], label="Get the published model (Model page)", icon=":material/download:")
    else:
        st.warning(DEMO_BANNER, icon=":material/science:")


# =============================================================================== uploads
@dataclass(frozen=True, eq=False)
class Upload:
    """One file as the user gave it: its name, bytes and their sha256."""

    name: str
    data: bytes
    sha: str

    @classmethod
    def of(cls, name: str, data: bytes) -> Upload:
        return cls(name, bytes(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, eq=False)
class Dataset:
    table: Upload
    sheet: Upload | None = None
    origin: str = "upload"  # upload | demo | panel

    @property
    def label(self) -> str:
        extra = {"demo": " (demo cohort)", "panel": " (demo gene panel)"}.get(self.origin, "")
        return self.table.name + extra


def dataset() -> Dataset | None:
    init_session()
    return st.session_state.get(K_DATASET)


def _drop_derived(keep_runs: bool = False) -> None:
    ss = st.session_state
    ss.pop(K_PREPARED, None)
    if not keep_runs:
        for entry in list(ss[K_JOBS].values()):
            with contextlib.suppress(Exception):
                entry.job.cancel()
        ss[K_JOBS] = {}
        ss[K_RESULTS] = {}
        ss[K_MEMO] = {}


def set_table(upload: Upload, *, origin: str = "upload", sheet: Upload | None = None) -> None:
    """What the uploader (and the demo button) call: make ``upload`` this session's table."""
    init_session()
    st.session_state[K_DATASET] = Dataset(upload, sheet, origin)
    st.session_state[K_OVERRIDES] = {"orientation": "auto", "id_type": "auto", "value_type": "auto"}
    _drop_derived()


def set_sheet(sheet: Upload | None) -> None:
    """Attach (or remove) a sample sheet; runs stay valid (the sheet changes no numbers)."""
    current = dataset()
    if current is None:
        return
    st.session_state[K_DATASET] = Dataset(current.table, sheet, current.origin)
    st.session_state.pop(K_SHEET_ID_COLUMN, None)
    _drop_derived(keep_runs=True)


def sheet_id_column() -> str | None:
    """The sample sheet's ID column as the user chose it (``None``: the app decides)."""
    return st.session_state.get(K_SHEET_ID_COLUMN)


def set_sheet_id_column(column: str | None) -> None:
    if column != sheet_id_column():
        st.session_state[K_SHEET_ID_COLUMN] = column
        st.session_state.pop(K_PREPARED, None)


def sheet_error() -> BaseException | None:
    """Why the session's sample sheet could not be used with its table (``None`` if it could)."""
    return st.session_state.get(K_SHEET_ERROR)


def sheet_columns() -> tuple[str, ...]:
    """The column names of the session's sample sheet (``()`` if it has none or is unreadable)."""
    from bulkformer.io import sample_sheet_columns

    data = dataset()
    if data is None or data.sheet is None:
        return ()
    key = ("sheet_columns", data.sheet.sha)
    cache = memo()
    if key not in cache:
        try:
            cache[key] = sample_sheet_columns(data.sheet.data, filename=data.sheet.name)
        except BulkFormerError:
            cache[key] = ()
    return cache[key]


def clear_dataset() -> None:
    init_session()
    st.session_state.pop(K_DATASET, None)
    _drop_derived()


DEMO_FILES = {
    "demo": ("demo_counts.csv.gz", "demo_samples.csv"),
    "panel": ("demo_panel_counts.csv.gz", "demo_panel_samples.csv"),
}


def load_demo(kind: str = "demo") -> None:
    """Load a shipped demo table and its sample sheet as if the user had uploaded them."""
    table_name, sheet_name = DEMO_FILES[kind]
    folder = paths.demo_dir()
    table_path, sheet_path = folder / table_name, folder / sheet_name
    if not table_path.is_file():
        raise BulkFormerError(
            f"The demo data ({table_name}) is not installed in {folder}.",
            hint="Reinstall BulkFormer Studio, or upload your own table on the Upload & QC page.",
        )
    sheet = Upload.of(sheet_name, sheet_path.read_bytes()) if sheet_path.is_file() else None
    set_table(Upload.of(table_name, table_path.read_bytes()), origin=kind, sheet=sheet)


def overrides() -> dict[str, str]:
    init_session()
    return dict(st.session_state[K_OVERRIDES])


def set_overrides(**changes: str) -> None:
    new = {**overrides(), **changes}
    if new != overrides():
        st.session_state[K_OVERRIDES] = new
        _drop_derived(keep_runs=True)  # runs are keyed by the overrides; old ones are kept for reuse


def table_key(model: Any) -> dict[str, Any]:
    """What identifies the numbers fed to the model: the upload's bytes, the overrides, the model."""
    data = dataset()
    assert data is not None
    return {"table": data.table.sha, "overrides": overrides(), "model": model.checksum}


def get_prepared(model: Any) -> tuple[Any | None, BaseException | None]:
    """The session's table read, mapped and aligned to ``model``'s genes (cached per session)."""
    data = dataset()
    if data is None:
        return None, None
    key = json.dumps([table_key(model), data.sheet.sha if data.sheet else None, sheet_id_column()],
                     sort_keys=True)
    held = st.session_state.get(K_PREPARED)
    if held is not None and held[0] == key:
        return held[1], held[2]
    opts = overrides()
    prepared, error = None, None
    try:
        with st.spinner("Reading your table and matching its genes to the model…"):
            prepared = model.prepare(
                data.table.data,
                filename=data.table.name,
                orientation=opts["orientation"],
                id_type=opts["id_type"],
                value_type=opts["value_type"],
                **_sheet_kwargs(data.sheet),
            )
    except Exception as err:
        if not isinstance(err, BulkFormerError):
            log.error("prepare() failed on %s", data.table.name, exc_info=err)
        error = err
    st.session_state[K_SHEET_ERROR] = None
    if error is not None and data.sheet is not None:  # a sheet that does not fit blocks nothing
        without_sheet, table_error = _prepare_without_sheet(model, data, opts)
        if table_error is None:
            st.session_state[K_SHEET_ERROR] = error
            prepared, error = without_sheet, None
    st.session_state[K_PREPARED] = (key, prepared, error)
    return prepared, error


def _prepare_without_sheet(model: Any, data: Dataset, opts: Mapping[str, str]) -> tuple[Any | None, BaseException | None]:
    """The table prepared on its own: tells a sample sheet's error apart from the table's."""
    try:
        with st.spinner("Reading your table without the sample sheet…"):
            return model.prepare(data.table.data, filename=data.table.name, orientation=opts["orientation"],
                                 id_type=opts["id_type"], value_type=opts["value_type"]), None
    except Exception as err:  # noqa: BLE001 - the caller shows the first error
        return None, err


def _sheet_kwargs(sheet: Upload | None) -> dict[str, Any]:
    if sheet is None:
        return {}
    return {"sample_sheet": sheet.data, "sample_sheet_filename": sheet.name, "sample_id_column": sheet_id_column()}


def open_page(title: str, caption: str | None = None, *, needs_data: bool = True) -> tuple[Any, Any]:
    """Every page's start: title, pending messages, the loaded model (and, when the page needs
    data, the prepared table). Stops the page with a friendly note when either is missing."""
    st.title(title)
    show_flash()
    if caption:
        st.caption(caption)
    model = get_model()
    if model is None:
        st.stop()
    model_badge(model)
    if not needs_data:
        return model, None
    prepared = require_prepared(model)
    if prepared is None:
        st.stop()
    return model, prepared


def require_prepared(model: Any) -> Any | None:
    """The prepared input, or ``None`` after telling the user where to go first."""
    if dataset() is None:
        st.info("No data yet. Upload a table, or try the demo data.", icon=":material/upload_file:")
        c1, c2 = st.columns(2)
        c1.page_link(PAGES["upload"], label="Upload & QC", icon=":material/upload_file:")
        c2.page_link(PAGES["home"], label="Try the demo data", icon=":material/science:")
        return None
    prepared, _error = get_prepared(model)
    if prepared is None:
        st.error("Your table could not be read. The Upload & QC page says why.", icon=":material/error:")
        st.page_link(PAGES["upload"], label="Go to Upload & QC", icon=":material/upload_file:")
        return None
    return prepared


def guess_items(prepared: Any) -> dict[str, Any]:
    """The pipeline's guesses as ``{name: Guess(value, reason)}``, whatever container holds them."""
    guesses = getattr(prepared, "guesses", None)
    if guesses is None:
        return {}
    if isinstance(guesses, Mapping):
        return dict(guesses)
    if hasattr(guesses, "__dataclass_fields__"):
        return {k: getattr(guesses, k) for k in guesses.__dataclass_fields__}
    return dict(vars(guesses))


# ================================================================================ genes
def _annotation() -> Any:
    from bulkformer.genes import load_annotation

    return load_annotation()  # read once per process by the package (functools.cache)


def symbols_for(gene_ids: Sequence[str]) -> dict[str, str]:
    """Ensembl ID → symbol for ``gene_ids`` (IDs without a symbol are left out)."""
    key = ("symbols", hashlib.sha256("\n".join(gene_ids).encode()).hexdigest())
    cache = memo()
    if key not in cache:
        cache[key] = _annotation().symbols_of(gene_ids)
    return cache[key]


def gene_labels(gene_ids: Sequence[str]) -> list[str]:
    """``SYMBOL (ENSG…)`` labels for pickers."""
    sym = symbols_for(gene_ids)
    return [f"{sym[g]} ({g})" if g in sym else g for g in gene_ids]


def resolve_gene_text(text: str, gene_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Typed genes → (model gene IDs in the order given, names that matched no gene of the model),
    by the package's one gene-list rule."""
    from bulkformer.genes import parse_gene_list

    found = parse_gene_list(text, gene_ids, annotation=_annotation())
    return list(found.genes), [*found.unknown, *found.outside]


# ================================================================================= jobs
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


def time_left_words(seconds: float | None) -> str:
    """The run's own estimate of the time left, rounded as people say it ("about 2 minutes left")."""
    if seconds is None or not math.isfinite(seconds):
        return "estimating the time left…"
    if seconds < 45:
        return "less than a minute left"
    minutes = seconds / 60
    if minutes < 1.5:
        return "about a minute left"
    if minutes < 60:
        return f"about {round(minutes)} minutes left"
    hours, rest = divmod(round(minutes / 10) * 10, 60)
    return f"about {hours} hour{'s' if hours > 1 else ''}" + (f" {rest} minutes left" if rest else " left")


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
            text = f"{entry.label}: {done:,} of {total:,} {unit} · {time_left_words(job.eta_seconds)}"
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
    from bulkformer.model_fetch import FETCHER

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


# ================================================================================ colour
#: Colours for the categories of a sample-sheet column, most distinct first: each is the colour
#: (from Okabe-Ito, D3, Dark2, Bold, Vivid, Safe and Plotly) farthest in CIE Lab from those before
#: it, leaving out pale ones and ones near :data:`MISSING_COLOR`. The first ten differ by ΔE ≥ 41.
PALETTE: tuple[str, ...] = ("#0072B2", "#F2B701", "#E73F74", "#00CC96", "#AB63FA",
                            "#661100", "#99C945", "#D95F02", "#19D3F3", "#24796C")
#: Colours of the clusters the app finds: none of :data:`PALETTE`'s, so that "cluster 1" never
#: looks like the first category of a sample-sheet column.
CLUSTER_PALETTE: tuple[str, ...] = ("#332288", "#AA4499", "#A6761D", "#117733", "#FF97FF",
                                    "#8C564B", "#F97B72", "#E41A1C", "#FFA15A", "#2CA02C")
#: More colours for columns with more than ten categories.
_MORE_COLORS: tuple[str, ...] = tuple(c for c in dict.fromkeys(
    pcolors.qualitative.Dark24 + pcolors.qualitative.Light24) if c not in PALETTE + CLUSTER_PALETTE)
MISSING_COLOR = "#b0b7c3"
CONTINUOUS_SCALE = "Viridis"


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))


def category_colors(values: Sequence[Any] | pd.Series, *, palette: Sequence[str] = PALETTE) -> dict[str, str]:
    """Category → colour, deterministic: categories in natural sort order take palette colours in turn.

    Pass *all* values of a column (the whole sample sheet's column), so every page that colours
    by that column gets the same colours. Missing values map to grey under the key ``"(missing)"``.
    """
    labels = sorted({category_label(v) for v in values} - {"(missing)"}, key=_natural_key)
    colours = (*palette, *(c for c in (*PALETTE, *CLUSTER_PALETTE, *_MORE_COLORS) if c not in palette))
    colors = {label: colours[i % len(colours)] for i, label in enumerate(labels)}
    colors["(missing)"] = MISSING_COLOR
    return colors


def category_label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "(missing)"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_continuous(column: pd.Series) -> bool:
    """Numbers with many distinct values are shown on a colour scale, not as categories."""
    return (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
            and column.nunique(dropna=True) > 12)


# ================================================================================= plots
def image_format() -> str:
    init_session()
    return str(st.session_state[K_IMAGE_FORMAT])


def plot_config(filename: str) -> dict[str, Any]:
    """Plotly config: the camera button saves a picture (PNG or SVG, chosen in the sidebar)."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": image_format(), "filename": filename, "scale": 2},
        "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    }


def show_figure(fig: go.Figure, filename: str, *, key: str | None = None) -> None:
    fig.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 40, "b": 10})
    st.plotly_chart(fig, width="stretch", config=plot_config(filename), key=key, theme=None)


def hover_texts(sample_ids: Sequence[str], metadata: pd.DataFrame | None, *, max_columns: int = 8) -> list[str]:
    """``<b>sample</b><br>column: value…`` per sample, for plot tooltips."""
    ids = [str(s) for s in sample_ids]
    if metadata is None or metadata.empty:
        return [f"<b>{s}</b>" for s in ids]
    meta = metadata.reindex(ids).iloc[:, :max_columns]
    parts = [pd.Series([f"<b>{s}</b>" for s in ids])]
    for column in meta.columns:
        values = meta[column].map(category_label).to_numpy()
        parts.append(pd.Series([f"{column}: {v}" for v in values]))
    return list(pd.concat(parts, axis=1).agg("<br>".join, axis=1))


#: Maps of at most this many samples show each sample's name beside its dot.
LABELLED_SAMPLES = 20


def sample_scatter(
    coords: np.ndarray,
    sample_ids: Sequence[str],
    *,
    metadata: pd.DataFrame | None,
    color_by: str | None,
    color_values: pd.Series | None = None,
    axis_titles: tuple[str, str] = ("1", "2"),
    title: str = "",
    palette: Sequence[str] = PALETTE,
) -> go.Figure:
    """One dot per sample (WebGL, so 5,000+ samples stay smooth), coloured by one column
    (categories take ``palette``'s colours); up to :data:`LABELLED_SAMPLES` samples are named."""
    coords = np.asarray(coords, dtype=float)
    ids = [str(s) for s in sample_ids]
    hover = hover_texts(ids, metadata)
    fig = go.Figure()
    few = len(ids) <= LABELLED_SAMPLES
    marker_size = 13 if few else 8 if len(ids) <= 500 else 5 if len(ids) <= 3000 else 4
    if color_by is None or color_values is None:
        fig.add_trace(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", text=hover,
                                   hovertemplate="%{text}<extra></extra>", name="samples",
                                   marker={"size": marker_size, "color": PALETTE[0], "opacity": 0.85}))
    else:
        values = color_values.reindex(ids)
        if is_continuous(color_values):
            fig.add_trace(go.Scattergl(
                x=coords[:, 0], y=coords[:, 1], mode="markers", text=hover, name=color_by,
                hovertemplate="%{text}<extra></extra>",
                marker={"size": marker_size, "color": values.to_numpy(dtype=float), "colorscale": CONTINUOUS_SCALE,
                        "colorbar": {"title": {"text": color_by}}, "opacity": 0.9},
            ))
        else:
            colors = category_colors(color_values, palette=palette)
            labels = values.map(category_label).to_numpy()
            order = [c for c in colors if c in set(labels)]
            for label in order:
                idx = np.flatnonzero(labels == label)
                fig.add_trace(go.Scattergl(
                    x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=label,
                    text=[hover[i] for i in idx], hovertemplate="%{text}<extra></extra>",
                    marker={"size": marker_size, "color": colors[label], "opacity": 0.85},
                ))
            fig.update_layout(legend={"title": {"text": color_by}, "itemsizing": "constant"})
    if few:  # a handful of samples: name them on the map
        fig.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], mode="text", text=ids, textposition="top center",
                                 textfont={"size": 11, "color": "#374151"}, hoverinfo="skip", showlegend=False))
    fig.update_layout(title=title, height=560, xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
                      hoverlabel={"align": "left"})
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    return fig


# =========================================================================== downloads
def download(label: str, data: bytes | Callable[[], bytes], file_name: str, *, mime: str, key: str,
             help: str | None = None) -> None:
    st.download_button(label, data=data, file_name=file_name, mime=mime, key=key, help=help,
                       icon=":material/download:", on_click="ignore")


# ================================================================= benchmarks (expected time)
# ================================================================================= runs
@dataclass(frozen=True, eq=False)
class MainOutcome:
    """The main run: sample embeddings + imputed expression, and the two maps of the samples."""

    key: str
    table_fp: str
    options: dict[str, Any]
    result: Any  # InferenceResult
    projections: dict[str, Any]  # "umap" / "pca" → Projection
    from_cache: bool
    seconds: float


@dataclass(frozen=True, eq=False)
class HoldoutOutcome:
    """The hold-out check: the model and the baselines on the same hidden values, and the verdict."""

    key: str
    table_fp: str
    fraction: float
    comparison: Any  # holdout.HoldoutComparison
    verdict: Any  # holdout.Verdict
    from_cache: bool


@dataclass(frozen=True, eq=False)
class GeneOutcome:
    """Gene-level embeddings of chosen genes."""

    key: str
    table_fp: str
    genes: tuple[str, ...]
    result: Any  # InferenceResult


def table_fingerprint(model: Any) -> str:
    """Content key of the numbers the model sees: upload bytes (sha256) + reading choices + model."""
    from bulkformer.jobs import content_key

    data = dataset()
    assert data is not None
    return content_key("table", data.table.sha, json.dumps(overrides(), sort_keys=True), model.checksum)


def current(kind: str, model: Any) -> Any | None:
    """This session's result of ``kind`` if it belongs to the current table and model."""
    outcome = results().get(kind)
    if outcome is None or dataset() is None or outcome.table_fp != table_fingerprint(model):
        return None
    return outcome


def run_key(kind: str, model: Any, options: Mapping[str, Any]) -> tuple[str, str]:
    """(table fingerprint, cache key) of a run: sha256 over the table, the model and the options."""
    from bulkformer.jobs import content_key

    table_fp = table_fingerprint(model)
    return table_fp, content_key(kind, table_fp, json.dumps(options, sort_keys=True))


def is_shown(kind: str, key: str) -> bool:
    """Whether this session already holds the result of exactly this run."""
    held = results().get(kind)
    return held is not None and held.key == key


def start_main_run(model: Any, prepared: Any, *, aggregate: str, aggregate_genes: Sequence[str] | None,
                   precision: str, batch_size: int | None) -> str:
    """Start (or reuse) the main run. Returns ``"have"`` when the result is already shown."""
    from bulkformer.inference import InferenceCancelled
    from bulkformer.projection import project

    options = {"aggregate": aggregate, "aggregate_genes": list(aggregate_genes) if aggregate_genes else None,
               "precision": precision}
    table_fp, key = run_key("main", model, options)
    if is_shown("main", key):
        return "have"
    cache = result_cache()
    values, sample_ids = prepared.aligned.values, prepared.aligned.sample_ids

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> MainOutcome:
        t0 = time.perf_counter()
        result, from_cache = cached_run(cache, key, len(sample_ids), progress, lambda: model.run(
            values, sample_ids, embed=True, impute=True, aggregate=aggregate,
            aggregate_genes=options["aggregate_genes"], precision=precision,
            batch_size=batch_size or None, progress=progress, should_stop=should_stop))
        if should_stop():
            raise InferenceCancelled("The run was cancelled.")
        projections = {m: project(result.sample_embedding, method=m) for m in ("umap", "pca")}
        return MainOutcome(key, table_fp, options, result, projections, from_cache, time.perf_counter() - t0)

    return start_job("main", key, "Running BulkFormer", run, starting_note=compile_note(model, len(sample_ids)),
                     **options)


def compile_note(model: Any, n_samples: int) -> str:
    """Said while a run starts, when the model compiles itself first (large models on a CPU)."""
    from bulkformer.inference import COMPILE_NOTE

    return COMPILE_NOTE if model.compiles(n_samples) else ""


def cached_run(cache: Any, key: str, n_samples: int, progress: Callable[[int, int], None],
               compute: Callable[[], Any]) -> tuple[Any, bool]:
    """The on-disk result for ``key``, or ``compute()`` stored under it; and whether it was cached."""
    result = cache.get(key)
    if result is not None:
        progress(n_samples, n_samples)
        return result, True
    result = compute()
    cache.put(key, result)
    return result, False


def start_holdout_run(model: Any, prepared: Any, *, fraction: float, precision: str,
                      batch_size: int | None, seed: int = 0) -> str:
    from bulkformer.holdout import compare_with_baselines, hide_measured, verdict

    options = {"fraction": round(float(fraction), 4), "seed": seed, "precision": precision}
    table_fp, key = run_key("holdout", model, options)
    if is_shown("holdout", key):
        return "have"
    cache = result_cache()
    aligned = prepared.aligned

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> HoldoutOutcome:
        holdout = hide_measured(aligned.values, aligned.observed, fraction=fraction, seed=seed)
        result, from_cache = cached_run(cache, key, len(aligned.sample_ids), progress, lambda: model.run(
            holdout.values, aligned.sample_ids, embed=False, impute=True, precision=precision,
            batch_size=batch_size or None, progress=progress, should_stop=should_stop))
        comparison = compare_with_baselines(aligned.values, holdout, result.imputed, observed=aligned.observed,
                                            sample_ids=aligned.sample_ids)
        return HoldoutOutcome(key, table_fp, fraction, comparison, verdict(comparison), from_cache)

    return start_job("holdout", key, "Hold-out check", run,
                     starting_note=compile_note(model, len(aligned.sample_ids)), **options)


def start_gene_run(model: Any, prepared: Any, *, genes: Sequence[str], precision: str,
                   batch_size: int | None) -> str:
    options = {"genes": list(genes), "precision": precision}
    table_fp, key = run_key("genes", model, options)
    if is_shown("genes", key):
        return "have"
    cache = result_cache()
    aligned = prepared.aligned

    def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> GeneOutcome:
        result, _ = cached_run(cache, key, len(aligned.sample_ids), progress, lambda: model.run(
            aligned.values, aligned.sample_ids, embed=False, impute=False, gene_embedding_genes=list(genes),
            precision=precision, batch_size=batch_size or None, progress=progress, should_stop=should_stop))
        return GeneOutcome(key, table_fp, tuple(genes), result)

    return start_job("genes", key, "Gene embeddings", run,
                     starting_note=compile_note(model, len(aligned.sample_ids)), **options)


def batch_size_setting() -> int | None:
    init_session()
    value = int(st.session_state[K_BATCH] or 0)
    return value or None


def batch_size_choices() -> list[int]:
    """Batch sizes offered in pickers: 0 (automatic), then powers of two, and the current setting."""
    return sorted({0, *(2**i for i in range(10)), batch_size_setting() or 0})


def batch_size_label(value: int) -> str:
    """0 means "automatic" to people: the model picks what fits the device."""
    return "automatic" if not value else f"{value:,} sample{'s' if value != 1 else ''}"
