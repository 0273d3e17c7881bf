"""The app's server-wide download slot, against the local Zenodo + Drive server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bulkformer.errors import BulkFormerError
from bulkformer.fetch._published import (
    ModelFetcher,
    download_model,
    plan_model,
    published_choices,
)
from bulkformer.fetch.zenodo import CHECKSUMS_NAME, read_checksums
from tests.fetch import fake_zenodo
from tests.fetch.fake_zenodo import FAST, TINY_ID, FakeZenodo
from tests.waiting import EVENT_WAIT_S

_server = fake_zenodo._server
zenodo = fake_zenodo.zenodo
published = fake_zenodo.published


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _fetch_37m(tmp_path: Path, **kwargs: object) -> list[Path]:
    plan = plan_model("37M", model_dir=tmp_path / "model", data_dir=tmp_path / "data", **FAST)
    return download_model(plan, retries=0, timeout=5, **kwargs)


def test_drive_model_with_its_family_files(published: dict[str, bytes], zenodo: FakeZenodo, tmp_path: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    saved = _fetch_37m(tmp_path, progress=lambda remote, done, total: seen.__setitem__(remote.key, (done, total)))
    ckpt = tmp_path / "model" / "bulkformer_37M.pt"
    assert saved == [(tmp_path / "data" / n).resolve() for n in
                     ("bulkformer_gene_info.csv", "G_tcga.pt", "G_tcga_weight.pt")] + [ckpt.resolve()]
    assert ckpt.read_bytes() == published["ckpt"]
    assert seen["bulkformer_37M.pt"] == (len(published["ckpt"]),) * 2
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["bulkformer_37M.pt", CHECKSUMS_NAME]
    book = json.loads((tmp_path / "model" / CHECKSUMS_NAME).read_text())
    assert book["bulkformer_37M.pt"] == {"size": len(published["ckpt"]),
                                         "sha256": hashlib.sha256(published["ckpt"]).hexdigest()}
    assert read_checksums(tmp_path / "data")["G_tcga.pt"].md5 == _md5(published["G_tcga.pt"])

    from bulkformer.model._bulkformer_model import BulkFormerModel

    model = BulkFormerModel.load("37M", model_dir=tmp_path / "model", data_dir=tmp_path / "data", device="cpu")
    assert model.gene_ids == published["gene_ids"] and model.config.dim == 16

    again = _fetch_37m(tmp_path)  # in place and in the book: nothing is fetched again
    assert again == saved and len(zenodo.drive_gets(TINY_ID)) == 1


def test_unreachable_zenodo_says_how_to_get_this_model_by_hand(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """Offline, the Model page's download of BulkFormer-147M says which files to fetch from where
    (gene table and graphs from the v2 record, the checkpoint from its Drive link) and where
    each goes: the words a person follows in a browser."""
    import socket

    from bulkformer import paths
    from bulkformer.errors import DownloadError

    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(DownloadError) as info:
        plan_model("147M", base_url=dead, retries=0, timeout=5)
    hint = info.value.hint
    assert f"{dead}/records/15744294" in hint  # the v2 record
    assert "bulkformer_gene_info.csv, G_tcga.pt, G_tcga_weight.pt" in hint and str(paths.data_dir()) in hint
    assert "https://drive.google.com/file/d/1UtqN_vCh3669Fs-GU5CTE7F7UnuQCAzN/view" in hint
    assert f"bulkformer_147M.pt, in {paths.model_dir()}" in hint and "ckpt" not in hint
    with pytest.raises(DownloadError) as info:
        plan_model("v1", base_url=dead, retries=0, timeout=5)
    assert "Bulkformer_ckpt_epoch_29.pt in" in info.value.hint and "Google Drive" not in info.value.hint


def test_unknown_model_name_lists_the_published_ones() -> None:
    with pytest.raises(BulkFormerError, match="no published model called '12M'") as info:
        plan_model("12M")
    assert "147M" in info.value.hint and "v1" in info.value.hint


def test_choices_list_every_published_model_with_its_size(tmp_path: Path) -> None:
    (tmp_path / "Bulkformer_ckpt_epoch_29.pt").write_bytes(b"x")
    choices = {c.name: c for c in published_choices(tmp_path)}
    assert list(choices) == ["37M", "50M", "93M", "127M", "147M", "v1"]
    assert choices["147M"].size_text == "about 588.0 MB" and not choices["147M"].present
    assert choices["v1"].size_text == "about 568.0 MB" and choices["v1"].present


def test_one_download_at_a_time_per_server(zenodo: FakeZenodo, published: dict, tmp_path: Path) -> None:
    zenodo.dribble[TINY_ID] = 0.02
    fetcher = ModelFetcher()
    assert fetcher.start("37M") == "started"
    job = fetcher.current.job
    assert fetcher.start("37M") == "running" and fetcher.current.job is job  # a double click
    assert fetcher.start("147M") == "busy" and fetcher.current.name == "37M"
    fetcher.forget()  # a running download is not forgotten
    assert fetcher.current is not None
    fetcher.cancel()
    assert job.wait(EVENT_WAIT_S) and job.status == "cancelled"
    del zenodo.dribble[TINY_ID]
    assert fetcher.start("37M") == "started"
    assert fetcher.current.job.wait(EVENT_WAIT_S) and fetcher.current.job.status == "done", fetcher.current.job.error
    done, total = fetcher.current.job.progress
    assert done == total == sum(len(published[k]) for k in
                                ("ckpt", "bulkformer_gene_info.csv", "G_tcga.pt", "G_tcga_weight.pt"))
    assert (tmp_path / "model" / "bulkformer_37M.pt").read_bytes() == published["ckpt"]
    fetcher.forget()
    assert fetcher.current is None
