"""The ``bulkformer download`` commands, run with typer's CliRunner against the local Zenodo."""

from __future__ import annotations

from pathlib import Path

import test_download
from test_download import V1, V2, FakeZenodo
from typer.testing import CliRunner

from bulkformer.cli import app

# The same local Zenodo server as the client tests (fixtures are found by module name).
_server = test_download._server
zenodo = test_download.zenodo
runner = CliRunner()


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "download" in result.output
    assert "Traceback" not in result.output


def test_download_list(zenodo: FakeZenodo) -> None:
    result = runner.invoke(app, ["download", "list"])
    assert result.exit_code == 0, result.output
    for key in ("Bulkformer_ckpt_epoch_29.pt", "G_tcga.pt", "PreBULK.h5ad.zip"):
        assert key in result.stdout
    assert "300.0 kB" in result.stdout  # sizes in human units
    assert "Google Drive" in result.stdout and "bulkformer_147M.pt" in result.stdout


def test_download_list_one_record_shows_what_is_on_disk(zenodo: FakeZenodo) -> None:
    assert runner.invoke(app, ["download", "data", "--record", "v1"]).exit_code == 0
    result = runner.invoke(app, ["download", "list", "--record", V1])
    assert result.exit_code == 0, result.output
    assert f"record {V1}" in result.stdout and f"record {V2}" not in result.stdout
    assert "downloaded" in result.stdout and "not yet" in result.stdout


def test_download_info(zenodo: FakeZenodo, tmp_path: Path) -> None:
    result = runner.invoke(app, ["download", "info"])
    assert result.exit_code == 0, result.output
    assert V1 in result.stdout and V2 in result.stdout
    assert str(tmp_path / "model") in result.stdout
    assert "drive.google.com" in result.stdout


def test_download_model(zenodo: FakeZenodo, tmp_path: Path) -> None:
    result = runner.invoke(app, ["download", "model"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "model" / "Bulkformer_ckpt_epoch_29.pt"
    assert target.read_bytes() == zenodo.files[V1]["Bulkformer_ckpt_epoch_29.pt"]
    assert "Done." in result.stdout and str(target) in result.stdout


def test_download_file_with_dest(zenodo: FakeZenodo, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["download", "file", "PreBULK.h5ad.zip", "--dest", str(tmp_path / "pre")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pre" / "PreBULK.h5ad.zip").is_file()


def test_404_is_a_clean_error(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.fail_next(zenodo.file_path(V1, "Bulkformer_ckpt_epoch_29.pt"), 404)
    result = runner.invoke(app, ["download", "model"])
    assert result.exit_code == 1
    assert "404" in result.stderr and "Bulkformer_ckpt_epoch_29.pt" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert not (tmp_path / "model" / "Bulkformer_ckpt_epoch_29.pt").exists()


def test_bad_record_is_a_clean_error(zenodo: FakeZenodo) -> None:
    result = runner.invoke(app, ["download", "info", "--record", "latest"])
    assert result.exit_code == 1
    assert "not a Zenodo record number" in result.stderr
    assert "Traceback" not in result.output
