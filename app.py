"""BulkFormer Studio: the Streamlit app. Start it with ``streamlit run app.py``.

This file only sets the page up and routes to the pages in ``pages/``; every page is a thin
layer of widgets and plots over the ``bulkformer`` package.
"""

from __future__ import annotations

import logging

import streamlit as st

from ui import frame, keys, progress, reload, session, uploads

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title=frame.APP_TITLE, page_icon=":material/biotech:", layout="wide",
                   initial_sidebar_state="expanded")
session.init_session()

pages = [
    st.Page(keys.PAGES["home"], title="Home", icon=":material/home:", default=True),
    st.Page(keys.PAGES["upload"], title="Upload & QC", icon=":material/upload_file:", url_path="upload"),
    st.Page(keys.PAGES["embeddings"], title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
    st.Page(keys.PAGES["imputation"], title="Imputation", icon=":material/auto_fix_high:", url_path="imputation"),
    st.Page(keys.PAGES["predict"], title="Predict", icon=":material/model_training:", url_path="predict"),
    st.Page(keys.PAGES["downloads"], title="Downloads", icon=":material/download:", url_path="downloads"),
    st.Page(keys.PAGES["model"], title="Model", icon=":material/memory:", url_path="model"),
]
current = st.navigation(pages)

with st.sidebar:
    st.markdown(f"### :material/biotech: {frame.APP_TITLE}")
    data = uploads.dataset()
    st.caption(f"**Data:** {data.label}" if data else "**Data:** none loaded yet")
    line = frame.model_line()  # shown once a page has loaded the model: the page comes first
    if line:
        st.caption(f"**Model:** {line}")
    progress.sidebar_jobs()
    session.warm_up_status()
    st.radio(
        "Save pictures as", ["png", "svg"], key=keys.K_IMAGE_FORMAT, horizontal=True,
        format_func=str.upper,
        help="Format used by the camera button above each plot: PNG for slides, SVG for editing "
             "in Illustrator or Inkscape.",
    )
    reload.write_reload_cookie()

try:
    current.run()
finally:  # however the page ended (drawn, stopped, switched): it did not wait for this
    session.start_warm_up()
