"""The Zenodo client against the local server of :mod:`tests.fetch.fake_zenodo` (never the
internet): listings, one file, selections, the checksum book, an untrusted server."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from bulkformer import paths
from bulkformer.errors import BulkFormerError, DownloadError
from bulkformer.fetch import zenodo as dl
from bulkformer.fetch.zenodo import _fetch, _listing
from tests.fetch import fake_zenodo
from tests.fetch.fake_zenodo import FAST, V1, V2, FakeZenodo
from tests.waiting import EVENT_WAIT_S

_server = fake_zenodo._server
zenodo = fake_zenodo.zenodo


def _remote(zenodo: FakeZenodo, record_id: str, key: str) -> dl.RemoteFile:
    return next(f for f in dl.list_record(record_id) if f.key == key)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- listing ---------------------------------------------------------------------------------


def test_list_record_reads_and_classifies_files(zenodo: FakeZenodo) -> None:
    files = {f.key: f for f in dl.list_record(V1)}
    ckpt = files["Bulkformer_ckpt_epoch_29.pt"]
    assert ckpt == dl.RemoteFile(
        V1,
        "Bulkformer_ckpt_epoch_29.pt",
        300_000,
        _md5(zenodo.files[V1]["Bulkformer_ckpt_epoch_29.pt"]),
        zenodo.base_url + zenodo.file_path(V1, "Bulkformer_ckpt_epoch_29.pt"),
        "model",
    )
    assert files["G_gtex.pt"].kind == "data"
    assert {f.key: f.kind for f in dl.list_record("v2")}["PreBULK.h5ad.zip"] == "pretraining"


def test_base_url_argument_overrides_environment(
    zenodo: FakeZenodo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dl.ZENODO_URL_ENV, "http://127.0.0.1:9")  # nothing listens there
    assert len(dl.list_record(V1, base_url=zenodo.base_url)) == 3


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("Bulkformer_ckpt_epoch_29.pt", "model"),
        ("bulkformer_147M.pt", "model"),
        ("bulkformer_37M.pt", "model"),
        ("G_tcga_weight.pt", "data"),
        ("esm2_feature_concat.pt", "data"),
        ("interested_gene_list.pt", "data"),
        ("demo_count_adata.h5ad", "data"),
        ("PreBULK.h5ad.zip", "pretraining"),
    ],
)
def test_classify(key: str, kind: str) -> None:
    assert dl.classify(key, 1000) == kind


def test_unknown_record_is_a_clear_404(zenodo: FakeZenodo) -> None:
    with pytest.raises(DownloadError, match="record 123 was not found") as info:
        dl.list_record("123")
    assert V1 in str(info.value)  # the hint names the real records


def test_record_must_be_a_number_or_label() -> None:
    with pytest.raises(DownloadError, match="not a Zenodo record number"):
        dl.list_record("../../etc")


def test_unreachable_zenodo_explains_manual_download(
    zenodo: FakeZenodo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv(dl.ZENODO_URL_ENV, dead)
    with pytest.raises(DownloadError) as info:
        dl.list_record(V1, retries=0)
    text = str(info.value)
    assert "could not be reached" in text
    assert f"{dead}/records/{V1}" in text
    assert str(paths.model_dir()) in text and str(paths.data_dir()) in text
    assert "Bulkformer_ckpt_epoch_29.pt" in text  # v1's checkpoint by its name, not "a file with 'ckpt'"
    assert "'ckpt' in its name" not in text and "Google Drive" not in text


def test_unreachable_v2_record_says_its_checkpoints_are_on_google_drive(monkeypatch: pytest.MonkeyPatch) -> None:
    """The v2 record holds gene tables and graphs only: the hint must not send people looking
    for a checkpoint on its page, and must give each Drive link with the file's name."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv(dl.ZENODO_URL_ENV, dead)
    with pytest.raises(DownloadError) as info:
        dl.list_record(V2, retries=0)
    hint = info.value.hint
    assert "ckpt" not in hint and f"{dead}/records/{V2}" in hint and "Google Drive" in hint
    for size, drive_id in (("37M", "1qY2qaXfKfDot9EMcOF9gr8T0jghrH7km"), ("147M", "1UtqN_vCh3669Fs-GU5CTE7F7UnuQCAzN")):
        assert f"bulkformer_{size}.pt at https://drive.google.com/file/d/{drive_id}/" in hint


# --- one file ----------------------------------------------------------------------------------


def test_download_file_with_progress(zenodo: FakeZenodo, tmp_path: Path) -> None:
    remote = _remote(zenodo, V1, "Bulkformer_ckpt_epoch_29.pt")
    calls: list[tuple[int, int]] = []
    path = dl.download_file(remote, tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert path == (tmp_path / "out" / remote.key).resolve()
    assert path.read_bytes() == zenodo.files[V1][remote.key]
    assert calls[0] == (0, remote.size) and calls[-1] == (remote.size, remote.size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert not (tmp_path / "out" / f"{remote.key}.part").exists()


def test_valid_file_is_not_downloaded_again(zenodo: FakeZenodo, tmp_path: Path) -> None:
    remote = _remote(zenodo, V1, "G_gtex.pt")
    dl.download_file(remote, tmp_path)
    calls: list[tuple[int, int]] = []
    dl.download_file(remote, tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert zenodo.file_gets(V1, "G_gtex.pt") == [None]
    assert calls == [(remote.size, remote.size)]


def test_invalid_existing_file_is_replaced(zenodo: FakeZenodo, tmp_path: Path) -> None:
    remote = _remote(zenodo, V1, "G_gtex.pt")
    (tmp_path / "G_gtex.pt").write_bytes(b"stale")
    path = dl.download_file(remote, tmp_path)
    assert path.read_bytes() == zenodo.files[V1]["G_gtex.pt"]


def test_interrupted_download_resumes_with_range(zenodo: FakeZenodo, tmp_path: Path) -> None:
    key = "Bulkformer_ckpt_epoch_29.pt"
    remote = _remote(zenodo, V1, key)
    zenodo.cut_after[key] = 70_000
    with pytest.raises(DownloadError, match="interrupted") as info:
        dl.download_file(remote, tmp_path, retries=0)
    assert "resumes" in str(info.value)
    part = tmp_path / f"{key}.part"
    assert part.stat().st_size == 70_000
    assert not (tmp_path / key).exists()

    path = dl.download_file(remote, tmp_path, retries=0)
    assert zenodo.file_gets(V1, key) == [None, "bytes=70000-"]
    assert path.read_bytes() == zenodo.files[V1][key]
    assert not part.exists()


def test_interruption_is_retried_within_one_call(zenodo: FakeZenodo, tmp_path: Path) -> None:
    key = "Bulkformer_ckpt_epoch_29.pt"
    zenodo.cut_after[key] = 12_345
    path = dl.download_file(_remote(zenodo, V1, key), tmp_path, **FAST)
    assert zenodo.file_gets(V1, key) == [None, "bytes=12345-"]
    assert path.read_bytes() == zenodo.files[V1][key]


def test_server_ignoring_range_restarts_from_zero(zenodo: FakeZenodo, tmp_path: Path) -> None:
    key = "G_gtex.pt"
    (tmp_path / f"{key}.part").write_bytes(b"x" * 1000)  # garbage that a 200 must overwrite
    zenodo.ignore_range = True
    path = dl.download_file(_remote(zenodo, V1, key), tmp_path, **FAST)
    assert zenodo.file_gets(V1, key) == ["bytes=1000-"]
    assert path.read_bytes() == zenodo.files[V1][key]


def test_checksum_mismatch_leaves_nothing(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.corrupt.add("G_gtex.pt")
    with pytest.raises(DownloadError, match="md5"):
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_503_once_then_success(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.fail_next(zenodo.file_path(V1, "G_gtex.pt"), 503)
    path = dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert len(zenodo.file_gets(V1, "G_gtex.pt")) == 2
    assert path.read_bytes() == zenodo.files[V1]["G_gtex.pt"]


def test_429_honours_retry_after(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.fail_next(zenodo.file_path(V1, "G_gtex.pt"), 429, **{"Retry-After": "0"})
    started = time.monotonic()
    dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, retries=1, backoff=30)
    assert time.monotonic() - started < 5  # Retry-After 0 wins over the 30 s backoff
    assert len(zenodo.file_gets(V1, "G_gtex.pt")) == 2


def test_listing_is_retried_too(zenodo: FakeZenodo) -> None:
    zenodo.fail_next(f"/api/records/{V1}", 502)
    assert len(dl.list_record(V1, **FAST)) == 3


def test_persistent_5xx_gives_up_clearly(zenodo: FakeZenodo, tmp_path: Path) -> None:
    path = zenodo.file_path(V1, "G_gtex.pt")
    for _ in range(3):
        zenodo.fail_next(path, 500)
    with pytest.raises(DownloadError, match=r"HTTP 500.*Gave up after 3 attempts"):
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_404_names_record_and_file(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.fail_next(zenodo.file_path(V1, "G_gtex.pt"), 404)
    with pytest.raises(DownloadError, match=rf"'G_gtex.pt' of Zenodo record {V1}.*404"):
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert len(zenodo.file_gets(V1, "G_gtex.pt")) == 1  # a 404 is not retried


def test_path_traversal_key_is_refused(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.files[V1]["../evil.pt"] = b"owned"
    with pytest.raises(BulkFormerError, match="not a plain file name"):
        dl.download("all", record_id=V1, dest=tmp_path / "inside", **FAST)
    remote = dl.RemoteFile(V1, "../evil.pt", 5, _md5(b"owned"), zenodo.base_url + "/x", "data")
    with pytest.raises(BulkFormerError, match="not a plain file name"):
        dl.download_file(remote, tmp_path / "inside")
    assert not (tmp_path / "evil.pt").exists()
    assert zenodo.file_gets(V1, "../evil.pt") == []


def test_not_enough_space_is_refused_before_downloading(
    zenodo: FakeZenodo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(DownloadError, match="Not enough disk space"):
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path)
    assert zenodo.file_gets(V1, "G_gtex.pt") == []


def test_disk_full_while_writing_removes_partial_file(
    zenodo: FakeZenodo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = open

    class FullDisk:
        def __init__(self, path: Path, mode: str) -> None:
            self._fh = real_open(path, mode)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

        def write(self, data: bytes) -> int:
            self._fh.write(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_fetch, "open", FullDisk, raising=False)
    with pytest.raises(DownloadError, match="disk is full"):
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_verify_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    assert not dl.verify_file(target, _md5(b""))
    target.write_bytes(b"hello")
    assert dl.verify_file(target, _md5(b"hello").upper())
    assert not dl.verify_file(target, _md5(b"other"))


# --- selections --------------------------------------------------------------------------------


def test_download_model_goes_to_model_dir(zenodo: FakeZenodo, tmp_path: Path) -> None:
    paths = dl.download("model", **FAST)
    assert paths == [(tmp_path / "model" / "Bulkformer_ckpt_epoch_29.pt").resolve()]
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_download_data_skips_pretraining_and_prefers_newest(
    zenodo: FakeZenodo, tmp_path: Path
) -> None:
    seen: set[str] = set()
    paths = dl.download("data", progress=lambda remote, d, t: seen.add(remote.key), **FAST)
    assert sorted(p.name for p in paths) == ["G_gtex.pt", "G_tcga.pt", "bulkformer_gene_info.csv"]
    assert all(p.parent == (tmp_path / "data").resolve() for p in paths)
    gene_info = tmp_path / "data" / "bulkformer_gene_info.csv"
    assert gene_info.read_bytes() == zenodo.files[V2]["bulkformer_gene_info.csv"]
    assert seen == {p.name for p in paths}
    assert zenodo.file_gets(V2, "PreBULK.h5ad.zip") == []


def test_download_all_with_record_and_dest(zenodo: FakeZenodo, tmp_path: Path) -> None:
    paths = dl.download("all", record_id="v1", dest=tmp_path / "here", **FAST)
    assert {p.name for p in paths} == set(zenodo.files[V1])
    assert all(p.parent == (tmp_path / "here").resolve() for p in paths)


def test_pretraining_data_only_by_name(zenodo: FakeZenodo, tmp_path: Path) -> None:
    (path,) = dl.download("PreBULK.h5ad.zip", **FAST)
    assert path == (tmp_path / "data" / "PreBULK.h5ad.zip").resolve()


def test_no_model_in_v2_points_to_google_drive(zenodo: FakeZenodo) -> None:
    with pytest.raises(DownloadError, match="no model files") as info:
        dl.download("model", record_id=V2, **FAST)
    assert "drive.google.com" in str(info.value)


def test_drive_checkpoint_by_name_explains_manual_step(zenodo: FakeZenodo) -> None:
    with pytest.raises(DownloadError, match="Google Drive") as info:
        dl.download("bulkformer_147M.pt", **FAST)
    assert str(paths.model_dir()) in str(info.value)


def test_unknown_name_lists_what_exists(zenodo: FakeZenodo) -> None:
    with pytest.raises(DownloadError, match=r"no file named 'nope\.pt'") as info:
        dl.download("nope.pt", **FAST)
    assert "G_tcga.pt" in str(info.value)


def test_batch_space_check_runs_before_any_request(
    zenodo: FakeZenodo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(DownloadError, match="Not enough disk space"):
        dl.download("all", **FAST)
    assert not any("/files/" in p for p, _ in zenodo.log)



def test_verified_downloads_are_recorded_for_offline_checks(zenodo: FakeZenodo, tmp_path: Path) -> None:
    """After a verified download, checksums.json holds the file's md5 (what `verify` re-checks)."""
    remote = _remote(zenodo, V1, "G_gtex.pt")
    path = dl.download_file(remote, tmp_path / "d", retries=1, backoff=0.0)
    book = json.loads((tmp_path / "d" / dl.CHECKSUMS_NAME).read_text())
    assert book == {"G_gtex.pt": {"md5": _md5(path.read_bytes()), "size": 5_000}}


# --- the checksum book ---------------------------------------------------------------------------


def test_checksum_book_reads_old_and_new_entries_and_rechecks_offline(tmp_path: Path) -> None:
    (tmp_path / "a.pt").write_bytes(b"alpha")
    (tmp_path / "b.pt").write_bytes(b"beta")
    (tmp_path / dl.CHECKSUMS_NAME).write_text(json.dumps({
        "a.pt": "md5:" + _md5(b"alpha"),  # the book's first format: an md5 string
        "b.pt": {"size": 4, "sha256": hashlib.sha256(b"beta").hexdigest()},
        "junk.pt": {"size": -1, "md5": "not hex"},
    }))
    book = dl.read_checksums(tmp_path)
    assert set(book) == {"a.pt", "b.pt"}
    assert dl.check_recorded(tmp_path / "a.pt", book["a.pt"])
    assert dl.check_recorded(tmp_path / "b.pt", book["b.pt"])
    (tmp_path / "b.pt").write_bytes(b"bet!")  # same size, other bytes
    assert not dl.check_recorded(tmp_path / "b.pt", book["b.pt"])
    (tmp_path / "b.pt").write_bytes(b"bet")
    assert not dl.check_recorded(tmp_path / "b.pt", book["b.pt"])


# --- a server that is not trusted (issue 14) ---------------------------------------------------


def _listing_with(zenodo: FakeZenodo, **changes: object) -> None:
    """Record V1's listing with the first entry changed."""
    listing = zenodo.listing(V1)
    listing["files"][0].update(changes)
    zenodo.raw_listing[V1] = json.dumps(listing).encode()


def test_negative_size_in_the_record_is_refused(zenodo: FakeZenodo) -> None:
    _listing_with(zenodo, size=-5)
    with pytest.raises(DownloadError, match="negative size"):
        dl.list_record(V1)


@pytest.mark.parametrize("key", ["bad\x00name.pt", "sub/dir.pt", "back\\slash.pt", "..", "checksums.json",
                                 "G_gtex.pt.part", ".hidden"])
def test_keys_that_are_not_plain_names_or_collide_with_our_files_are_refused(
    zenodo: FakeZenodo, tmp_path: Path, key: str
) -> None:
    _listing_with(zenodo, key=key)
    with pytest.raises(DownloadError, match="not a plain file name"):
        dl.download("all", record_id=V1, dest=tmp_path / "d", **FAST)
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


def test_file_links_on_another_server_are_refused(zenodo: FakeZenodo) -> None:
    _listing_with(zenodo, links={"self": "https://elsewhere.example/file"})
    with pytest.raises(DownloadError, match="on another server"):
        dl.list_record(V1)


def test_listing_is_read_only_up_to_a_limit(zenodo: FakeZenodo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_listing, "MAX_LISTING_BYTES", 200)
    zenodo.raw_listing[V1] = b" " * 10_000 + json.dumps(zenodo.listing(V1)).encode()
    with pytest.raises(DownloadError, match="larger than 200 B"):
        dl.list_record(V1)


@pytest.mark.parametrize("target", ["http://127.0.0.2:9/elsewhere", "ftp://127.0.0.1/G_gtex.pt"])
def test_redirects_to_another_server_or_scheme_are_not_followed(
    zenodo: FakeZenodo, tmp_path: Path, target: str
) -> None:
    zenodo.fail_next(zenodo.file_path(V1, "G_gtex.pt"), 302, Location=target)
    with pytest.raises(DownloadError, match="redirected the download to another server"):
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_on_the_same_server_is_followed(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.fail_next(zenodo.file_path(V1, "G_gtex.pt"), 302,
                     Location=zenodo.file_path(V1, "G_gtex.pt"))  # relative: same server
    path = dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert path.read_bytes() == zenodo.files[V1]["G_gtex.pt"]


def test_plain_http_only_for_this_computer_or_a_configured_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dl.ZENODO_URL_ENV, raising=False)
    monkeypatch.delenv(dl.DRIVE_URL_ENV, raising=False)
    assert dl.zenodo_base_url() == "https://zenodo.org"
    assert dl.zenodo_base_url("http://localhost:8000/") == "http://localhost:8000"
    with pytest.raises(DownloadError, match="not a secure web address"):
        dl.zenodo_base_url("http://mirror.example")
    with pytest.raises(DownloadError, match="not a secure web address"):
        dl.drive_base_url("file:///etc")
    monkeypatch.setenv(dl.ZENODO_URL_ENV, "http://mirror.example")
    assert dl.zenodo_base_url() == "http://mirror.example"


def test_a_server_that_dribbles_meets_the_overall_deadline(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.dribble["G_gtex.pt"] = 0.05  # 5,000 bytes would take over 4 minutes
    with pytest.raises(DownloadError, match="too slow") as info:
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, timeout=5, pace=dl.Pace(1e9, 0.3), **FAST)
    assert "resumes" in info.value.hint and dl.MIN_RATE_ENV in info.value.hint
    assert not (tmp_path / "G_gtex.pt").exists()


def test_a_listing_that_dribbles_meets_its_deadline(zenodo: FakeZenodo) -> None:
    zenodo.dribble[V1] = 0.05
    with pytest.raises(DownloadError, match="arrives too slowly"):
        dl.list_record(V1, timeout=5, pace=dl.Pace(1e9, 0.3), **FAST)


def test_pace_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dl.MIN_RATE_ENV, "1000")
    pace = dl.Pace.from_env()
    assert pace.min_rate == 1000
    start = time.monotonic()
    assert pace.deadline(10_000) - start == pytest.approx(pace.grace_s + 10, abs=1)
    monkeypatch.setenv(dl.MIN_RATE_ENV, "-3")
    with pytest.raises(DownloadError, match="not a positive number"):
        dl.Pace.from_env()


def test_a_deeply_nested_listing_is_a_clear_error_not_a_recursion_error() -> None:
    """200,000 nested ``[`` made json's parser raise RecursionError (issue #28)."""
    from bulkformer.errors import DownloadError
    from bulkformer.fetch.zenodo._listing import _parse_listing

    with pytest.raises(DownloadError, match="not in the expected format"):
        _parse_listing("15559368", b"[" * 200_000, "https://zenodo.org")


def test_a_stall_mid_body_ends_at_the_deadline_not_a_read_timeout_later(zenodo: FakeZenodo, tmp_path: Path) -> None:
    """Half the file, then silence: the deadline (0.3 s here) ends it, although one read may
    wait an hour. Before, a read blocked for its whole timeout past the deadline (188-201 s
    against ~141 s); here the server's 20 s silence would end as an "interrupted" download."""
    zenodo.stall["G_gtex.pt"] = 20.0
    with pytest.raises(DownloadError, match="too slow") as info:
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, timeout=3600,
                         pace=dl.Pace(1e9, 0.3), retries=0, backoff=0.001)
    size = len(zenodo.files[V1]["G_gtex.pt"])
    assert dl.human_size(size // 2) in str(info.value)  # what did arrive, not "0 B"
    assert (tmp_path / "G_gtex.pt.part").stat().st_size == size // 2  # kept to resume
    assert zenodo.stall_over.wait(EVENT_WAIT_S)  # the server saw the end of its silence
    assert "G_gtex.pt" in zenodo.left_during_stall  # the client hung up in the silence, at its deadline


def test_a_web_page_instead_of_the_file_is_not_kept_as_a_part(zenodo: FakeZenodo, tmp_path: Path) -> None:
    zenodo.web_page.add("G_gtex.pt")
    with pytest.raises(DownloadError, match="web page instead of the G_gtex.pt file") as info:
        dl.download_file(_remote(zenodo, V1, "G_gtex.pt"), tmp_path, **FAST)
    assert "interrupted" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_listing_is_given_a_listings_time_not_that_of_the_most_read(
        zenodo: FakeZenodo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing's deadline counted 8 MB at 50 kB/s (a trickled listing ran 292 s)."""
    asked: list[int] = []
    real = dl.Pace.deadline

    def recording(self: dl.Pace, n_bytes: int) -> float:
        asked.append(n_bytes)
        return real(self, n_bytes)

    monkeypatch.setattr(dl.Pace, "deadline", recording)
    dl.list_record(V1, **FAST)
    from bulkformer.fetch.zenodo._pace import LISTING_BUDGET_BYTES

    assert asked == [LISTING_BUDGET_BYTES]
    assert dl.Pace().deadline(LISTING_BUDGET_BYTES) - time.monotonic() < 130


def test_the_grace_is_settable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dl.GRACE_ENV, "7.5")
    assert dl.Pace.from_env().grace_s == 7.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv(dl.GRACE_ENV, bad)
        with pytest.raises(DownloadError, match="not a positive number of seconds"):
            dl.Pace.from_env()
