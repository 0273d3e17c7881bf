"""The ``bulkformer download`` commands, run with typer's CliRunner against the local Zenodo."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bulkformer.cli import app
from tests.fetch import fake_zenodo
from tests.fetch.fake_zenodo import V1, V2, FakeZenodo

# The same local Zenodo server as the client tests (fixtures are found by module name).
_server = fake_zenodo._server
zenodo = fake_zenodo.zenodo
published = fake_zenodo.published
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


def _v1_family_files(zenodo: FakeZenodo) -> None:
    zenodo.files[V1]["G_gtex_weight.pt"] = b"weights"


def test_download_model_v1_with_its_family_files(zenodo: FakeZenodo, tmp_path: Path) -> None:
    _v1_family_files(zenodo)
    result = runner.invoke(app, ["download", "model", "--size", "v1"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "model" / "Bulkformer_ckpt_epoch_29.pt"
    assert target.read_bytes() == zenodo.files[V1]["Bulkformer_ckpt_epoch_29.pt"]
    for name in ("G_gtex.pt", "G_gtex_weight.pt", "bulkformer_gene_info.csv"):
        assert (tmp_path / "data" / name).read_bytes() == zenodo.files[V1][name]  # v1's, not v2's
    assert "Done." in result.stdout and str(target) in result.stdout
    assert "Bulkformer_ckpt_epoch_29.pt (300.0 kB)" in result.stdout  # Zenodo's exact size
    assert "--model v1" in result.stdout


def test_download_model_from_drive(zenodo: FakeZenodo, published: dict, tmp_path: Path) -> None:
    result = runner.invoke(app, ["download", "model", "--size", "37M"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model" / "bulkformer_37M.pt").read_bytes() == published["ckpt"]
    assert (tmp_path / "data" / "G_tcga_weight.pt").is_file()
    assert f"bulkformer_37M.pt (about {len(published['ckpt']) / 1000:.1f} kB)" in result.stdout  # Drive: estimate
    assert "--model 37M" in result.stdout


def test_download_model_help_names_the_sizes_and_the_default() -> None:
    result = runner.invoke(app, ["download", "model", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "'37M', '50M', '93M', '127M', '147M', 'v1'" in result.output
    assert "[default: 147M]" in result.output


def test_download_model_all(zenodo: FakeZenodo, published: dict, tmp_path: Path, monkeypatch) -> None:
    from bulkformer.fetch import _registry as registry

    _v1_family_files(zenodo)
    monkeypatch.setattr(registry, "MODELS", {"37M": registry.MODELS["37M"], "v1": registry.MODELS["v1"]})
    result = runner.invoke(app, ["download", "model", "--size", "all"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "model").glob("*.pt")) == [
        "Bulkformer_ckpt_epoch_29.pt", "bulkformer_37M.pt"]


def test_download_model_unknown_size_is_a_clean_error(zenodo: FakeZenodo) -> None:
    result = runner.invoke(app, ["download", "model", "--size", "12M"])
    assert result.exit_code == 1
    assert "no published model called '12M'" in result.stderr and "147M" in result.stderr
    assert "Traceback" not in result.output


def test_download_file_with_dest(zenodo: FakeZenodo, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["download", "file", "PreBULK.h5ad.zip", "--dest", str(tmp_path / "pre")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pre" / "PreBULK.h5ad.zip").is_file()


def test_404_is_a_clean_error(zenodo: FakeZenodo, tmp_path: Path) -> None:
    _v1_family_files(zenodo)
    zenodo.fail_next(zenodo.file_path(V1, "Bulkformer_ckpt_epoch_29.pt"), 404)
    result = runner.invoke(app, ["download", "model", "--size", "v1"])
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


def test_verify_rechecks_a_drive_checkpoint_offline(zenodo: FakeZenodo, published: dict, tmp_path: Path) -> None:
    assert runner.invoke(app, ["download", "model", "--size", "37M"]).exit_code == 0
    result = runner.invoke(app, ["verify"])
    assert "bulkformer_37M.pt: present" in result.stdout and "sha256 OK" in result.stdout
    checkpoint = tmp_path / "model" / "bulkformer_37M.pt"
    data = bytearray(checkpoint.read_bytes())
    data[-100] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "sha256 does not match" in result.stdout
    assert "download model --size 37M" in result.stderr
