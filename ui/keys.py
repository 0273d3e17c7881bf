"""The names every page agrees on: the ``st.session_state`` keys and the page files."""

from __future__ import annotations

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
K_TABLE_FILE_ID = "bf_table_file_id"  # the uploader's id of the table file read last
K_SHEET_FILE_ID = "bf_sheet_file_id"  # the uploader's id of the sample-sheet file read last
K_TABLE_SLOT = "bf_table_slot"  # (the table shown on Upload & QC, which of two slots holds it)
K_PACES = "bf_paces"  # paces measured by this session's finished runs, per kind of run and table

PAGES = {
    "home": "pages/home.py",
    "upload": "pages/upload.py",
    "embeddings": "pages/embeddings.py",
    "imputation": "pages/imputation.py",
    "downloads": "pages/downloads.py",
    "model": "pages/model.py",
    "predict": "pages/predict.py",
}
