"""A local Zenodo + Google Drive on 127.0.0.1 for the download tests (never the internet), and a
published model shrunk to fit it.

The server (fixture ``zenodo``) serves ``/api/records/<id>`` listings and file contents with
``Range`` support, and Drive-like ``/uc?id=<file id>&export=download`` answers (the file as an
attachment, with ``Range`` support, as gdown expects). It has knobs to cut a response short,
corrupt it, dribble it, replace a listing, or answer with a scripted HTTP error first, so that
every recovery path runs in milliseconds. Test modules bind the fixtures by name
(``zenodo = fake_zenodo.zenodo``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from bulkformer.fetch import _registry as registry
from bulkformer.fetch.zenodo import DRIVE_URL_ENV, ZENODO_URL_ENV
from tests.conftest import random_graph, tiny_config, tiny_network

V1, V2 = "15559368", "15744294"

FAST = {"retries": 2, "backoff": 0.001}


@dataclass
class FakeZenodo:
    """State of the local server: its files, its request log and its failure knobs."""

    base_url: str = ""
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # key -> bytes sent, once
    corrupt: set[str] = field(default_factory=set)
    ignore_range: bool = False
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    drive: dict[str, bytes] = field(default_factory=dict)  # Drive file id -> content
    dribble: dict[str, float] = field(default_factory=dict)  # key -> seconds between bytes
    raw_listing: dict[str, bytes] = field(default_factory=dict)  # record id -> listing body
    stall: dict[str, float] = field(default_factory=dict)  # key -> seconds of silence after half the body
    left_during_stall: set[str] = field(default_factory=set)  # keys whose client hung up in the silence
    stall_over: threading.Event = field(default_factory=threading.Event)  # set when a stall ends, either way
    web_page: set[str] = field(default_factory=set)  # keys answered with a 200 HTML page

    def drive_gets(self, file_id: str) -> list[str | None]:
        """The Range header of every Drive request for one file id."""
        return [rng for p, rng in self.log if p.startswith(f"/uc?id={file_id}&")]

    def file_path(self, record_id: str, key: str) -> str:
        return f"/api/records/{record_id}/files/{key}/content"

    def file_gets(self, record_id: str, key: str) -> list[str | None]:
        """The Range header of every request for one file (None: no Range)."""
        path = self.file_path(record_id, key)
        return [rng for p, rng in self.log if p == path]

    def fail_next(self, path: str, status: int, **headers: str) -> None:
        self.script.setdefault(path, []).append((status, headers))

    def listing(self, record_id: str) -> dict:
        entries = [
            {
                "key": key,
                "size": len(data),
                "checksum": f"md5:{hashlib.md5(data).hexdigest()}",
                "links": {"self": self.base_url + self.file_path(record_id, key)},
            }
            for key, data in self.files.get(record_id, {}).items()
        ]
        return {"id": int(record_id), "files": entries}


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state: FakeZenodo = self.server.state  # type: ignore[attr-defined]
        state.log.append((self.path, self.headers.get("Range")))
        scripted = state.script.get(self.path)
        if scripted:
            status, headers = scripted.pop(0)
            return self._send(status, b"scripted failure", headers)
        if self.path.startswith("/uc?"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            file_id = query.get("id", [""])[0]
            if file_id not in state.drive:
                return self._send(404, b"<html>not found</html>", {"Content-Type": "text/html"})
            return self._send_file(state, file_id, state.drive[file_id])
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["api", "records"]:
            if parts[2] in state.raw_listing:
                return self._send(200, state.raw_listing[parts[2]], {"Content-Type": "application/json"})
            if parts[2] in state.dribble:
                body = json.dumps(state.listing(parts[2])).encode()
                return self._send_slowly(body, state.dribble[parts[2]])
            if parts[2] not in state.files:
                return self._send(404, b'{"status": 404}')
            body = json.dumps(state.listing(parts[2])).encode()
            return self._send(200, body, {"Content-Type": "application/json"})
        if len(parts) == 6 and parts[5] == "content":
            data = state.files.get(parts[2], {}).get(parts[4])
            if data is None:
                return self._send(404, b"not found")
            return self._send_file(state, parts[4], data)
        return self._send(404, b"not found")

    def _send_file(self, state: FakeZenodo, key: str, data: bytes) -> None:
        if key in state.web_page:
            return self._send(200, b"<!DOCTYPE html><html><body>Zenodo is under maintenance</body></html>",
                              {"Content-Type": "text/html; charset=utf-8"})
        if key in state.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start, status, headers = 0, 200, {}
        range_header = self.headers.get("Range")
        if range_header and not state.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        cut = state.cut_after.pop(key, None)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'attachment; filename="{key}"')
        self.end_headers()
        pause = state.dribble.get(key)
        silence = state.stall.get(key)
        if silence is not None:  # half the body, then nothing for a long time, then hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if self._client_hangs_up_within(silence):
                state.left_during_stall.add(key)
            state.stall_over.set()
            self.close_connection = True
        elif pause is not None:
            self._dribble(body, pause)
        elif cut is None:
            self.wfile.write(body)
        else:  # announce the whole body, send part of it, hang up
            self.wfile.write(body[:cut])
            self.close_connection = True

    def _client_hangs_up_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the client to close its end (it sends nothing more)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True
        return False

    def _send_slowly(self, body: bytes, pause: float) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._dribble(body, pause)

    def _dribble(self, body: bytes, pause: float) -> None:
        """A byte at a time, slowly, until the client gives up."""
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass
        self.close_connection = True

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _payload(seed: int, size: int) -> bytes:
    return bytes((seed * 31 + i * 7) % 251 for i in range(size))


@pytest.fixture(scope="module")
def _server() -> Iterator[ThreadingHTTPServer]:
    """One server per test module (starting and stopping it costs more than a test)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def zenodo(
    _server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> FakeZenodo:
    """A fresh local Zenodo with both BulkFormer records; downloads go to tmp folders."""
    state = FakeZenodo(
        base_url=f"http://127.0.0.1:{_server.server_address[1]}",
        files={
            V1: {
                "Bulkformer_ckpt_epoch_29.pt": _payload(1, 300_000),
                "G_gtex.pt": _payload(2, 5_000),
                "bulkformer_gene_info.csv": b"gene_symbol,ensg_id\nA1BG,ENSG00000121410\n",
            },
            V2: {
                "bulkformer_gene_info.csv": b"gene_symbol,ensg_id\nNEWER,ENSG00000000003\n",
                "G_tcga.pt": _payload(3, 4_000),
                "PreBULK.h5ad.zip": _payload(4, 2_000),
            },
        },
    )
    _server.state = state  # type: ignore[attr-defined]
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv(ZENODO_URL_ENV, state.base_url)
    monkeypatch.setenv("BULKFORMER_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("BULKFORMER_DATA_DIR", str(tmp_path / "data"))
    return state


# --- a published model on the local Drive-like endpoint (used by test_drive, test_model_fetch,
# test_cli and the app tests) --------------------------------------------------------------

TINY_ID = "tinyDriveFileId0123456789"


@pytest.fixture
def published(zenodo: FakeZenodo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, bytes]:
    """'37M' shrunk to a 50-gene, dim-16 network (a real one is 148 MB), its checkpoint on the
    local Drive, its gene table and graph in the local v2 record; the Drive base URL points here."""
    files = tiny_published_files()
    model = registry.MODELS["37M"]
    tiny = dataclasses.replace(model, config=dataclasses.replace(TINY_V2, name="37M"), drive_id=TINY_ID,
                               download_bytes=len(files["ckpt"]))
    monkeypatch.setitem(registry.MODELS, "37M", tiny)
    monkeypatch.setenv(DRIVE_URL_ENV, zenodo.base_url)
    zenodo.drive[TINY_ID] = files["ckpt"]
    zenodo.files[V2].update({k: files[k] for k in ("bulkformer_gene_info.csv", "G_tcga.pt", "G_tcga_weight.pt")})
    return files


TINY_V2 = tiny_config("v2")


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def tiny_published_files() -> dict:
    """A published-format v2 set for 50 genes: checkpoint, gene table, graph pair."""
    network = tiny_network("v2")
    gene_ids = tuple(f"ENSG{i:011d}" for i in range(TINY_V2.n_genes))
    table = "gene_symbol,ensg_id\n" + "".join(f"G{i},{g}\n" for i, g in enumerate(gene_ids))
    graph = random_graph(TINY_V2.n_genes, 200)
    return {
        "ckpt": _saved(network.state_dict()),
        "bulkformer_gene_info.csv": table.encode(),
        "G_tcga.pt": _saved(graph.edge_index.clone()),
        "G_tcga_weight.pt": _saved(graph.weight.clone()),
        "gene_ids": gene_ids,
    }
