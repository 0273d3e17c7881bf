"""The Streamlit app's shared pieces, one module per concern; pages import the modules they use.

Streamlit is imported only here, in ``app.py`` and in the pages: the ``bulkformer`` package
does every piece of reading, model math and exporting, and this package only keeps what one
browser session has done (its upload, its runs, its background jobs) and draws it.

- ``keys``: the ``st.session_state`` keys and the page files, so pages never disagree.
- ``reload``: a browser's state kept across a reload of the page (cookie token, registry).
- ``session``: the session's id, private cache folder and its janitor, defaults, one-off messages.
- ``uploads``: uploads, reading choices, the prepared table, gene names for pickers.
- ``frame``: every page's start (title, model, demo banners), errors shown as messages.
- ``jobs``: background jobs, their progress panel and the sidebar's note of them.
- ``plots``: the public colour palettes, category colours, plots and download buttons.
- ``runs``: the runs the app starts, their outcomes and cache keys; the batch-size setting.
"""
