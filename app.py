"""BulkFormer Studio: the Streamlit app. Start it with ``streamlit run app.py``.

This file only sets the page up and routes to the pages in ``pages/``; every page is a thin
layer of widgets and plots over the ``bulkformer`` package.
"""

from __future__ import annotations

import logging

import streamlit as st

from pages import _ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title=_ui.APP_TITLE, page_icon=":material/biotech:", layout="wide",
                   initial_sidebar_state="expanded")
_ui.init_session()

pages = [
    st.Page(_ui.PAGES["home"], title="Home", icon=":material/home:", default=True),
    st.Page(_ui.PAGES["upload"], title="Upload & QC", icon=":material/upload_file:", url_path="upload"),
    st.Page(_ui.PAGES["embeddings"], title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
    st.Page(_ui.PAGES["imputation"], title="Imputation", icon=":material/auto_fix_high:", url_path="imputation"),
    st.Page(_ui.PAGES["predict"], title="Predict", icon=":material/model_training:", url_path="predict"),
    st.Page(_ui.PAGES["downloads"], title="Downloads", icon=":material/download:", url_path="downloads"),
    st.Page(_ui.PAGES["model"], title="Model", icon=":material/memory:", url_path="model"),
]
current = st.navigation(pages)

with st.sidebar:
    st.markdown(f"### :material/biotech: {_ui.APP_TITLE}")
    data = _ui.dataset()
    st.caption(f"**Data:** {data.label}" if data else "**Data:** none loaded yet")
    line = _ui.model_line()  # shown once a page has loaded the model: the page comes first
    if line:
        st.caption(f"**Model:** {line}")
    _ui.sidebar_jobs()
    st.radio(
        "Save pictures as", ["png", "svg"], key=_ui.K_IMAGE_FORMAT, horizontal=True,
        format_func=str.upper,
        help="Format used by the camera button above each plot: PNG for slides, SVG for editing "
             "in Illustrator or Inkscape.",
    )
    _ui.write_reload_cookie()

current.run()
