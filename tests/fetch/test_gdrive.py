"""The Google Drive client (gdown) and the checkpoint check, against the local Drive-like endpoint
of tests/download/fake_zenodo.py, with '37M' shrunk to a 50-gene, dim-16 network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bulkformer.errors import DownloadError
from bulkformer.fetch import _gdrive as drive
from bulkformer.fetch import _registry as registry
from bulkformer.fetch.zenodo import (
    DRIVE_URL_ENV,
    DownloadCancelled,
    Pace,
    drive_download_url,
    read_checksums,
)
from tests.conftest import tiny_network
from tests.fetch import fake_zenodo
from tests.fetch.fake_zenodo import TINY_ID, FakeZenodo, _saved
from tests.waiting import EVENT_WAIT_S

_server = fake_zenodo._server
zenodo = fake_zenodo.zenodo
published = fake_zenodo.published


def _fetch_37m(tmp_path: Path, **kwargs: object) -> Path:
    """The shrunk 37M's checkpoint from the local Drive into ``tmp_path / "model"``."""
    return drive.fetch_drive_checkpoint(registry.MODELS["37M"], tmp_path / "model", retries=0, timeout=5, **kwargs)


def test_the_drive_url_is_drives_direct_download_or_the_configured_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DRIVE_URL_ENV, raising=False)
    assert drive_download_url("abc") == "https://drive.google.com/uc?id=abc&export=download"
    monkeypatch.setenv(DRIVE_URL_ENV, "http://127.0.0.1:8123/")
    assert drive_download_url("abc") == "http://127.0.0.1:8123/uc?id=abc&export=download"


def test_drive_checkpoint_is_fetched_checked_and_recorded(
    published: dict[str, bytes], zenodo: FakeZenodo, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    path = _fetch_37m(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert path == (tmp_path / "model" / "bulkformer_37M.pt").resolve()
    assert path.read_bytes() == published["ckpt"]
    assert seen[0] == (0, len(published["ckpt"])) and seen[-1] == (len(published["ckpt"]),) * 2
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["bulkformer_37M.pt", "checksums.json"]
    recorded = read_checksums(tmp_path / "model")["bulkformer_37M.pt"]
    assert (recorded.size, recorded.sha256) == (len(published["ckpt"]), hashlib.sha256(published["ckpt"]).hexdigest())


def test_drive_html_page_is_refused_and_removed(published: dict[str, bytes], zenodo: FakeZenodo,
                                                tmp_path: Path) -> None:
    zenodo.drive[TINY_ID] = (b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>"
                             b"</head><body>Google Drive can't scan this file for viruses.</body></html>")
    with pytest.raises(DownloadError, match="not a BulkFormer checkpoint: it is a web page"):
        _fetch_37m(tmp_path)
    assert list((tmp_path / "model").iterdir()) == []


@pytest.mark.parametrize("what", ["truncated", "wrong shape", "not a model"])
def test_drive_file_that_is_not_the_checkpoint_is_refused_and_removed(
    published: dict[str, bytes], zenodo: FakeZenodo, tmp_path: Path, what: str
) -> None:
    if what == "truncated":
        zenodo.drive[TINY_ID] = published["ckpt"][: len(published["ckpt"]) // 2]
    elif what == "wrong shape":
        zenodo.drive[TINY_ID] = _saved(tiny_network("v2", dim=32).state_dict())
    else:
        zenodo.drive[TINY_ID] = published["G_tcga.pt"]
    with pytest.raises(DownloadError, match="not a BulkFormer checkpoint") as info:
        _fetch_37m(tmp_path)
    assert "It was deleted" in info.value.message
    assert list((tmp_path / "model").iterdir()) == []


def test_interrupted_drive_download_fails_clearly_and_resumes(
    published: dict[str, bytes], zenodo: FakeZenodo, tmp_path: Path
) -> None:
    zenodo.cut_after[TINY_ID] = 3_000
    with pytest.raises(DownloadError, match="resumes where it stopped"):
        _fetch_37m(tmp_path)
    assert not (tmp_path / "model" / "bulkformer_37M.pt").exists()
    # gdown keeps what it wrote in <name>.download<8 random>.part (it drops the bytes of a read
    # that broke off, up to 512 kB): pretend an earlier run got 3,000 bytes in.
    for part in (tmp_path / "model").glob("*.part"):
        part.unlink()
    (tmp_path / "model" / "bulkformer_37M.pt.downloadabcd1234.part").write_bytes(published["ckpt"][:3_000])
    _fetch_37m(tmp_path)
    assert zenodo.drive_gets(TINY_ID)[-1] == "bytes=3000-"
    assert (tmp_path / "model" / "bulkformer_37M.pt").read_bytes() == published["ckpt"]
    assert not list((tmp_path / "model").glob("*.part"))


def test_cancelled_drive_download_keeps_its_part(published: dict[str, bytes], zenodo: FakeZenodo,
                                                 tmp_path: Path) -> None:
    zenodo.dribble[TINY_ID] = 0.01
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(DownloadCancelled):
        _fetch_37m(tmp_path, should_stop=stop)
    assert not (tmp_path / "model" / "bulkformer_37M.pt").exists()
    assert len(list((tmp_path / "model").glob("*.part"))) == 1


def test_dribbling_drive_meets_the_deadline(published: dict[str, bytes], zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.dribble[TINY_ID] = 0.05
    with pytest.raises(DownloadError, match="too slow"):
        _fetch_37m(tmp_path, pace=Pace(1e9, 0.3))


def test_checkpoint_placed_by_hand_is_checked_and_kept(published: dict[str, bytes], zenodo: FakeZenodo,
                                                       tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bulkformer_37M.pt").write_bytes(published["ckpt"])
    _fetch_37m(tmp_path)
    assert zenodo.drive_gets(TINY_ID) == []
    assert read_checksums(tmp_path / "model")["bulkformer_37M.pt"].sha256 == hashlib.sha256(
        published["ckpt"]).hexdigest()


def test_drive_http_error_is_a_clear_message(published: dict[str, bytes], zenodo: FakeZenodo, tmp_path: Path) -> None:
    del zenodo.drive[TINY_ID]
    with pytest.raises(DownloadError, match="Google Drive answered HTTP 404 for bulkformer_37M.pt") as info:
        _fetch_37m(tmp_path)
    assert "drive.google.com/file/d/" in info.value.hint or TINY_ID in info.value.hint
    assert not (tmp_path / "model" / "bulkformer_37M.pt").exists()


@pytest.mark.parametrize("target", ["http://127.0.0.2:9/elsewhere", "https://example.org/x"])
def test_drive_redirects_to_another_server_are_not_followed(published: dict[str, bytes], zenodo: FakeZenodo,
                                                             tmp_path: Path, target: str) -> None:
    """gdown followed a 302 to any host (issue #28); now the same-host rule holds for Drive too,
    and the redirect is refused before any request goes to the other server."""
    path = f"/uc?id={TINY_ID}&export=download"
    zenodo.fail_next(path, 302, Location=target)
    with pytest.raises(DownloadError, match="redirected the download to another server"):
        _fetch_37m(tmp_path)
    assert not (tmp_path / "model" / "bulkformer_37M.pt").exists()


def test_a_drive_redirect_on_the_same_server_is_followed(published: dict[str, bytes], zenodo: FakeZenodo,
                                                         tmp_path: Path) -> None:
    path = f"/uc?id={TINY_ID}&export=download"
    zenodo.fail_next(path, 302, Location=path)  # relative: the same server
    assert _fetch_37m(tmp_path).read_bytes() == published["ckpt"]


def test_drives_own_hosts_may_redirect_to_each_other() -> None:
    allowed = drive._allowed_origins("https://drive.google.com/uc?id=x&export=download")
    assert ("https", "drive.usercontent.google.com") in allowed
    assert ("http", "drive.usercontent.google.com") not in allowed
    assert drive._allowed_origins("http://127.0.0.1:8000/uc?id=x") == {("http", "127.0.0.1:8000")}


def test_random_bytes_are_not_called_python_objects(published: dict[str, bytes], zenodo: FakeZenodo,
                                                    tmp_path: Path) -> None:
    zenodo.drive[TINY_ID] = bytes(range(256)) * 64
    with pytest.raises(DownloadError, match="not a PyTorch file at all") as info:
        _fetch_37m(tmp_path)
    assert "Python objects" not in str(info.value)
    assert not list((tmp_path / "model").glob("bulkformer_37M.pt*"))


def test_a_drive_stall_mid_body_ends_at_the_deadline(published: dict[str, bytes], zenodo: FakeZenodo,
                                                     tmp_path: Path) -> None:
    """Half the file, then 20 s of silence: the 0.3 s deadline ends the read (the connection is
    shut), not gdown's hour-long read timeout nor the server's hang-up; the half is kept."""
    zenodo.stall[TINY_ID] = 20.0
    with pytest.raises(DownloadError, match="too slow") as info:
        drive.fetch_drive_checkpoint(registry.MODELS["37M"], tmp_path / "model", retries=0, timeout=3600,
                                     pace=Pace(min_rate=1e9, grace_s=0.3))
    assert zenodo.stall_over.wait(EVENT_WAIT_S)  # the server saw the end of its silence
    assert TINY_ID in zenodo.left_during_stall  # the client hung up during the silence
    assert "arrived" not in str(info.value) and "saved" in str(info.value)  # not "0 B arrived"
