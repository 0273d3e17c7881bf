"""Model: choose the checkpoint, device and batch size; see what is loaded and how to get the
published weights."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import streamlit as st

from bulkformer import paths
from bulkformer.fetch import _published as model_fetch
from bulkformer.fetch import _registry as registry
from bulkformer.fetch.zenodo import human_size
from bulkformer.model._speed import expected_time_per_sample
from ui import frame, keys, progress, runs, session

if TYPE_CHECKING:
    from bulkformer.model import BulkFormerModel

ss = st.session_state


def settings_section() -> str:
    """Model, device and batch size; a change reruns the page with the new choice. Returns the
    chosen model's spec."""
    choices = frame.available_models()
    spec, device = frame.model_choice()
    if spec not in choices:  # a file that has gone away since it was chosen
        choices[spec] = spec
    devices = frame.device_choices()
    if device not in devices:
        device = "auto"

    with st.container(border=True):
        st.markdown("#### Settings")
        c1, c2, c3 = st.columns([3, 2, 1])
        new_spec = c1.selectbox(
            "Model", list(choices), index=list(choices).index(spec), format_func=choices.get, key="model_spec_pick",
            help="The demo model is for trying the app. The published BulkFormer models appear here once "
                 f"downloaded into {paths.model_dir()}.",
        )
        new_device = c2.selectbox(
            "Device", list(devices), index=list(devices).index(device), format_func=devices.get, key="model_device_pick",
            help="Where the model runs. A GPU is many times faster; the CPU works for small cohorts.",
        )
        batch_choices = runs.batch_size_choices()
        batch = c3.selectbox(
            "Batch size", batch_choices, index=batch_choices.index(int(ss[keys.K_BATCH] or 0)),
            format_func=runs.batch_size_label, key="model_batch_pick",
            help="How many samples the model reads at once. Automatic: one at a time on a CPU "
                 "(fastest there), as many as fit on a GPU (halved by itself if memory runs out).",
        )
        if (new_spec, new_device) != (spec, device) or int(batch) != int(ss[keys.K_BATCH] or 0):
            ss[keys.K_MODEL_SPEC], ss[keys.K_DEVICE], ss[keys.K_BATCH] = new_spec, new_device, int(batch)
            ss.pop(keys.K_PREPARED, None)  # the gene order may differ between models
            st.rerun()
    return spec


def loaded_model_section(model: BulkFormerModel) -> None:
    """What is loaded: its genes, device, checksum and what a run costs here."""
    frame.model_badge(model, on_model_page=True)
    st.markdown("#### Loaded model")
    m = st.columns(3)
    m[0].metric("Model", "demo" if model.is_demo else model.name)
    m[1].metric("Genes", f"{len(model.gene_ids):,}",
                help="The genes the model reads, in its own order. The published models read the 20,010 genes "
                     "of their gene table; the demo model the 19,944 protein-coding genes of the gene "
                     "annotation shipped with the app (GENCODE v36), which it was trained on.")
    m[2].metric("Runs on", model.device.type.upper())
    st.markdown(f"**Description:** {model.describe()}")
    st.markdown("**Checksum (sha256 of the weights)** — quote it to say exactly which model you used:")
    st.code(model.checksum, language=None)
    st.caption(f"Loaded from `{model.source}`")
    expected = expected_time_per_sample(model.name, model.device.type)
    if expected:
        st.markdown(f"**The model's own compute per sample:** {expected}.")
        st.caption("That is the forward pass alone, on a quiet machine. A whole run also reads your table, "
                   "aligns it and draws the maps, and a server busy with other work is slower: your own runs "
                   "below say what this server does.")
    last = runs.current("main", model)
    if last is not None and not last.run.from_cache:
        n = len(last.run.result.sample_ids)
        st.markdown(f"**Your last run on this server:** {n:,} samples in {progress.format_seconds(last.run.seconds)} "
                    f"({last.run.seconds / max(n, 1):.2g} s per sample, reading and maps included).")


def published_section(spec: str) -> None:
    """Start, follow, cancel and use the server's one download of a published model."""
    st.markdown("#### Get the published model")
    st.markdown(
        "Downloads run **on the server that runs this app**, not on your computer, and every user of this "
        f"server shares them: one download at a time. Checkpoints go to `{paths.model_dir()}`, gene tables "
        f"and gene graphs to `{paths.data_dir()}` (set `BULKFORMER_MODEL_DIR` / `BULKFORMER_DATA_DIR` to "
        "change). The v2 sizes come from Google Drive, v1 and every gene table and graph from Zenodo. "
        "Each file is checked before use (Zenodo's md5; a Drive checkpoint is loaded and its shape "
        "compared), and an interrupted download continues where it stopped. From a terminal: "
        "`bulkformer download model --size 147M`."
    )
    published = {c.name: c for c in model_fetch.published_choices()}
    fetch = model_fetch.FETCHER.current
    busy = fetch is not None and fetch.job.status in ("pending", "running")
    f1, f2 = st.columns([3, 1])
    pick = f1.selectbox(  # after leaving the page, it shows the server's current download again
        "Published model", list(published), index=list(published).index(fetch.name if fetch else "147M"),
        key="fetch_pick",
        format_func=lambda n: f"{published[n].label} — {published[n].size_text}"
        + (" · downloaded" if published[n].present else ""),
        help="The v2 sizes (37M … 147M) differ in width and depth; 147M is the paper's main model. "
             "v1 is the first release. Sizes of the Drive files are estimates (4 bytes per parameter).",
    )
    chosen = registry.get(pick)
    f1.caption(f"Download: {published[pick].size_text} for `{chosen.checkpoint}`, plus its gene table and graph "
               f"({', '.join(chosen.data_files)}) from Zenodo record {chosen.data_record.record_id}.")
    f2.markdown("&nbsp;")
    if f2.button("Download", key="fetch_start", icon=":material/download:", disabled=busy, type="primary"):
        with frame.guarded("starting the download"):
            outcome = model_fetch.FETCHER.start(pick)
            if outcome == "busy":
                session.flash("Another download is running on this server; wait for it or cancel it first.", "warning")
            st.rerun()
    if busy:
        _fetch_progress()
    elif fetch is not None:
        fetch_outcome(fetch, spec)


@st.fragment(run_every=1.0)
def _fetch_progress() -> None:
    """Progress and Cancel of the server's download; reruns the page when it ends."""
    current = model_fetch.FETCHER.current
    if current is None or current.job.status not in ("pending", "running"):
        st.rerun()
        return
    job = current.job
    done, total = job.progress
    label = registry.get(current.name).label
    eta = progress.format_seconds(job.eta_seconds)
    text = (f"Downloading {label}: {human_size(done)} of {human_size(total)}" if total else
            f"Downloading {label}: starting…") + (f" · about {eta} left" if eta else "")
    with st.container(border=True):
        st.progress(min(1.0, done / total) if total else 0.0, text=text)
        cols = st.columns([1, 3])
        if cols[0].button("Cancel download", key="fetch_cancel", icon=":material/stop_circle:",
                          help="Stop the download. What arrived so far is kept: the next start continues it."):
            model_fetch.FETCHER.cancel()
        cols[1].caption(f"Running on the server for {progress.format_seconds(time.time() - current.started)}. "
                        "You can leave this page and come back.")


def fetch_outcome(fetch: model_fetch.Fetch, spec: str) -> None:
    """How the server's last download ended: a button to use it, or why it stopped."""
    label = registry.get(fetch.name).label
    if fetch.job.status == "done":
        st.success(f"{label} is downloaded and checked. It is in the **Model** list above.",
                   icon=":material/check_circle:")

        def _use(name: str) -> None:  # a callback: it runs before the Model list is drawn again
            ss[keys.K_MODEL_SPEC] = ss["model_spec_pick"] = name
            ss.pop(keys.K_PREPARED, None)  # the gene order may differ between models
            model_fetch.FETCHER.forget()

        if spec != fetch.name:
            st.button(f"Use {label} now", key="fetch_use", icon=":material/memory:", on_click=_use,
                      args=(fetch.name,))
    elif fetch.job.status == "cancelled":
        st.info(f"The download of {label} was cancelled. What arrived so far is kept: start it again to "
                "continue.", icon=":material/cancel:")
    else:
        st.error(f"The download of {label} failed: {fetch.job.error}", icon=":material/error:")


def main() -> None:
    st.title(":material/memory: Model")
    session.show_flash()
    spec = settings_section()
    model = frame.get_model()
    if model is not None:
        loaded_model_section(model)
    published_section(spec)


main()
