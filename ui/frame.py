"""Every page's frame: the title and pending messages, the loaded model and its demo banners,
and the guard that turns errors into messages for people.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from bulkformer import paths
from bulkformer.errors import BulkFormerError
from ui.keys import K_DEVICE, K_MODEL_LINE, K_MODEL_SPEC, K_TABLE_SLOT, PAGES
from ui.session import init_session, show_flash
from ui.uploads import dataset, get_prepared

if TYPE_CHECKING:  # for the reader and type checkers only: pages paint before torch is loaded
    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel

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
def _load_model(spec: str, device: str) -> BulkFormerModel:
    """One shared, eval-mode, thread-safe model per (spec, device) for the whole server."""
    from bulkformer.model._bulkformer_model import BulkFormerModel

    return BulkFormerModel.load(spec, device=device)


def model_choice() -> tuple[str, str]:
    init_session()
    return str(st.session_state[K_MODEL_SPEC]), str(st.session_state[K_DEVICE])


def device_choices() -> dict[str, str]:
    """Devices a model can run on here: setting → label (a GPU only where there is one)."""
    import torch

    devices = {"auto": "Automatic (GPU if there is one)", "cpu": "CPU"}
    if torch.cuda.is_available():
        devices["cuda"] = f"GPU ({torch.cuda.get_device_name(0)})"
    return devices


def get_model(*, quiet: bool = False) -> BulkFormerModel | None:
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
    from bulkformer.fetch._registry import MODELS

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


def file_prefix(model: BulkFormerModel) -> str:
    """Every file made with the demo model says so in its name."""
    return "DEMO_" if getattr(model, "is_demo", False) else ""


def file_safe(text: str) -> str:
    """``text`` as a part of a file name: every run of characters other than letters, digits,
    ``_`` and ``-`` becomes one ``_`` (a column, gene or file name may hold anything)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)


def output_name(model: BulkFormerModel, what: str) -> str:
    """File name for a download: ``[DEMO_]<table name>_<what>``, e.g. ``DEMO_demo_counts_umap.csv``."""
    data = dataset()
    stem = file_safe(Path(data.table.name).name.split(".")[0]) if data else ""
    return f"{file_prefix(model)}{stem or 'bulkformer'}_{what}"


DEMO_ON_OWN_DATA = (
    "**The demo model is not meant for your samples.** It was trained on simulated data, so what it says "
    "about a real table (embeddings, imputed genes, the hold-out check) means nothing biologically. Get a "
    "published BulkFormer model first: **Model page → Get the published model**."
)


def table_slot(identity: str) -> Any:
    """The container for everything that belongs to one table (``identity``), empty at once
    when the table changes.

    Streamlit keeps a rerun's old elements on screen (greyed) until the rerun writes over them,
    so a new upload would be read under the last file's error and choices, and a container
    written again at the same place keeps them too. So there are two places, taken in turn by
    successive tables: a new table empties the last one's place first thing in the run and is
    drawn in the other, which holds nothing; the same table keeps its place, so a rerun for one
    of its widgets does not flicker."""
    places = (st.empty(), st.empty())
    shown, index = st.session_state.get(K_TABLE_SLOT, ("", 0))
    if identity != shown:
        index = 1 - index
        st.session_state[K_TABLE_SLOT] = (identity, index)
    places[1 - index].empty()
    return places[index].container()


def model_badge(model: BulkFormerModel, *, on_model_page: bool = False) -> None:
    """The demo banner; stronger, with the way to a published model, when the table is the user's own
    (no link on the Model page itself: the section is below)."""
    if not getattr(model, "is_demo", False):
        return
    data = dataset()
    if data is not None and data.origin == "upload":
        st.warning(DEMO_ON_OWN_DATA, icon=":material/report:")
        if not on_model_page:
            st.page_link(PAGES["model"], label="Get the published model (Model page)", icon=":material/download:")
    else:
        st.warning(DEMO_BANNER, icon=":material/science:")


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


def require_prepared(model: BulkFormerModel) -> PreparedInput | None:
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
