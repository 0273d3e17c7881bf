"""The app, page by page, in Streamlit's AppTest (no browser): the demo flow end to end, every
download parsed, bad uploads, a 3-sample table, the panel demo, session isolation, helpers.

Uses the shipped demo model and demo data (``paths.demo_dir()``; ``BULKFORMER_DEMO_DIR`` can
point elsewhere). Downloads are captured by recording what the download buttons hand to
Streamlit's media file manager (bytes, or the callable of a deferred download).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from bulkformer import paths
from tests.fetch import fake_zenodo
from tests.waiting import EVENT_WAIT_S

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
RUN_TIMEOUT = EVENT_WAIT_S  # one script run (model loading, reading 200 × 20,000 values): generous, never timed
JOB_TIMEOUT = EVENT_WAIT_S  # one background model run: waited on as an event (a slow machine must not fail it)

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


def read_download(name: str, **kwargs) -> pd.DataFrame:
    """A downloaded CSV read with the call users type: a header and data rows, the first column the key."""
    data = fetch(name)
    assert not data.startswith(b"#"), f"{name} is not a plain table"
    return pd.read_csv(io.BytesIO(data), index_col=0, keep_default_na=False, **kwargs)


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


def plotly_numbers(values: object) -> np.ndarray:
    """A number array of a plotly figure's JSON: plotly writes them as base64 ({"dtype", "bdata"})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=float)


# ------------------------------------------------------------------------------------- flows
def test_demo_flow_end_to_end_with_every_download() -> None:
    sheet = pd.read_csv(paths.demo_dir() / "demo_samples.csv", index_col=0)
    sample_ids = [str(s) for s in sheet.index]

    at = new_app()
    assert "Demo model trained on simulated data" in texts(at.warning)
    assert "deleted an hour after you last used the app" in texts(at.info)
    at.button(key="demo_button").click()
    at.run()
    assert_clean(at)

    # Upload & QC: the demo is loaded as if uploaded, QC metrics and plots shown
    assert "Upload & QC" in at.title[0].value
    m = metrics(at)
    assert m["Samples"] == f"{len(sample_ids):,}" and m["Model genes covered"].endswith("%")
    recognised = next(x.proto.help for x in at.metric if x.label == "Genes recognised")
    assert f"{m['Genes recognised']} of the {m['Genes read']} read" in recognised  # the share, and what the rest are
    assert "Demo data loaded" in texts(at.success)
    assert len(at.get("plotly_chart")) >= 3
    library = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                   if "Library size" in json.dumps(json.loads(c.proto.spec)["layout"].get("title")))
    lines = sorted(shape["y0"] for shape in library["layout"]["shapes"])  # the 1 M reads floor, the median
    assert lines == pytest.approx(sorted([1.0, float(np.median(plotly_numbers(library["data"][0]["y"])))]))
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
    assert "not how well it fills in a gene" in texts(at.caption)  # reconstruction is not a test
    assert "measured every one of the model's genes" in texts(at.success)
    # coloured by the sheet's first column (tissue): one trace per tissue in natural order, the palette's
    # colours in turn, as on the Embeddings map; every sample once

    from ui import plots

    tissue = pd.read_csv(paths.demo_dir() / "demo_samples.csv")["tissue"]
    (gene_plot,) = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")
                    if "model %{y:.2f}" in c.proto.spec]
    dots = [t for t in gene_plot if t.get("mode") == "markers"]
    assert [t["name"] for t in dots] == sorted(set(tissue))
    assert [t["marker"]["color"] for t in dots] == list(plots.PALETTE[:len(dots)])
    assert sum(len(t["text"]) for t in dots) == len(tissue)

    # Downloads: every file parsed
    go(at, "downloads")
    stem = "DEMO_demo_counts"
    emb = read_download(f"{stem}_sample_embeddings.csv")
    assert list(emb.index.astype(str)) == sample_ids and emb.shape[1] >= 2
    assert np.isfinite(emb.to_numpy(dtype=float)).all()

    for method in ("umap", "pca"):
        coords = pd.read_csv(io.BytesIO(fetch(f"{stem}_{method}_coordinates.csv")), comment="#")
        assert list(coords["sample_id"].astype(str)) == sample_ids
        assert coords[["x", "y"]].notna().all().all() and "tissue" in coords.columns

    report = fetch(f"{stem}_run_report.md").decode()
    assert "DEMO model" in report and "## Methods" in report and "demo_counts.csv.gz" in report

    import anndata

    adata = anndata.read_h5ad(io.BytesIO(fetch(f"{stem}_bulkformer.h5ad")))
    assert list(adata.obs_names) == sample_ids and "tissue" in adata.obs.columns
    assert adata.obsm["X_bulkformer"].shape == emb.shape and "X_umap" in adata.obsm
    assert adata.uns["bulkformer"]["is_demo"] == 1
    assert len(adata.uns["bulkformer"]["embedding_columns"]) == emb.shape[1]  # named as in the CSV

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
    deltas = " ".join(m.proto.delta for m in at.metric)
    assert "vs kNN" in deltas or "vs gene mean" in deltas  # the best baseline beside each number
    # The verdict at the top follows the documented rule, applied here by hand to the downloaded table
    lines = fetch("DEMO_demo_panel_counts_holdout.csv").decode().splitlines()
    assert not any(line.startswith("#") for line in lines)  # a plain table: notes go beside it
    table = pd.read_csv(io.BytesIO(fetch("DEMO_demo_panel_counts_holdout.csv")))
    overall = table[table["scope"] == "overall"].set_index("method")
    assert set(overall.index) == {"BulkFormer", "gene mean", "kNN"} and overall["n"].nunique() == 1
    r_gain = overall.loc["BulkFormer", "pearson"] - overall.drop("BulkFormer")["pearson"].max()
    mae_ratio = overall.loc["BulkFormer", "mae"] / overall.drop("BulkFormer")["mae"].min()
    better, worse = r_gain >= 0.02 or mae_ratio <= 0.95, r_gain <= -0.02 or mae_ratio >= 1.05
    expected = ("clearly beats" if better and not worse else "is worse than" if worse and not better
                else "is no better than")
    verdict = texts(at.markdown)
    assert f"Hold-out verdict: the model {expected} the simple baselines" in verdict
    if expected != "clearly beats":
        assert "do not rely on imputed genes from this model for this data" in verdict
    assert "Low coverage: the table measures only" in texts(at.warning)  # 1,000 of ~20,000 genes
    per_sample = table[(table["scope"] == "sample") & (table["method"] == "BulkFormer")]
    assert len(per_sample) == 24 and per_sample["n"].sum() == overall.loc["BulkFormer", "n"]
    assert "Unexpressed genes are easy" not in texts(at.caption) and "Within expression levels" in texts(at.caption)
    assert "of the model's values are within 0.5 of the real one (the best simple guess, " in texts(at.caption)

    # The genes the panel did not measure, filled in by the model
    assert "lacks" in texts(at.markdown)
    at.button(key="main_run_missing").click()
    at.run()
    wait_for(at, "main")
    table = at.dataframe[-1].value
    assert {"gene", "ensembl_id", "mean"} <= set(table.columns) and len(table) == 100
    assert f"Hold-out check: the model {expected} the simple baselines" in texts(at.caption) + texts(at.warning)
    missing = read_download("DEMO_demo_panel_counts_imputed_missing_genes.csv")
    assert missing.index.name == "gene"  # genes as rows, always; row key SYMBOL_ENSG…
    assert missing.index.str.rsplit("_", n=1).str[-1].str.startswith("ENSG").all()
    assert missing.shape[1] == 24 and missing.shape[0] > 15_000 and not missing.isna().any().any()

    unmeasured = next(i for i, g in enumerate(at.session_state["bf_prepared"][1].aligned.observed) if not g)
    at.selectbox(key="gene_pick").set_value(unmeasured).run()
    assert_clean(at)
    assert "not** measured" in texts(at.markdown)

    go(at, "downloads")
    stem = "DEMO_demo_panel_counts"
    sample_ids = [f"P{i:03d}" for i in range(1, 25)]
    assert "The demo model is not meant for your samples" not in texts(at.warning)  # the shipped demo data
    filled = read_download(f"{stem}_expression_filled.csv")
    assert list(filled.columns) == sample_ids and not filled.isna().any().any()  # numbers only
    filled.index = filled.index.str.rsplit("_", n=1).str[-1]  # SYMBOL_ENSG… → ENSG…
    assert "ALB" in {label.rsplit("_", 1)[0] for label in read_download(f"{stem}_expression_filled.csv").index}
    report = fetch(f"{stem}_expression_filled.csv.report.md").decode()
    assert "DEMO model" in report and "genes as rows" in report and "log1p TPM" in report
    prepared = at.session_state["bf_prepared"][1].aligned
    measured = np.asarray(prepared.observed)
    values = filled.loc[list(prepared.gene_ids), sample_ids].to_numpy().T
    np.testing.assert_allclose(values[:, measured], prepared.values[:, measured], atol=1e-5)  # kept as measured
    assert "hold-out" in fetch(f"{stem}_run_report.md").decode()
    assert "Verdict:" in fetch(f"{stem}_run_report.md").decode()
    DOWNLOADS.clear()
    at.radio(key="dl_imputed_which").set_value("missing").run()
    assert_clean(at)
    only = read_download(f"{stem}_expression_missing.csv")
    assert only.shape == missing.shape and set(only.index.str.rsplit("_", n=1).str[-1]) < set(filled.index)
    at.radio(key="dl_imputed_format").set_value("parquet").run()
    assert_clean(at)
    compact = pd.read_parquet(io.BytesIO(fetch(f"{stem}_expression_missing.parquet")))
    assert compact.shape == only.shape
    assert np.allclose(compact[sample_ids].to_numpy(), only[sample_ids].to_numpy(), atol=1e-5)
    at.radio(key="dl_imputed_format").set_value("csv").run()
    at.radio(key="dl_imputed_which").set_value("model").run()
    model_values = read_download(f"{stem}_expression_model.csv")
    model_values.index = model_values.index.str.rsplit("_", n=1).str[-1]
    assert not np.allclose(model_values.loc[list(prepared.gene_ids), sample_ids].to_numpy().T[:, measured],
                           prepared.values[:, measured], atol=1e-3)  # the reconstruction, not the input

    at.text_area(key="dl_gene_text").set_value("ALB, apoa1 NOTAGENE").run()
    at.button(key="dl_gene_run").click()
    at.run()
    assert_clean(at)
    assert "NOTAGENE" in texts(at.warning)
    wait_for(at, "genes")
    genes = pd.read_csv(io.BytesIO(fetch(f"{stem}_gene_embeddings.csv")), comment="#")
    assert genes.shape[0] == 2 * len(sample_ids)
    assert list(genes["sample_id"].astype(str).unique()) == sample_ids
    assert genes["gene_id"].nunique() == 2 and not genes.isna().any().any()


def test_three_samples_fall_back_to_pca_with_a_note() -> None:
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0).iloc[:, :3]
    at = new_app()
    upload(at, "three.csv", counts.to_csv().encode())
    assert metrics(at)["Samples"] == "3"
    assert "No sample stands out" not in texts(at.success)  # 3 samples cannot be compared: not checked
    assert "Outliers not checked" in texts(at.info) and "this table has 3" in texts(at.info)
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
    emb = read_download("DEMO_three_sample_embeddings.csv")
    assert "The demo model is not meant for your samples" in texts(at.warning)  # the user's own table
    assert list(emb.columns[:1]) == ["emb_0"] and list(emb.index) == list(counts.columns)
    coords = pd.read_csv(io.BytesIO(fetch("DEMO_three_pca_coordinates.csv")), comment="#")
    assert list(coords["treatment"]) == ["control", "drug", "drug"]
    assert fetch("DEMO_three_run_report.md").decode().count("DEMO model") >= 1

    # The hold-out check on 3 samples: no across-sample baseline, and the page says so
    go(at, "imputation")
    at.button(key="holdout_run").click()
    at.run()
    wait_for(at, "holdout")
    assert "Hold-out verdict: cannot judge" in texts(at.markdown)
    assert "too few other samples" in texts(at.info)
    assert not any(m.proto.delta for m in at.metric)  # nothing to compare with


@pytest.mark.parametrize(("name", "data", "says"), [
    ("x.csv", bytes(range(256)) * 64, "binary"),
    ("empty.csv", b"", "empty"),
    ("genes.csv", b"gene,s1,s2\nNOTAGENE1,1,2\nNOTAGENE2,3,4\n", "No recognisable human gene IDs"),
    ("few.csv", b"gene,s1,s2\nP53,1,2\nNOTAGENE2,3,4\nNOTAGENE3,5,6\n", "measures only 1 of the model's"),
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
    # the demo holds raw counts: calling them TPM is accepted, with a warning that says why not
    said = [w.value for w in at.warning if w.value.startswith("You said the values are TPM")]
    assert len(said) == 1 and "whole number" in said[0] and "while TPM add up to 1,000,000" in said[0]
    at.selectbox(key=key).set_value("counts").run()
    assert not [w for w in at.warning if w.value.startswith("You said")]


# ------------------------------------------------------------------------------ UI helpers
def test_category_colours_are_deterministic_and_shared() -> None:
    from ui import plots

    first = plots.category_colors(["liver", "brain", "blood", None, "liver"])
    again = plots.category_colors(pd.Series(["blood", "liver", "brain"]))
    assert {k: v for k, v in first.items() if k != "(missing)"} == {k: v for k, v in again.items() if k != "(missing)"}
    assert first["(missing)"] == plots.MISSING_COLOR and len(set(first.values())) == 4
    assert list(plots.category_colors(["S10", "S9", "S1"])) == ["S1", "S9", "S10", "(missing)"]
    assert plots.category_label(2.0) == "2" and plots.category_label(float("nan")) == "(missing)"


def test_the_same_run_is_not_started_twice() -> None:
    """A double click on a run button must not cancel and restart an identical run."""

    def script() -> None:
        import threading

        import streamlit as st

        from ui import progress

        gate = threading.Event()

        def work(progress, should_stop):  # noqa: ANN001, ANN202
            gate.wait(10)
            return "done"

        first = progress.start_job("genes", "key-1", "Gene embeddings", work)
        job = progress.jobs()["genes"].job
        again = progress.start_job("genes", "key-1", "Gene embeddings", work)
        same = progress.jobs()["genes"].job is job
        other = progress.start_job("genes", "key-2", "Gene embeddings", work)
        replaced = progress.jobs()["genes"].job is not job and progress.jobs()["genes"].key == "key-2"
        gate.set()
        st.write(f"{first} {again} {same} {other} {replaced}")

    at = AppTest.from_function(script).run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    assert at.markdown[0].value == "started running True started True"


def test_a_run_that_compiles_first_says_so_while_it_starts() -> None:
    def script() -> None:
        import threading

        from ui import progress, runs

        class LargeModel:  # what a 147M model on a CPU answers
            def compiles(self, n_samples: int) -> bool:
                return n_samples > 2

        gate = threading.Event()
        note = runs.compile_note(LargeModel(), 10)
        assert runs.compile_note(LargeModel(), 1) == ""
        progress.start_job("genes", "key", "Gene embeddings", lambda progress, should_stop: gate.wait(10),
                       starting_note=note)
        progress.job_panel("genes")
        gate.set()

    at = AppTest.from_function(script).run(timeout=RUN_TIMEOUT)
    assert_clean(at)
    (bar,) = at.get("progress")
    assert bar.proto.text == ("Gene embeddings: starting… Compiling the model for this computer first "
                              "(a one-off wait of up to a minute); then it runs faster.")


def _lab(hex_colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour, by the textbook formulas."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_palette_colours_are_far_apart_and_clusters_have_their_own() -> None:
    from itertools import combinations

    from ui import plots

    # the six demo tissues: no two closer than ΔE 40 (blood and liver were ΔE 22 apart before)
    tissues = plots.category_colors(["blood", "brain", "kidney", "liver", "lung", "muscle"])
    del tissues["(missing)"]
    assert min(np.linalg.norm(_lab(a) - _lab(b)) for a, b in combinations(tissues.values(), 2)) >= 40
    assert min(np.linalg.norm(_lab(a) - _lab(b)) for a, b in combinations(plots.PALETTE, 2)) >= 40
    assert not set(plots.PALETTE) & set(plots.CLUSTER_PALETTE)
    clusters = plots.category_colors([f"cluster {i}" for i in range(1, 11)], palette=plots.CLUSTER_PALETTE)
    assert set(clusters.values()) - {plots.MISSING_COLOR} == set(plots.CLUSTER_PALETTE)
    many = plots.category_colors([f"g{i}" for i in range(40)])
    assert len(set(many.values())) == 41  # 40 categories, 40 colours (and grey for missing)


def test_batch_size_says_automatic() -> None:
    from ui import runs

    assert runs.batch_size_label(0) == "automatic"
    assert runs.batch_size_label(1) == "1 sample" and runs.batch_size_label(64) == "64 samples"
    assert runs.batch_size_choices()[:3] == [0, 1, 2]
    at = new_app()
    go(at, "model")
    picker = at.selectbox(key="model_batch_pick")
    assert picker.value == 0 and picker.options[0] == "automatic"
    picker.set_value(8).run()
    assert_clean(at)
    assert at.session_state["bf_batch_size"] == 8


def test_time_left_in_words() -> None:
    from ui import progress

    assert progress.time_left_words(None).startswith("estimating the time left")
    assert progress.time_left_words(13) == "less than a minute left"
    assert progress.time_left_words(70) == "about a minute left"
    assert progress.time_left_words(4.5 * 60) == "about 4 minutes left"  # round(4.5) is 4
    assert progress.time_left_words(125) == "about 2 minutes left"
    assert progress.time_left_words(2 * 3600 + 20 * 60) == "about 2 hours 20 minutes left"
    assert progress.time_left_words(3600) == "about 1 hour left"


def test_format_seconds() -> None:
    from ui import progress

    assert progress.format_seconds(75) == "1 min 15 s" and progress.format_seconds(None) == ""

def test_maps_of_5000_samples_use_webgl() -> None:
    from ui import plots

    n = 5000
    rng = np.random.default_rng(0)
    ids = [f"S{i:05d}" for i in range(n)]
    meta = pd.DataFrame({"tissue": rng.choice(["liver", "brain", "blood"], n), "age": rng.uniform(20, 80, n)},
                        index=pd.Index(ids, name="sample_id"))
    for column in ("tissue", "age"):
        fig = plots.sample_scatter(rng.normal(size=(n, 2)), ids, metadata=meta, color_by=column,
                                   color_values=meta[column])
        assert all(trace.type == "scattergl" for trace in fig.data)
        assert sum(len(trace.x) for trace in fig.data) == n
    assert fig.data[0].marker.colorscale  # age: a colour scale, not 5,000 categories


def test_a_session_folder_is_removed_with_its_session(tmp_path: Path) -> None:
    import gc

    from ui import session

    folder = session._SessionFolder(tmp_path / "abc")
    (folder.path / "results").mkdir()
    assert folder.path.is_dir()
    del folder
    gc.collect()
    assert not (tmp_path / "abc").exists()


# ------------------------------------------------------------------------ sample sheets
def sheet_upload(at: AppTest, name: str, frame: pd.DataFrame) -> AppTest:
    at.file_uploader(key="sheet_uploader").set_value((name, frame.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert_clean(at)
    return at


def test_sample_sheet_id_chooser_near_names_and_the_uploaders_cross() -> None:
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0).iloc[:, :6]
    samples = list(counts.columns)
    at = new_app()
    upload(at, "six.csv", counts.to_csv().encode())

    # a sheet whose names are written differently: matched, and said so
    near = pd.DataFrame({"run": [f"Sample_{s}" for s in samples], "group": list("aabbcc")})
    sheet_upload(at, "near.csv", near)
    assert not at.error
    assert "Matched 6 sample(s) by near-identical names" in texts(at.info)
    assert list(at.session_state["bf_prepared"][1].metadata["group"]) == list("aabbcc")

    # a sheet that matches nothing: the error, but the table's QC report stays; the chooser is there
    odd = pd.DataFrame({"patient": [f"p{i}" for i in range(6)], "group": list("abcabc")})
    sheet_upload(at, "odd.csv", odd)
    assert "No column of odd.csv matches" in texts(at.error)
    assert metrics(at)["Samples"] == "6"
    chooser = next(s for s in at.selectbox if s.key and s.key.startswith("sheet_id_column"))
    assert chooser.options == ["Decide for me", "patient", "group"]
    chooser.set_value("patient").run()
    assert_clean(at)
    assert not at.error and "6 sample(s) have no row in the sample sheet" in texts(at.warning)
    assert "chosen by you" in texts(at.caption)

    # the uploader's ×: the sheet goes, the table stays
    at.file_uploader(key="sheet_uploader").set_value(None)
    at.run()
    assert_clean(at)
    assert at.session_state["bf_dataset"].sheet is None and at.session_state["bf_dataset"].table.name == "six.csv"
    assert metrics(at)["Samples"] == "6" and not at.error
    # … and a visit to another page, which empties the uploader widget, removes nothing
    sheet_upload(at, "near.csv", near)
    go(at, "home")
    go(at, "upload")
    assert at.session_state["bf_dataset"].sheet is not None


# ------------------------------------------------------------------ getting a published model
# The local Zenodo + Drive server and the shrunk '37M' of the download tests.
_server = fake_zenodo._server
zenodo = fake_zenodo.zenodo
published = fake_zenodo.published


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    import time

    for _ in range(600):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"still waiting for {what}")


def test_model_page_fetches_a_published_model_in_the_background(
    zenodo: fake_zenodo.FakeZenodo, published: dict, tmp_path: Path
) -> None:
    """Start → progress (on any page, in any session) → cancel → start again → done → selectable."""
    from bulkformer.fetch._published import FETCHER

    FETCHER.forget()
    zenodo.dribble[fake_zenodo.TINY_ID] = 0.02  # the checkpoint trickles in: time to look and cancel
    at = go(new_app(), "model")
    page = texts(at.markdown)
    assert "on the server that runs this app" in page
    assert str(tmp_path / "model") in page and str(tmp_path / "data") in page
    assert "BulkFormer-37M" not in " ".join(at.selectbox(key="model_spec_pick").options)
    pick = at.selectbox(key="fetch_pick")
    assert pick.value == "147M" and "BulkFormer-147M — about 588.0 MB" in pick.options
    pick.set_value("37M").run()
    assert f"about {len(published['ckpt']) / 1000:.1f} kB" in texts(at.caption)

    at.button(key="fetch_start").click().run()
    assert_clean(at)
    data_bytes = sum(len(published[k]) for k in ("bulkformer_gene_info.csv", "G_tcga.pt", "G_tcga_weight.pt"))
    _wait_until(lambda: FETCHER.current.job.progress[0] >= data_bytes, "the gene table and graph")
    go(at, "home")  # leave the page and come back: the download went on
    go(at, "model")
    (bar,) = at.get("progress")
    assert bar.proto.text.startswith("Downloading BulkFormer-37M: ") and " of " in bar.proto.text
    other = go(new_app(), "model")  # another session sees the same server-wide download
    assert other.get("progress")[0].proto.text.startswith("Downloading BulkFormer-37M")

    at.button(key="fetch_cancel").click().run()
    assert FETCHER.current.job.wait(30)
    at.run()
    assert_clean(at)
    assert FETCHER.current.job.status == "cancelled"
    assert "was cancelled" in texts(at.info)
    assert not (tmp_path / "model" / "bulkformer_37M.pt").exists()

    del zenodo.dribble[fake_zenodo.TINY_ID]
    at.button(key="fetch_start").click().run()
    assert FETCHER.current.job.wait(60)
    at.run()
    assert_clean(at)
    assert FETCHER.current.job.status == "done", FETCHER.current.job.error
    assert "is downloaded and checked" in texts(at.success)
    assert any("BulkFormer-37M" in o for o in at.selectbox(key="model_spec_pick").options)  # no restart
    at.button(key="fetch_use").click().run()
    assert_clean(at)
    assert at.session_state["bf_model_spec"] == "37M"
    assert metrics(at)["Model"] == "37M"
    FETCHER.forget()


def test_clusters_say_how_they_were_found_take_a_chosen_k_and_few_samples_are_named() -> None:
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0).iloc[:, :8]
    at = new_app()
    upload(at, "eight.csv", counts.to_csv().encode())
    run_main(at)
    at.selectbox(key="emb_color_by").set_value("Clusters found by the app").run()
    assert_clean(at)
    caption = texts(at.caption)
    assert "**Clusters:** k-means;" in caption and "the best silhouette among 2 to 7 groups" in caption

    from ui import plots

    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    dots = [t for t in traces if t.get("mode") == "markers"]
    assert dots and all(t["marker"]["color"] in plots.CLUSTER_PALETTE for t in dots)
    assert not {t["marker"]["color"] for t in dots} & set(plots.PALETTE)
    (names,) = [t for t in traces if t.get("mode") == "text"]  # 8 samples: each is named on the map
    assert sorted(names["text"]) == sorted(counts.columns)

    at.selectbox(key="emb_k").set_value(3).run()
    assert_clean(at)
    assert "3 groups, as you chose" in texts(at.caption)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["name"] for t in spec["data"] if t.get("mode") == "markers"} == {"cluster 1", "cluster 2", "cluster 3"}

    # the demo model is a v2 network: its last three embedding columns are named and explained
    table = at.dataframe[0].value
    assert list(table.columns[-3:]) == ["missing_share", "mean_expression", "nonzero_share"]
    assert "missing_share is the same for every sample" in texts(at.caption)


def test_a_reload_in_the_same_browser_keeps_data_and_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload is a new session; the browser's cookie (its token) lets it take the old state over.
    A link could not do this (nothing is in the URL), and a guessed token gets nothing."""
    from ui import reload

    monkeypatch.setattr(reload, "browser_token", lambda: None)  # a browser without the cookie yet
    first = new_app()
    token = first.session_state["bf_reload_token"]
    cookie_js = [e for e in first.get("iframe") if token in str(e.proto)]  # written on the first run
    assert cookie_js and "SameSite=Strict" in str(cookie_js[0].proto)
    first.button(key="demo_button").click()
    first.run()
    assert_clean(first)
    assert len(token) >= 40 and token not in str(first.query_params)
    assert not first.get("iframe")  # once per session
    first.session_state["bf_results"]["main"] = "a result"  # as a finished run leaves it
    first.session_state["bf_paces"] = {("predict", "table"): {"run": "a pace"}}  # what Predict's estimates read

    monkeypatch.setattr(reload, "browser_token", lambda: token)  # the reload sends the cookie
    again = new_app()
    assert again.session_state["bf_session_id"] == first.session_state["bf_session_id"]
    assert again.session_state["bf_dataset"].label == "demo_counts.csv.gz (demo cohort)"
    assert again.session_state["bf_results"]["main"] == "a result"
    assert again.session_state["bf_paces"] == {("predict", "table"): {"run": "a pace"}}
    assert again.session_state["bf_session_folder"] is first.session_state["bf_session_folder"]

    monkeypatch.setattr(reload, "browser_token", lambda: token[:-1] + ("A" if token[-1] != "A" else "B"))
    stranger = new_app()
    assert "bf_dataset" not in stranger.session_state
    assert stranger.session_state["bf_session_id"] != first.session_state["bf_session_id"]


def test_janitor_deletes_the_folders_of_ended_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder goes as soon as no connected session and no reload of its browser holds it,
    whatever other sessions do (Streamlit itself drops a session's state only when a later
    session disconnects). The server's live sessions are faked: AppTest has no server."""
    import threading
    import time
    import uuid

    from streamlit import runtime

    from ui import keys, reload, session

    ended, connected, reloadable, foreign = (uuid.uuid4().hex for _ in range(4))
    for name in (ended, connected, reloadable, foreign):
        (paths.cache_dir() / name).mkdir(parents=True)
    owners = session._Owners(by_session={"session-ended": ended, "session-connected": connected},
                             made={ended, connected, reloadable})
    registry = {"browser": reload.Kept({keys.K_SID: reloadable}, time.time())}

    class Server:
        def is_active_session(self, session_id: str) -> bool:
            return session_id == "session-connected"

    monkeypatch.setattr(runtime, "exists", lambda: True)
    monkeypatch.setattr(runtime, "get_instance", lambda: Server())
    session._sweep_session_folders(owners, registry, threading.Lock())
    # another server's recent folder (foreign) is not this janitor's to delete
    assert sorted(p.name for p in paths.cache_dir().iterdir()) == sorted([connected, reloadable, foreign])
    assert owners.by_session == {"session-connected": connected} and ended not in owners.made


def test_predict_page_evaluates_tissue_on_the_demo_cohort() -> None:
    at = new_app()
    at.button(key="demo_button").click()
    at.run()
    go(at, "predict")
    assert "run BulkFormer on the Embeddings page first" in texts(at.info)
    run_main(at)
    go(at, "predict")
    at.selectbox(key="pred_column").set_value("outlier_type")
    button(at, "Evaluate").click()
    at.run()
    assert "Only 6 samples have a value in 'outlier_type'" in texts(at.error)
    assert "predict" not in at.session_state["bf_jobs"]

    at.selectbox(key="pred_column").set_value("tissue")
    button(at, "Evaluate").click()
    at.run()
    assert_clean(at)
    wait_for(at, "predict")
    result = at.session_state["bf_results"]["predict"].run
    assert result.target.kind == "classification" and len(result.target.classes) == 6
    assert result.summary("embeddings").p_value <= 0.01 and result.summary("pca").p_value <= 0.01
    table = at.dataframe[0].value
    assert list(table.index) == ["BulkFormer embeddings", "PCA of log1p TPM", "both together"]
    assert all("±" in cell for cell in table["balanced accuracy"])
    assert "Guessing scores about 0.17 here." in at.dataframe[0].proto.columns  # 1 of 6 tissues by chance
    assert result.verdict in texts(at.success) + texts(at.warning) + texts(at.info)
    assert "stratified 5-fold over 200 samples" in texts(at.caption)
    assert len(at.get("plotly_chart")) >= 1  # the confusion matrix (six tissues: no ROC curve)
    largest = pd.read_csv(paths.demo_dir() / "demo_samples.csv", index_col=0)["tissue"].value_counts().iloc[0]
    assert (f"{largest} of 200 samples) would score accuracy {largest / 200:.2f} and balanced accuracy 0.17 "
            "(1 of 6 classes right)") in texts(at.caption)  # the majority-class baseline under the matrix
    stem = "DEMO_demo_counts_predict_tissue"
    folds = pd.read_csv(io.BytesIO(fetch(f"{stem}_folds.csv")), comment="#")
    assert len(folds) == 3 * 5 and folds["n_test"].sum() == 3 * 200
    predictions = pd.read_csv(io.BytesIO(fetch(f"{stem}_predictions.csv")), comment="#")
    oof = predictions[predictions["features"] == "embeddings"]
    sheet = pd.read_csv(paths.demo_dir() / "demo_samples.csv", index_col=0)
    assert sorted(oof["sample_id"]) == sorted(sheet.index)
    assert (oof.set_index("sample_id")["observed"] == sheet.loc[oof["sample_id"], "tissue"]).all()
    assert "## Predicting tissue" in fetch(f"{stem}_report.md").decode()


def test_embeddings_map_shows_how_the_groups_separate_against_the_expression_baseline() -> None:
    """Coloured by tissue, a box beside the map gives the silhouette of the tissues in the model's
    embeddings and in PCA of the expression (checked here with scikit-learn), with the verdict;
    the baseline map can be chosen, a numeric column is refused, the report records it."""

    from sklearn.metrics import silhouette_score

    at = new_app()
    at.button(key="demo_button").click()
    at.run()
    run_main(at)
    assert at.selectbox(key="emb_color_by").value == "tissue"
    assert "How clearly do the tissue groups separate?" in texts(at.markdown)
    outcome = at.session_state["bf_results"]["main"]
    sheet = pd.read_csv(paths.demo_dir() / "demo_samples.csv", index_col=0)
    tissue = sheet.loc[list(outcome.run.result.sample_ids), "tissue"].to_numpy()
    emb = outcome.run.result.sample_embedding.astype(np.float64)
    sd = emb.std(0)
    model_sil = silhouette_score((emb - emb.mean(0)) / np.where(sd > 0, sd, 1), tissue)
    recorded = json.loads((paths.demo_dir() / "metrics.json").read_text())["separation"]["pca_silhouette"]
    m = metrics(at)
    assert m["BulkFormer embeddings"] == f"{model_sil:.2f}"
    assert m["PCA of expression (baseline)"] == f"{recorded:.2f}"  # the demo's recorded baseline
    verdict = "separate these groups less well than a PCA of the expression itself"
    assert model_sil < recorded - 0.05 and verdict in texts(at.warning)  # bad news for the model: not green
    assert "200 samples in 6 groups" in texts(at.caption)

    at.radio(key="emb_method").set_value("PCA of expression (baseline)").run()
    assert_clean(at)
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert "PCA of expression (baseline, no model)" in spec["layout"]["title"]["text"]
    dots = [t for t in spec["data"] if t.get("mode") == "markers"]
    assert sorted(t["name"] for t in dots) == sorted(set(tissue))
    # the map is the first two principal components of the measured genes' log1p TPM (an SVD here)
    from bulkformer.model._bulkformer_model import BulkFormerModel

    aligned = BulkFormerModel.load("demo", device="cpu").prepare(paths.demo_dir() / "demo_counts.csv.gz").aligned
    x = aligned.values[:, aligned.observed].astype(np.float64)
    u, s, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)

    for axis, pc in (("x", u[:, 0] * s[0]), ("y", u[:, 1] * s[1])):
        shown = np.sort(np.abs(np.concatenate([plotly_numbers(t[axis]) for t in dots])))
        np.testing.assert_allclose(shown, np.sort(np.abs(pc)), rtol=1e-3, atol=1e-3)
    assert verdict in texts(at.warning)  # the box stays beside the baseline map

    at.selectbox(key="emb_color_by").set_value("age").run()
    assert_clean(at)
    assert "Not measured: it holds numbers with" in texts(at.caption)
    assert "BulkFormer embeddings" not in metrics(at)

    go(at, "downloads")
    report = fetch("DEMO_demo_counts_run_report.md").decode()
    assert "Group separation (tissue): silhouette" in report and verdict in report


def test_predict_page_says_what_a_within_cohort_score_can_say_and_saves_a_predictor_that_finds_tissues() -> None:
    """Issue #27 on the page: the words on within-cohort scores, the second-cohort form, and a
    "Save this predictor" .zip (plain numbers) that, loaded back, predicts the demo tissues."""
    from bulkformer.analysis import predict

    at = new_app()
    at.button(key="demo_button").click()
    at.run()
    run_main(at)
    go(at, "predict")
    at.selectbox(key="pred_column").set_value("tissue")
    at.selectbox(key="pred_permutations").set_value(99)
    button(at, "Evaluate").click()
    at.run()
    wait_for(at, "predict")
    assert "A within-cohort score **can** say" in texts(at.markdown)
    assert "Score on this cohort" in [b.label for b in at.button]
    at.selectbox(key="pred_save_features").set_value("pca").run()
    assert_clean(at)
    saved = predict.load_predictor(fetch("DEMO_demo_counts_predict_tissue_pca_predictor.zip"))
    assert saved.features == "pca" and saved.column == "tissue" and saved.cv_scores["balanced_accuracy"]["value"] > 0.9
    import zipfile

    with zipfile.ZipFile(io.BytesIO(fetch("DEMO_demo_counts_predict_tissue_pca_predictor.zip"))) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "predictor.json"]  # JSON + arrays: nothing to unpickle
    aligned = at.session_state["bf_prepared"][1].aligned
    table = saved.apply(None, aligned.values, aligned.sample_ids, aligned.gene_ids, aligned.observed,
                        model_checksum=saved.model_checksum)  # the model check has its own tests
    sheet = pd.read_csv(paths.demo_dir() / "demo_samples.csv", index_col=0)
    assert (table["predicted"] == sheet.loc[table.index, "tissue"]).mean() > 0.95  # the simulation's tissues

    # an external validation's outcome, as the background job hands it over, is shown beside the CV
    from ui.runs import Held

    held = at.session_state["bf_results"]["predict"]
    cohort = predict.CohortData.of(at.session_state["bf_prepared"][1],
                                   at.session_state["bf_results"]["main"].run.result.sample_embedding)
    external = predict.validate_external(held.run, cohort, cohort, model_checksum=saved.model_checksum,
                                         n_bootstrap=50)
    at.session_state["bf_results"]["predict_external"] = Held((external, held.key), "external", held.table_fp)
    at.run()
    assert_clean(at)
    assert f"**On the second cohort:** {external.verdict}" in texts(at.success) + texts(at.warning) + texts(at.info)
    assert f"Genes: {external.gene_note}" in texts(at.caption)
    assert "## Predicting tissue on a second cohort" in fetch("DEMO_demo_counts_predict_tissue_external_report.md").decode()
