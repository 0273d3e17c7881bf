"""Home: what the app does, the demo button, which model is loaded, and the privacy note."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import frame, keys, session, uploads


def demo_button(label: str, which: str, loaded: str, **button: Any) -> None:
    """A button that loads one of the shipped demo data sets and opens Upload & QC."""
    if st.button(label, key=f"{which}_button", **button):
        try:
            uploads.load_demo(which)
        except Exception as err:  # noqa: BLE001
            frame.show_error(err, what=f"loading the {which} demo")
        else:
            session.flash(loaded)
            st.switch_page(keys.PAGES["upload"])


@st.fragment(run_every=session.WARM_UP_POLL_S)
def model_on_its_way() -> None:
    """The model section while the model code still loads in the background (the first visit
    since the server started): Home appears without waiting for it, and is drawn again once it is."""
    if session.model_code_ready():
        st.rerun()
    if frame.model_choice()[0] == "demo":
        st.warning(frame.DEMO_BANNER, icon=":material/science:")
    st.caption(":material/hourglass_top: Loading the model in the background…")


def getting_started() -> None:
    """The demo buttons beside the way to one's own data."""
    c1, c2 = st.columns(2)
    with c1, st.container(border=True):
        st.markdown("#### :material/science: Try it in one click")
        st.caption("A simulated cohort of ~200 samples from six tissues, with a sample sheet.")
        demo_button("Try the demo data", "demo", "Demo data loaded: a simulated cohort with its sample sheet.",
                    type="primary", icon=":material/play_arrow:",
                    help="Loads the demo table and sample sheet as if you had uploaded them.")
        demo_button("Try a targeted gene panel", "panel", "Panel demo loaded: 24 samples, ~1,000 measured genes.",
                    icon=":material/filter_list:",
                    help="24 new samples where only ~1,000 genes were measured, named by gene symbol: "
                         "shows how BulkFormer fills in the genes that were not measured.")
    with c2, st.container(border=True):
        st.markdown("#### :material/upload_file: Or use your own data")
        st.caption("A table of counts, TPM or FPKM: genes × samples or samples × genes, "
                   "Ensembl IDs or gene symbols. CSV, TSV, Excel, Parquet or AnnData.")
        st.page_link(keys.PAGES["upload"], label="Upload & QC", icon=":material/arrow_forward:")


def model_section() -> None:
    """Which model is loaded, or that it is still loading (Home does not wait for it)."""
    st.subheader("The model")
    if session.model_code_ready() or frame.model_line():
        model = frame.get_model()
        if model is not None:
            frame.model_badge(model)
            st.markdown(f"**Loaded:** {model.describe()}")
            st.caption("Change the model, the device or the batch size on the Model page.")
            st.page_link(keys.PAGES["model"], label="Model settings", icon=":material/memory:")
    else:
        model_on_its_way()


def privacy_note() -> None:
    """Where uploads stay and for how long."""
    st.subheader("Your data stays here")
    st.info(
        "Files you upload are processed on this server only — they are never sent anywhere else. "
        "They are kept for this browser only, and deleted an hour after you last used the app; "
        "reloading the page before then finds them again, through a cookie only this browser holds. "
        "Other users of this server cannot see them.",
        icon=":material/lock:",
    )


def main() -> None:
    st.title(":material/biotech: BulkFormer Studio")
    session.show_flash()
    st.markdown(
        "BulkFormer is an AI model that has learned how the ~20,000 human protein-coding genes "
        "behave together in bulk RNA-seq. Upload your expression table and it turns every sample "
        "into a compact *fingerprint* (an embedding) that you can map, colour and compare, and it "
        "fills in genes your experiment did not measure (imputation). "
        "All of it with a few clicks in your web browser: no programming needed."
    )
    getting_started()
    model_section()
    privacy_note()


main()
