"""Upload & QC draws its upload box before, and whatever, the model: reading a table needs no model."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def test_the_upload_box_is_there_while_the_model_cannot_be_had(monkeypatch, tmp_path: Path) -> None:
    """A model that is not there (still loading, or failing) must not hide the upload box: before,
    the page stopped at the model and showed only its spinner or error."""
    monkeypatch.setenv("BULKFORMER_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.session_state["bf_model_spec"] = str(tmp_path / "no-such-model")
    at.switch_page("pages/upload.py").run()
    assert not at.exception, [e.value for e in at.exception]
    uploaders = [e for e in at.get("file_uploader")]
    assert len(uploaders) == 2  # the table and the sample sheet
    assert any("Upload a table above" in e.value for e in at.info)
