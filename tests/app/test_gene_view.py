"""Imputation page, "One gene": a measured gene that is not part of the model (XIST, a lncRNA) can be
picked and shows the measured values alone, labelled as such (issue #26 item 7). Driven in Streamlit's
AppTest with the shipped demo model, as tests/app/test_pages.py does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bulkformer import paths
from tests.waiting import EVENT_WAIT_S

APP = str(Path(__file__).resolve().parents[2] / "app.py")
XIST = "ENSG00000229807"
XIST_OPTION = f"XIST ({XIST}) · measured, not in the model"

pytestmark = pytest.mark.skipif(
    not (paths.demo_dir() / "demo_counts.csv.gz").is_file() or not (paths.demo_model_dir() / "config.json").is_file(),
    reason="demo assets (assets/demo and assets/demo/model) are not built",
)


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("BULKFORMER_CACHE_DIR", str(tmp_path / "cache"))
    yield


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def numbers(values: object) -> np.ndarray:
    """A number array of a plotly figure's JSON (plotly writes them as base64 {"dtype", "bdata"})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=float)


def test_a_measured_gene_outside_the_model_shows_its_measured_values() -> None:
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0).iloc[:, :12]
    assert XIST in counts.index  # the demo cohort measures XIST, the female marker
    sheet = pd.read_csv(paths.demo_dir() / "demo_samples.csv").iloc[:12][["sample_id", "sex"]]

    at = AppTest.from_file(APP, default_timeout=EVENT_WAIT_S)
    at.run()
    at.switch_page("pages/upload.py").run()
    at.file_uploader(key="table_uploader").set_value(("xist.csv", counts.to_csv().encode(), "text/csv"))
    at.run()
    at.file_uploader(key="sheet_uploader").set_value(("sheet.csv", sheet.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert_clean(at)

    at.switch_page("pages/imputation.py").run()
    next(b for b in at.button if b.key == "main_run_gene").click()
    at.run()
    entry = at.session_state["bf_jobs"].get("main")
    if entry is not None:
        assert entry.job.wait(EVENT_WAIT_S), "the main run did not end"
    at.run()
    assert_clean(at)

    picker = at.selectbox(key="gene_pick")
    n_model = len(at.session_state["bf_prepared"][1].aligned.gene_ids)
    assert len(picker.options) == n_model + 1 and picker.options[-1] == XIST_OPTION
    assert "After them come the 1 other gene your table measured" in texts(at.caption)
    picker.set_value(n_model).run()
    assert_clean(at)
    assert at.selectbox(key="gene_group").value == "sex"
    assert "is **not part of the model**" in texts(at.markdown)
    assert "the model cannot fill it in or reproduce it" in texts(at.markdown)
    assert "was measured in your table: the model's value" not in texts(at.markdown)

    # the plot: every sample once, lowest to highest, at log1p of its TPM worked out by hand over every row
    (spec,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert "not part of the model" in spec["layout"]["title"]["text"]
    assert spec["layout"]["yaxis"]["title"]["text"] == "measured value, log(TPM + 1)"
    dots = [t for t in spec["data"] if t.get("mode") == "markers"]
    assert sorted(t["name"] for t in dots) == sorted(set(sheet["sex"]))  # coloured by the sheet's column
    assert all("measured %{y:.2f}" in t["hovertemplate"] for t in dots)
    xs = np.concatenate([numbers(t["x"]) for t in dots])
    ys = np.concatenate([numbers(t["y"]) for t in dots])
    assert sorted(xs) == list(range(len(counts.columns)))
    assert np.all(np.diff(ys[np.argsort(xs)]) >= 0)

    config = json.loads((paths.demo_model_dir() / "config.json").read_text())
    assert config["gene_lengths"] == "annotation"  # the demo model divides counts by the annotation's lengths
    lengths = pd.read_csv(paths.ANNOTATION_DIR / "human_genes.tsv.gz", sep="\t", index_col="ensg_id")["length"]
    kb = lengths.reindex(counts.index).fillna(1000.0).to_numpy() / 1000.0
    rate = counts.to_numpy(dtype=np.float64) / kb[:, None]
    xist = np.log1p(rate[list(counts.index).index(XIST)] / rate.sum(axis=0) * 1e6)
    np.testing.assert_allclose(np.sort(ys), np.sort(xist), rtol=1e-5)
