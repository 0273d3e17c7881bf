"""The app, page by page, in Streamlit's AppTest (no browser): the demo flow end to end, every
download parsed, bad uploads, a 3-sample table, the panel demo, session isolation, helpers.

Uses the shipped demo model and demo data (``paths.demo_dir()``; ``BULKFORMER_DEMO_DIR`` can
point elsewhere). Downloads are captured by recording what the download buttons hand to
Streamlit's media file manager (bytes, or the callable of a deferred download).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from bulkformer import paths

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
RUN_TIMEOUT = 60  # seconds for one script run (model loading, reading 200 × 20,000 values)
JOB_TIMEOUT = 240  # seconds for one background model run

pytestmark = pytest.mark.skipif(
    not (paths.demo_dir() / "demo_counts.csv.gz").is_file() or not (paths.demo_model_dir() / "config.json").is_file(),
    reason="demo assets (assets/demo and assets/demo/model) are not built",
)

DOWNLOADS: dict[str, bytes | str | Callable[[], object]] = {}


class _RecordingMediaFileManager(MediaFileManager):
    """Keeps every download button's data by file name, as the browser would receive it."""

    def add(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if file_name:
            DOWNLOADS[file_name] = path_or_data
        return super().add(path_or_data, mimetype, coordinates, file_name, is_for_static_download)

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            DOWNLOADS[file_name] = data_callable
        return super().add_deferred(data_callable, mimetype, coordinates, file_name, **kwargs)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", _RecordingMediaFileManager)
    monkeypatch.setenv("BULKFORMER_CACHE_DIR", str(tmp_path / "cache"))
    DOWNLOADS.clear()
    yield


def fetch(name: str) -> bytes:
    data = DOWNLOADS[name]
    if callable(data):
        data = data()
    if isinstance(data, io.IOBase):
        data = data.read()
    return data.encode() if isinstance(data, str) else bytes(data)


# ----------------------------------------------------------------------------------- helpers
def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    """No exception reached the page (and so no traceback)."""
    assert not at.exception, [e.value for e in at.exception]


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert_clean(at)
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def wait_for(at: AppTest, kind: str) -> None:
    """Let the background job finish, then rerun so the page collects its result."""
    entry = at.session_state["bf_jobs"].get(kind)
    if entry is not None:
        assert entry.job.wait(JOB_TIMEOUT), f"{kind} job still running after {JOB_TIMEOUT} s"
    at.run()
    assert_clean(at)
    assert kind not in at.session_state["bf_jobs"]
    assert not at.error, texts(at.error)


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    go(at, "upload")
    at.file_uploader(key="table_uploader").set_value((name, data, "text/csv"))
    at.run()
    assert_clean(at)
    return at


def run_main(at: AppTest) -> None:
    go(at, "embeddings")
    button(at, "Run BulkFormer").click()
    at.run()
    assert_clean(at)
    wait_for(at, "main")


# ------------------------------------------------------------------------------------- flows
def test_demo_flow_end_to_end_with_every_download() -> None:
    sheet = pd.read_csv(paths.demo_dir() / "demo_samples.csv", index_col=0)
    sample_ids = [str(s) for s in sheet.index]

    at = new_app()
    assert "Demo model trained on simulated data" in texts(at.warning)
    assert "deleted when the session ends" in texts(at.info)
    at.button(key="demo_button").click()
    at.run()
    assert_clean(at)

    # Upload & QC: the demo is loaded as if uploaded, QC metrics and plots shown
    assert "Upload & QC" in at.title[0].value
    m = metrics(at)
    assert m["Samples"] == f"{len(sample_ids):,}" and m["Model genes covered"].endswith("%")
    assert "Demo data loaded" in texts(at.success)
    assert len(at.get("plotly_chart")) >= 3
    assert any("outlier" in w.value for w in at.warning)
    guesses = at.markdown
    assert any("Raw read counts" in g.value for g in guesses) and any("Ensembl" in g.value for g in guesses)

    # Embeddings: a background run with a progress bar and a Cancel button …
    go(at, "embeddings")
    button(at, "Run BulkFormer").click()
    at.run()
    assert_clean(at)
    assert at.session_state["bf_jobs"]["main"].job.status in ("pending", "running")
    assert at.get("progress") and "Running BulkFormer" in at.get("progress")[0].proto.text
    at.button(key="bf_cancel_main").click()
    at.run()
    assert at.session_state["bf_jobs"]["main"].job.wait(JOB_TIMEOUT)
    at.run()
    assert "was cancelled" in texts(at.info) and not at.session_state["bf_results"]
    # … that keeps running while the user looks at another page …
    button(at, "Run BulkFormer").click()
    at.run()
    job = at.session_state["bf_jobs"]["main"].job
    go(at, "upload")
    go(at, "model")
    assert at.session_state["bf_jobs"]["main"].job is job and job.status in ("running", "done")
    go(at, "embeddings")
    wait_for(at, "main")
    # … then the map, coloured by the first sample-sheet column
    m = metrics(at)
    assert m["Samples"] == f"{len(sample_ids):,}"
    assert at.selectbox(key="emb_color_by").value == "tissue"
    assert len(at.get("plotly_chart")) == 1
    assert not at.info  # no projection note for 200 samples
    at.radio(key="emb_method").set_value("PCA").run()
    at.selectbox(key="emb_color_by").set_value("Clusters found by the app").run()
    assert_clean(at)

    # A second run with the same file and options: from the session's disk cache
    at.session_state["bf_results"].clear()
    button(at, "Run BulkFormer").click()
    at.run()
    wait_for(at, "main")
    assert metrics(at)["Time"] == "from cache"

    # Imputation, one gene: the model's values against the measured ones
    go(at, "imputation")
    at.selectbox(key="gene_pick").set_value(0).run()
    assert_clean(at)
    assert "was measured in your table" in texts(at.markdown)
    assert "measured every one of the model's genes" in texts(at.success)

    # Downloads: every file parsed
    go(at, "downloads")
    stem = "DEMO_demo_counts"
    emb = pd.read_csv(io.BytesIO(fetch(f"{stem}_sample_embeddings.csv")), index_col=0)
    assert list(emb.index.astype(str)) == sample_ids and emb.shape[1] >= 2
    assert np.isfinite(emb.to_numpy(dtype=float)).all()

    for method in ("umap", "pca"):
        coords = pd.read_csv(io.BytesIO(fetch(f"{stem}_{method}_coordinates.csv")))
        assert list(coords["sample_id"].astype(str)) == sample_ids
        assert coords[["x", "y"]].notna().all().all() and "tissue" in coords.columns

    report = fetch(f"{stem}_run_report.md").decode()
    assert "DEMO model" in report and "## Methods" in report and "demo_counts.csv.gz" in report

    import anndata

    adata = anndata.read_h5ad(io.BytesIO(fetch(f"{stem}_bulkformer.h5ad")))
    assert list(adata.obs_names) == sample_ids and "tissue" in adata.obs.columns
    assert adata.obsm["X_bulkformer"].shape == emb.shape and "X_umap" in adata.obsm
    assert adata.uns["bulkformer"]["is_demo"] == 1


    # Model page
    go(at, "model")
    assert metrics(at)["Model"] == "demo"
    assert len(at.code[0].value) == 64


def test_panel_demo_lists_and_downloads_the_missing_genes() -> None:
    at = new_app()
    at.button(key="panel_button").click()
    at.run()
    assert_clean(at)
    covered = metrics(at)["Model genes covered"]
    assert int(covered.rstrip("%")) < 10
    assert any("Gene symbols" in g.value for g in at.markdown)

    # Imputation hold-out check on the panel's measured genes
    go(at, "imputation")
    at.slider(key="holdout_fraction").set_value(0.2)
    at.button(key="holdout_run").click()
    at.run()
    assert_clean(at)
    wait_for(at, "holdout")
    m = metrics(at)
    assert -1 <= float(m["Pearson correlation"]) <= 1 and float(m["Mean absolute error"]) >= 0
    assert int(m["Values checked"].replace(",", "")) > 1000
    per_sample = pd.read_csv(io.BytesIO(fetch("DEMO_demo_panel_counts_holdout_per_sample.csv")), index_col=0)
    assert per_sample.shape[0] == 24 and {"pearson", "spearman", "mae", "n"} <= set(per_sample.columns)

    # The genes the panel did not measure, filled in by the model
    assert "lacks" in texts(at.markdown)
    at.button(key="main_run_missing").click()
    at.run()
    wait_for(at, "main")
    table = at.dataframe[-1].value
    assert {"gene", "ensembl_id", "mean"} <= set(table.columns) and len(table) == 100
    missing = pd.read_csv(io.BytesIO(fetch("DEMO_demo_panel_counts_imputed_missing_genes.csv")), index_col=0)
    assert missing.shape[0] == 24 and missing.shape[1] > 15_000 and not missing.isna().any().any()

    unmeasured = next(i for i, g in enumerate(at.session_state["bf_prepared"][1].aligned.observed) if not g)
    at.selectbox(key="gene_pick").set_value(unmeasured).run()
    assert_clean(at)
    assert "not** measured" in texts(at.markdown)

    go(at, "downloads")
    stem = "DEMO_demo_panel_counts"
    sample_ids = [f"P{i:03d}" for i in range(1, 25)]
    imputed = pd.read_csv(io.BytesIO(fetch(f"{stem}_imputed_all_genes.csv")), index_col=0)
    assert list(imputed.index.astype(str)) == sample_ids
    assert imputed.shape[1] > 15_000 and not imputed.isna().any().any()
    assert any(c.startswith("ALB (ENSG") for c in imputed.columns)
    assert "hold-out" in fetch(f"{stem}_run_report.md").decode()
    DOWNLOADS.clear()
    at.radio(key="dl_imputed_which").set_value("missing").run()
    assert_clean(at)
    only = pd.read_csv(io.BytesIO(fetch(f"{stem}_imputed_missing_genes.csv")), index_col=0)
    assert only.shape == missing.shape and set(only.columns) < set(imputed.columns)
    at.radio(key="dl_imputed_format").set_value("parquet").run()
    assert_clean(at)
    compact = pd.read_parquet(io.BytesIO(fetch(f"{stem}_imputed_missing_genes.parquet")))
    assert compact.shape == only.shape and np.allclose(compact.to_numpy(), only.to_numpy(), atol=1e-5)

    at.text_area(key="dl_gene_text").set_value("ALB, apoa1 NOTAGENE").run()
    at.button(key="dl_gene_run").click()
    at.run()
    assert_clean(at)
    assert "NOTAGENE" in texts(at.warning)
    wait_for(at, "genes")
    genes = pd.read_csv(io.BytesIO(fetch(f"{stem}_gene_embeddings.csv")))
    assert genes.shape[0] == 2 * len(sample_ids)
    assert list(genes["sample_id"].astype(str).unique()) == sample_ids
    assert genes["gene_id"].nunique() == 2 and not genes.isna().any().any()


def test_three_samples_fall_back_to_pca_with_a_note() -> None:
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0).iloc[:, :3]
    at = new_app()
    upload(at, "three.csv", counts.to_csv().encode())
    assert metrics(at)["Samples"] == "3"
    sheet = pd.DataFrame({"sample": counts.columns, "treatment": ["control", "drug", "drug"]})
    at.file_uploader(key="sheet_uploader").set_value(("sheet.csv", sheet.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert_clean(at)
    assert "sheet.csv" in texts(at.markdown)
    run_main(at)
    assert "PCA" in texts(at.info) and "UMAP needs at least" in texts(at.info)
    assert at.selectbox(key="emb_color_by").value == "treatment"
    assert "PCA map of 3 samples" in str(at.get("plotly_chart")[0].proto.spec)
    go(at, "downloads")
    emb = pd.read_csv(io.BytesIO(fetch("DEMO_three_sample_embeddings.csv")), index_col=0)
    assert list(emb.columns[:1]) == ["emb_0"] and list(emb.index) == list(counts.columns)
    coords = pd.read_csv(io.BytesIO(fetch("DEMO_three_pca_coordinates.csv")))
    assert list(coords["treatment"]) == ["control", "drug", "drug"]


@pytest.mark.parametrize(("name", "data", "says"), [
    ("x.csv", bytes(range(256)) * 64, "binary"),
    ("empty.csv", b"", "empty"),
    ("genes.csv", b"gene,s1,s2\nNOTAGENE1,1,2\nNOTAGENE2,3,4\n", "No recognisable human gene IDs"),
])
def test_bad_uploads_show_a_message_not_a_traceback(name: str, data: bytes, says: str) -> None:
    at = new_app()
    upload(at, name, data)
    assert at.error, "a bad file must be explained"
    message = texts(at.error)
    assert "Traceback" not in message and says in message
    assert not at.metric  # no QC report for an unreadable file
    go(at, "embeddings")
    assert "could not be read" in texts(at.error)


def test_sessions_are_isolated() -> None:
    a, b = new_app(), new_app()
    assert a.session_state["bf_session_id"] != b.session_state["bf_session_id"]
    a.button(key="demo_button").click()
    a.run()
    assert "bf_dataset" in a.session_state and "bf_dataset" not in b.session_state
    folder_a = a.session_state["bf_session_folder"].path
    assert folder_a.parent == paths.cache_dir() and folder_a.name == a.session_state["bf_session_id"]


def test_upload_page_says_the_size_limit_and_overrides_rerun_prepare() -> None:
    at = new_app()
    go(at, "upload")
    assert "Largest file: 1,024 MB" in texts(at.caption)
    at.button(key="demo_button_upload").click()
    at.run()
    assert_clean(at)
    key = next(s.key for s in at.selectbox if s.key and s.key.startswith("override_value_type"))
    at.selectbox(key=key).set_value("tpm").run()
    assert_clean(at)
    assert "You chose" in texts(at.markdown)
    assert at.session_state["bf_overrides"]["value_type"] == "tpm"
    assert metrics(at)["Samples"] == "200"
    assert "Library sizes are shown for raw counts only" in texts(at.caption)


# ------------------------------------------------------------------------------ UI helpers
def test_category_colours_are_deterministic_and_shared() -> None:
    from pages import _ui

    first = _ui.category_colors(["liver", "brain", "blood", None, "liver"])
    again = _ui.category_colors(pd.Series(["blood", "liver", "brain"]))
    assert {k: v for k, v in first.items() if k != "(missing)"} == {k: v for k, v in again.items() if k != "(missing)"}
    assert first["(missing)"] == _ui.MISSING_COLOR and len(set(first.values())) == 4
    assert list(_ui.category_colors(["S10", "S9", "S1"])) == ["S1", "S9", "S10", "(missing)"]
    assert _ui.category_label(2.0) == "2" and _ui.category_label(float("nan")) == "(missing)"


def test_the_same_run_is_not_started_twice() -> None:
    """A double click on a run button must not cancel and restart an identical run."""

    def script() -> None:
        import threading

        import streamlit as st

        from pages import _ui

        gate = threading.Event()

        def work(progress, should_stop):  # noqa: ANN001, ANN202
            gate.wait(10)
            return "done"

        first = _ui.start_job("genes", "key-1", "Gene embeddings", work)
        job = _ui.jobs()["genes"].job
        again = _ui.start_job("genes", "key-1", "Gene embeddings", work)
        same = _ui.jobs()["genes"].job is job
        other = _ui.start_job("genes", "key-2", "Gene embeddings", work)
        replaced = _ui.jobs()["genes"].job is not job and _ui.jobs()["genes"].key == "key-2"
        gate.set()
        st.write(f"{first} {again} {same} {other} {replaced}")

    at = AppTest.from_function(script).run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    assert at.markdown[0].value == "started running True started True"


def test_a_run_that_compiles_first_says_so_while_it_starts() -> None:
    def script() -> None:
        import threading

        from pages import _ui

        class LargeModel:  # what a 147M model on a CPU answers
            def compiles(self, n_samples: int) -> bool:
                return n_samples > 2

        gate = threading.Event()
        note = _ui.compile_note(LargeModel(), 10)
        assert _ui.compile_note(LargeModel(), 1) == ""
        _ui.start_job("genes", "key", "Gene embeddings", lambda progress, should_stop: gate.wait(10),
                      starting_note=note)
        _ui.job_panel("genes")
        gate.set()

    at = AppTest.from_function(script).run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    (bar,) = at.get("progress")
    assert bar.proto.text == ("Gene embeddings: starting… Compiling the model for this computer first "
                              "(about 30 s, once); then it runs faster.")


def test_format_seconds() -> None:
    from pages import _ui

    assert _ui.format_seconds(75) == "1 min 15 s" and _ui.format_seconds(None) == ""

def test_maps_of_5000_samples_use_webgl() -> None:
    from pages import _ui

    n = 5000
    rng = np.random.default_rng(0)
    ids = [f"S{i:05d}" for i in range(n)]
    meta = pd.DataFrame({"tissue": rng.choice(["liver", "brain", "blood"], n), "age": rng.uniform(20, 80, n)},
                        index=pd.Index(ids, name="sample_id"))
    for column in ("tissue", "age"):
        fig = _ui.sample_scatter(rng.normal(size=(n, 2)), ids, metadata=meta, color_by=column,
                                 color_values=meta[column])
        assert all(trace.type == "scattergl" for trace in fig.data)
        assert sum(len(trace.x) for trace in fig.data) == n
    assert fig.data[0].marker.colorscale  # age: a colour scale, not 5,000 categories


def test_a_session_folder_is_removed_with_its_session(tmp_path: Path) -> None:
    import gc

    from pages import _ui

    folder = _ui._SessionFolder(tmp_path / "abc")
    (folder.path / "results").mkdir()
    assert folder.path.is_dir()
    del folder
    gc.collect()
    assert not (tmp_path / "abc").exists()
