"""Fetch the published BulkFormer checkpoints and gene tables from Zenodo.

Standard library only (``urllib.request``), so downloading needs nothing beyond Python.
A file is streamed into ``<name>.part``, resumed with an HTTP ``Range`` request after an
interruption, checked against Zenodo's md5, and only then renamed to its final name: a file
with the final name is therefore always complete and verified. Every failure a user can meet
(no network, HTTP errors, a corrupt transfer, a full disk) is raised as a
:class:`~bulkformer.errors.DownloadError` whose hint says how to get the file by hand.

The five v2 checkpoints (``bulkformer_37M.pt`` … ``bulkformer_147M.pt``) are published on
Google Drive, which cannot be fetched without a browser: :data:`DRIVE_CHECKPOINTS` and
:func:`drive_instructions` tell the user where to get them and where to put them.
"""

from __future__ import annotations

import email.utils
import errno
import functools
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from bulkformer import paths
from bulkformer.errors import DownloadError

FileKind = Literal["model", "data", "pretraining"]
ProgressFn = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_done`` includes bytes resumed from disk."""
FileProgressFn = Callable[["RemoteFile", int, int], None]
"""``progress(remote, bytes_done, bytes_total)``: like :data:`ProgressFn`, naming the file."""

ZENODO_URL_ENV = "BULKFORMER_ZENODO_URL"
DEFAULT_ZENODO_URL = "https://zenodo.org"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 1.0
MAX_RETRY_AFTER_S = 120.0
"""Longest ``Retry-After`` wait honoured, so a misbehaving server cannot stall us for hours."""
LARGE_FILE_BYTES = 10**9
"""A non-checkpoint file this big is pretraining data: the whole published data set is ~244 MB."""

_CHUNK = 256 * 1024
_USER_AGENT = "BulkFormer-Studio (+https://zenodo.org/records/15559368)"
_MODEL_NAME = re.compile(r".*ckpt.*\.pt|bulkformer_\d+m\.pt", re.IGNORECASE)
_PRETRAINING_NAME = re.compile(r"prebulk.*", re.IGNORECASE)
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_T = TypeVar("_T")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class KnownRecord:
    """A Zenodo record that holds published BulkFormer assets."""

    record_id: str
    label: str
    description: str


KNOWN_RECORDS: tuple[KnownRecord, ...] = (
    KnownRecord(
        "15744294",
        "v2",
        "Current release: gene table, TCGA gene graph, ESM2 protein table, demo data and "
        "the optional pretraining data (PreBULK). Its five checkpoints are on Google Drive.",
    ),
    KnownRecord(
        "15559368",
        "v1",
        "First release: the BulkFormer checkpoint (epoch 29), GTEx gene graph, ESM2 protein "
        "table, gene table and demo data.",
    ),
)
"""Newest first: when both records offer a file name, the newer copy wins."""


@dataclass(frozen=True)
class DriveCheckpoint:
    """A v2 checkpoint that is published on Google Drive and must be fetched by hand."""

    name: str
    file_name: str
    dim: int
    performer_layers: int
    url: str


def _drive(size: str, dim: int, layers: int, file_id: str) -> DriveCheckpoint:
    return DriveCheckpoint(
        f"BulkFormer-{size}",
        f"bulkformer_{size}.pt",
        dim,
        layers,
        f"https://drive.google.com/file/d/{file_id}/view",
    )


DRIVE_CHECKPOINTS: tuple[DriveCheckpoint, ...] = (
    _drive("37M", 128, 1, "1qY2qaXfKfDot9EMcOF9gr8T0jghrH7km"),
    _drive("50M", 256, 2, "12ZYGYrZIQJyodaVicrJpnY_8_JG-hamK"),
    _drive("93M", 512, 6, "1s_3XoMaHiBfxi5C8D3bgwwzNrihafaIk"),
    _drive("127M", 640, 8, "1-5AdgIpkm8dOm9tuwOXcqS1sUyGN6vHg"),
    _drive("147M", 640, 12, "1UtqN_vCh3669Fs-GU5CTE7F7UnuQCAzN"),
)


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record, as its REST API describes it."""

    record_id: str
    key: str
    size: int
    md5: str
    url: str
    kind: FileKind


class _Transient(Exception):
    """A failure worth retrying (HTTP 429/5xx, a dropped or refused connection)."""

    def __init__(self, message: str, hint: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.delay = delay


# --- small public helpers -------------------------------------------------------------------


def human_size(n_bytes: int) -> str:
    """``568.5 MB``-style size in decimal units, as Zenodo shows them."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def classify(key: str, size: int) -> FileKind:
    """Which folder a published file belongs in, and whether it is optional pretraining data."""
    if _MODEL_NAME.fullmatch(key):
        return "model"
    if size >= LARGE_FILE_BYTES or _PRETRAINING_NAME.fullmatch(key):
        return "pretraining"
    return "data"


def resolve_record_id(record: str | int) -> str:
    """Accept a record number or a label of :data:`KNOWN_RECORDS` (``"v1"``, ``"v2"``)."""
    text = str(record).strip()
    for known in KNOWN_RECORDS:
        if text.lower() == known.label:
            return known.record_id
    if not text.isdigit():
        labels = ", ".join(f"{k.label} ({k.record_id})" for k in KNOWN_RECORDS)
        raise DownloadError(
            f"{text!r} is not a Zenodo record number.", hint=f"Use one of: {labels}."
        )
    return text


def zenodo_base_url(base_url: str | None = None) -> str:
    """The argument, else ``BULKFORMER_ZENODO_URL``, else https://zenodo.org (no trailing /)."""
    url = (base_url or os.environ.get(ZENODO_URL_ENV) or DEFAULT_ZENODO_URL).rstrip("/")
    _require_http(url)
    return url


def record_page_url(record_id: str | int, base_url: str | None = None) -> str:
    """The web page of a record, for downloading by hand in a browser."""
    return f"{zenodo_base_url(base_url)}/records/{resolve_record_id(record_id)}"


def target_dir(remote: RemoteFile, dest: Path | str | None = None) -> Path:
    """``dest`` if given, else the model folder for checkpoints and the data folder otherwise."""
    if dest is not None:
        return Path(dest)
    return paths.model_dir() if remote.kind == "model" else paths.data_dir()


def drive_instructions(model_folder: Path | None = None) -> str:
    """How to fetch the Google Drive checkpoints by hand and where to put them."""
    folder = model_folder or paths.model_dir()
    lines = [
        "The five v2 checkpoints are published on Google Drive, which this app cannot "
        "download for you. To use one:",
        "  1. open its link below in a web browser and download the file;",
        f"  2. move it, keeping its file name (for example bulkformer_147M.pt), into {folder}",
        "Links:",
    ]
    lines += [
        f"  - {c.file_name} ({c.name}, dim {c.dim}, {c.performer_layers} performer "
        f"layer{'s' if c.performer_layers > 1 else ''}): {c.url}"
        for c in DRIVE_CHECKPOINTS
    ]
    return "\n".join(lines)


def verify_file(path: Path | str, md5: str) -> bool:
    """True when ``path`` exists and its md5 digest equals ``md5`` (hex, any case)."""
    path = Path(path)
    if not path.is_file():
        return False
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest() == md5.lower()


# --- listing --------------------------------------------------------------------------------


def list_record(
    record_id: str | int,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> list[RemoteFile]:
    """The files of one Zenodo record, classified as model, data or pretraining."""
    record_id = resolve_record_id(record_id)
    base = zenodo_base_url(base_url)
    api_url = f"{base}/api/records/{record_id}"
    what = f"Zenodo record {record_id}"
    hint = (
        f"Check your internet connection and try again. To download by hand, open "
        f"{base}/records/{record_id} in a web browser, put the model checkpoint (the .pt "
        f"file with 'ckpt' in its name) in {paths.model_dir()} and all other files in "
        f"{paths.data_dir()}."
    )

    def fetch() -> bytes:
        request = urllib.request.Request(
            api_url, headers={"Accept": "application/json", "User-Agent": _USER_AGENT}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                exc.close()
                known = ", ".join(f"{k.record_id} ({k.label})" for k in KNOWN_RECORDS)
                raise DownloadError(
                    f"{what} was not found at {base} (HTTP 404).",
                    hint=f"Check the record number. The published BulkFormer records are {known}.",
                ) from None
            raise _http_failure(exc, what, hint) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(base, exc, hint) from None

    raw = _with_retries(fetch, retries=retries, backoff=backoff)
    return _parse_listing(record_id, raw, base)


def _parse_listing(record_id: str, raw: bytes, base: str) -> list[RemoteFile]:
    bad = DownloadError(
        f"Zenodo's answer for record {record_id} is not in the expected format.",
        hint=f"Try again later, or download the files by hand from {base}/records/{record_id}.",
    )
    try:
        entries = json.loads(raw)["files"]
        files = []
        for entry in entries:
            algorithm, _, digest = str(entry["checksum"]).partition(":")
            if algorithm != "md5" or not _MD5_HEX.fullmatch(digest):
                raise bad
            url = urllib.parse.urljoin(base + "/", entry["links"]["self"])
            _require_http(url)
            key, size = str(entry["key"]), int(entry["size"])
            files.append(RemoteFile(record_id, key, size, digest.lower(), url, classify(key, size)))
    except (ValueError, KeyError, TypeError):
        raise bad from None
    return files


# --- downloading ----------------------------------------------------------------------------


def download_file(
    remote: RemoteFile,
    dest_dir: Path | str,
    *,
    progress: ProgressFn | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download ``remote`` into ``dest_dir`` (resuming, verifying), or keep a valid copy there.

    Returns the final path, which exists only once its md5 matched.
    """
    dest_dir = Path(dest_dir)
    final = paths.safe_child(dest_dir, remote.key)
    part = paths.safe_child(dest_dir, remote.key + ".part")
    _make_dir(final.parent)
    report = progress or (lambda done, total: None)
    if verify_file(final, remote.md5):
        report(remote.size, remote.size)
        record_checksum(final, remote.md5)
        return final

    _with_retries(
        lambda: _fetch_into(remote, part, report, timeout), retries=retries, backoff=backoff
    )
    if not verify_file(part, remote.md5):
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"The download of {remote.key} (record {remote.record_id}) is corrupt: its md5 "
            f"checksum does not match the one Zenodo publishes ({remote.md5}).",
            hint="The damaged file was deleted. Run the download again; if this keeps "
            f"happening, download it by hand from {record_page_url(remote.record_id)} into "
            f"{final.parent}.",
        )
    try:
        os.replace(part, final)
    except OSError as exc:
        raise DownloadError(
            f"Could not move the finished download to {final}: {exc.strerror or exc}.",
            hint=f"Check that you may write to {final.parent}.",
        ) from None
    record_checksum(final, remote.md5)
    return final


CHECKSUMS_NAME = "checksums.json"
"""``{file name: md5 hex}`` beside downloaded files, so ``bulkformer verify`` can re-check them offline."""


def record_checksum(path: Path, md5: str) -> None:
    """Add ``path``'s verified md5 to its folder's checksums.json (written atomically)."""
    book = path.parent / CHECKSUMS_NAME
    try:
        known = json.loads(book.read_text()) if book.is_file() else {}
    except ValueError:
        known = {}
    if not isinstance(known, dict):
        known = {}
    known[path.name] = md5
    tmp = book.with_name(book.name + ".tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, book)


def _fetch_into(remote: RemoteFile, part: Path, report: ProgressFn, timeout: float) -> None:
    """One attempt: continue ``part`` from its current size up to ``remote.size`` bytes."""
    offset = part.stat().st_size if part.exists() else 0
    if offset > remote.size:
        part.unlink()
        offset = 0
    if offset == remote.size:
        return  # complete already (a crash before the rename); the md5 check decides
    _check_free_space(part.parent, remote.size - offset)

    what = f"file {remote.key!r} of Zenodo record {remote.record_id}"
    by_hand = (
        f"download it by hand: open {record_page_url(remote.record_id)} in a web browser, "
        f"download {remote.key} and put it in {part.parent}."
    )
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(remote.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our partial file does not fit the server's file
            exc.close()
            part.unlink()
            raise _Transient(
                f"Zenodo could not resume the {what}.",
                f"Run the download again (it starts from the beginning), or {by_hand}",
                delay=0,
            ) from None
        if exc.code == 404:
            exc.close()
            raise DownloadError(
                f"The {what} was not found on Zenodo (HTTP 404 for {remote.url}).",
                hint=f"The record may have changed: list its files again, or {by_hand}",
            ) from None
        raise _http_failure(exc, what, f"Try again later, or {by_hand}") from None
    except (OSError, http.client.HTTPException) as exc:
        hint = f"Check your internet connection and run the download again, or {by_hand}"
        host = urllib.parse.urlsplit(remote.url)
        raise _unreachable(f"{host.scheme}://{host.netloc}", exc, hint) from None

    with response:
        if response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Transient(
                    f"Zenodo sent the wrong part of the {what}.",
                    f"Run the download again (it starts from the beginning), or {by_hand}",
                    delay=0,
                )
        else:  # 200: the server ignored our Range request, so start again from zero
            offset = 0
        done = _stream(response, part, offset, remote, report)

    if done < remote.size:
        raise _Transient(
            f"The download of {remote.key} was interrupted after {human_size(done)} of "
            f"{human_size(remote.size)}.",
            f"Run the download again: it resumes where it stopped. Or {by_hand}",
        )
    if done > remote.size:
        part.unlink()
        raise DownloadError(
            f"Zenodo sent more data for {remote.key} than the record lists "
            f"({human_size(done)} instead of {human_size(remote.size)}).",
            hint=f"The partial file was deleted. Try again later, or {by_hand}",
        )


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    offset: int,
    remote: RemoteFile,
    report: ProgressFn,
) -> int:
    """Append the body to ``part`` (truncating it first when ``offset`` is 0); bytes on disk."""
    done = offset
    report(done, remote.size)
    try:
        with open(part, "ab" if offset else "wb") as fh:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException):
                    break  # a dropped connection: keep what we have, the caller resumes
                if not chunk or done > remote.size:
                    break
                fh.write(chunk)
                done += len(chunk)
                report(min(done, remote.size), remote.size)
    except OSError as exc:
        part.unlink(missing_ok=True)
        if exc.errno in _DISK_FULL:
            raise DownloadError(
                f"The disk is full: {remote.key} ({human_size(remote.size)}) does not fit in "
                f"{part.parent}. The partial download was deleted.",
                hint="Free some space, or choose another folder for the download.",
            ) from None
        raise DownloadError(
            f"Could not write {part}: {exc.strerror or exc}.",
            hint=f"Check that you may write to {part.parent}, or choose another folder.",
        ) from None
    return done


def _content_range_start(value: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes START-END/TOTAL``, or None if unreadable."""
    if not value or not value.startswith("bytes "):
        return None
    start, _, _ = value[6:].partition("-")
    return int(start) if start.strip().isdigit() else None


# --- selecting and downloading many ---------------------------------------------------------


def select_files(
    selection: str,
    *,
    record_id: str | int | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> list[RemoteFile]:
    """The files ``selection`` names: ``"all"`` (model + data), ``"model"``, ``"data"`` or a name.

    Without ``record_id`` both known records are listed, newest first, and a file name that
    both offer is taken from the newer one. Pretraining data is selected only by its name.
    """
    record_ids = (
        [resolve_record_id(record_id)]
        if record_id is not None
        else [k.record_id for k in KNOWN_RECORDS]
    )
    by_key: dict[str, RemoteFile] = {}
    for rid in record_ids:
        for remote in list_record(
            rid, base_url=base_url, timeout=timeout, retries=retries, backoff=backoff
        ):
            by_key.setdefault(remote.key, remote)
    files = list(by_key.values())
    where = f"Zenodo record {record_ids[0]}" if len(record_ids) == 1 else "the BulkFormer records"

    kinds = {"all": ("model", "data"), "model": ("model",), "data": ("data",)}.get(selection)
    if kinds is not None:
        chosen = [f for f in files if f.kind in kinds]
        if not chosen:
            hint = drive_instructions() if "model" in kinds else "Try another record."
            raise DownloadError(f"{where} holds no {selection} files.", hint=hint)
        return chosen

    chosen = [f for f in files if f.key == selection] or [
        f for f in files if f.key.lower() == selection.lower()
    ]
    if chosen:
        return chosen
    if any(c.file_name.lower() == selection.lower() for c in DRIVE_CHECKPOINTS):
        raise DownloadError(
            f"{selection} is published on Google Drive, not on Zenodo.",
            hint=drive_instructions(),
        )
    names = ", ".join(sorted(by_key)) or "none"
    raise DownloadError(
        f"{where} has no file named {selection!r}.",
        hint=f"Use 'all', 'model', 'data' or one of these file names: {names}.",
    )


def download(
    selection: str = "all",
    *,
    record_id: str | int | None = None,
    dest: Path | str | None = None,
    progress: FileProgressFn | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> list[Path]:
    """Download the selected files (see :func:`select_files`) into their folders.

    Model checkpoints go to :func:`bulkformer.paths.model_dir`, everything else to
    :func:`bulkformer.paths.data_dir`, unless ``dest`` is given. Files already present and
    valid are kept. Free space is checked for the whole batch before the first byte.
    """
    remotes = select_files(
        selection,
        record_id=record_id,
        base_url=base_url,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
    )
    needed: dict[Path, int] = {}
    for remote in remotes:
        folder = target_dir(remote, dest)
        final = paths.safe_child(folder, remote.key)
        if not final.exists():
            part = final.with_name(final.name + ".part")
            have = part.stat().st_size if part.exists() else 0
            needed[folder] = needed.get(folder, 0) + max(remote.size - have, 0)
    for folder, n_bytes in needed.items():
        _make_dir(folder)
        _check_free_space(folder, n_bytes)

    saved = []
    for remote in remotes:
        file_progress = functools.partial(progress, remote) if progress is not None else None
        saved.append(
            download_file(
                remote,
                target_dir(remote, dest),
                progress=file_progress,
                retries=retries,
                backoff=backoff,
                timeout=timeout,
            )
        )
    return saved


# --- internals ------------------------------------------------------------------------------


def _with_retries(action: Callable[[], _T], *, retries: int, backoff: float) -> _T:
    """Run ``action``, retrying :class:`_Transient` failures with exponential backoff."""
    attempt = 0
    while True:
        try:
            return action()
        except _Transient as exc:
            if attempt >= retries:
                tries = f" Gave up after {attempt + 1} attempts." if attempt else ""
                raise DownloadError(exc.message + tries, hint=exc.hint) from None
            time.sleep(exc.delay if exc.delay is not None else backoff * 2**attempt)
            attempt += 1


def _http_failure(exc: urllib.error.HTTPError, what: str, hint: str) -> Exception:
    """A retryable :class:`_Transient` for 429/5xx, a :class:`DownloadError` otherwise."""
    delay = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
    exc.close()
    message = f"Zenodo answered HTTP {exc.code} ({exc.reason}) for the {what}."
    if exc.code == 429 or 500 <= exc.code < 600:
        return _Transient(message, hint, delay)
    return DownloadError(message, hint=hint)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = (when - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _unreachable(base: str, exc: BaseException, hint: str) -> Exception:
    """No connection: retried, except a failed name lookup (offline), which fails at once."""
    reason = getattr(exc, "reason", None) or exc
    message = f"Zenodo could not be reached at {base} ({reason})."
    if isinstance(reason, socket.gaierror):
        return DownloadError(message, hint=hint)
    return _Transient(message, hint)


def _require_http(url: str) -> None:
    """Refuse ``file:`` and other schemes, so a URL can only ever mean a web request."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(
            f"{url!r} is not a web address (http or https).",
            hint=f"Check {ZENODO_URL_ENV} or the base URL you gave.",
        )


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"Could not create the folder {folder}: {exc.strerror or exc}.",
            hint="Choose a folder you may write to.",
        ) from None


def _check_free_space(folder: Path, n_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if n_bytes > free:
        raise DownloadError(
            f"Not enough disk space in {folder}: the download needs {human_size(n_bytes)} "
            f"but only {human_size(free)} is free.",
            hint="Free some space, or choose another folder for the download.",
        )
