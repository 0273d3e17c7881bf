"""Fetch the published BulkFormer checkpoints and gene tables from Zenodo and Google Drive.

Zenodo: standard library only (``urllib.request``). A file is streamed into ``<name>.part``,
resumed with an HTTP ``Range`` request after an interruption, checked against Zenodo's md5,
and only then renamed to its final name: a file with the final name is therefore always
complete and verified. Every failure a user can meet (no network, HTTP errors, a corrupt
transfer, a full disk, a server too slow to finish) is raised as a
:class:`~bulkformer.errors.DownloadError` whose hint says how to get the file by hand.

The five v2 checkpoints (:data:`DRIVE_CHECKPOINTS`) are on Google Drive: :mod:`bulkformer.drive`
fetches them with ``gdown`` and checks them; :mod:`bulkformer.model_fetch` fetches one
published model with the gene table and graph of its family. Both build on this module's
helpers (URLs, :class:`Pace`, the checksum book, free-space checks).

A server is never trusted: listings are read up to :data:`MAX_LISTING_BYTES`; a file name must
be a plain name that is not one of ours (:data:`CHECKSUMS_NAME`, ``*.part``); a size must not
be negative; redirects must stay on the same host; every file has an overall deadline
(:class:`Pace`); plain http is allowed only for this computer or a base URL configured in the
environment (a test server).

What was fetched is recorded in each folder's :data:`CHECKSUMS_NAME` (size, md5 and/or
sha256): :func:`read_checksums` and :func:`check_recorded` let ``bulkformer verify`` re-check
files offline.
"""

from __future__ import annotations

import email.utils
import errno
import functools
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from bulkformer import paths, registry
from bulkformer.errors import DownloadError
from bulkformer.registry import PublishedModel

FileKind = Literal["model", "data", "pretraining"]
ProgressFn = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_done`` includes bytes resumed from disk."""
FileProgressFn = Callable[["RemoteFile", int, int], None]
"""``progress(remote, bytes_done, bytes_total)``: like :data:`ProgressFn`, naming the file."""

ZENODO_URL_ENV = "BULKFORMER_ZENODO_URL"
DEFAULT_ZENODO_URL = "https://zenodo.org"
DRIVE_URL_ENV = "BULKFORMER_DRIVE_URL"
"""Base URL for Google Drive downloads (``<base>/uc?id=<file id>&export=download``): a test server."""
DEFAULT_DRIVE_URL = "https://drive.google.com"
MIN_RATE_ENV = "BULKFORMER_DOWNLOAD_MIN_RATE"
"""Slowest average transfer (bytes/s) a download may have before its deadline ends it."""
MAX_LISTING_BYTES = 8 * 2**20
"""Largest record listing read: Zenodo's listings of the BulkFormer records are a few kB."""
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
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

KnownRecord = registry.ZenodoRecord
KNOWN_RECORDS: tuple[KnownRecord, ...] = registry.RECORDS
"""Newest first: when both records offer a file name, the newer copy wins."""

DRIVE_CHECKPOINTS: tuple[PublishedModel, ...] = tuple(
    m for m in registry.MODELS.values() if m.source == "drive"
)
"""The published models whose checkpoint is on Google Drive (the v2 sizes)."""


class DownloadCancelled(DownloadError):
    """The caller asked to stop; the part fetched so far is kept, so the next start resumes."""


@dataclass(frozen=True)
class Pace:
    """The overall deadline of one file: ``grace_s + bytes / min_rate`` seconds.

    A server that sends a byte every minute never trips a per-read timeout; this deadline
    ends it. ``min_rate`` defaults to ``BULKFORMER_DOWNLOAD_MIN_RATE`` or 50 kB/s (a 600 MB
    checkpoint then has 3 h 22 min).
    """

    min_rate: float = 50_000.0
    grace_s: float = 120.0

    @classmethod
    def from_env(cls) -> Pace:
        text = os.environ.get(MIN_RATE_ENV, "").strip()
        if not text:
            return cls()
        try:
            rate = float(text)
        except ValueError:
            rate = -1.0
        if not rate > 0:
            raise DownloadError(f"{MIN_RATE_ENV}={text!r} is not a positive number of bytes per second.",
                                hint=f"Set {MIN_RATE_ENV} to e.g. 50000, or unset it.")
        return cls(min_rate=rate)

    def deadline(self, n_bytes: int) -> float:
        """``time.monotonic()`` value by which ``n_bytes`` must have arrived."""
        return time.monotonic() + self.grace_s + max(n_bytes, 0) / self.min_rate


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record, as its REST API describes it."""

    record_id: str
    key: str
    size: int
    md5: str
    url: str
    kind: FileKind
    source: Literal["zenodo", "drive"] = "zenodo"


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
    _require_web_url(url)
    return url


def drive_base_url(base_url: str | None = None) -> str:
    """The argument, else ``BULKFORMER_DRIVE_URL``, else https://drive.google.com (no trailing /)."""
    url = (base_url or os.environ.get(DRIVE_URL_ENV) or DEFAULT_DRIVE_URL).rstrip("/")
    _require_web_url(url)
    return url


def drive_download_url(file_id: str, base_url: str | None = None) -> str:
    """Drive's direct-download address of a file id (gdown follows Drive's confirm page)."""
    return f"{drive_base_url(base_url)}/uc?id={urllib.parse.quote(file_id)}&export=download"


def record_page_url(record_id: str | int, base_url: str | None = None) -> str:
    """The web page of a record, for downloading by hand in a browser."""
    return f"{zenodo_base_url(base_url)}/records/{resolve_record_id(record_id)}"


def target_dir(remote: RemoteFile, dest: Path | str | None = None) -> Path:
    """``dest`` if given, else the model folder for checkpoints and the data folder otherwise."""
    if dest is not None:
        return Path(dest)
    return paths.model_dir() if remote.kind == "model" else paths.data_dir()


def drive_instructions(model_folder: Path | None = None) -> str:
    """How to fetch the Google Drive checkpoints, with this package or by hand."""
    folder = model_folder or paths.model_dir()
    lines = [
        ("The five v2 checkpoints are published on Google Drive. 'bulkformer download model "
         "--size 147M' (or another size) fetches one with its gene table and graph. By hand:"),
        "  1. open its link below in a web browser and download the file;",
        f"  2. move it, keeping its file name (for example bulkformer_147M.pt), into {folder}",
        "Links:",
    ]
    lines += [
        f"  - {c.checkpoint} ({c.label}, dim {c.config.dim}, {c.config.p_repeat} performer "
        f"layer{'s' if c.config.p_repeat > 1 else ''}, about {human_size(c.download_bytes)}): "
        f"{c.source_url}"
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
    pace: Pace | None = None,
) -> list[RemoteFile]:
    """The files of one Zenodo record, classified as model, data or pretraining.

    At most :data:`MAX_LISTING_BYTES` are read, within ``pace``'s deadline for that many.
    """
    record_id = resolve_record_id(record_id)
    deadline = (pace or Pace.from_env()).deadline(MAX_LISTING_BYTES)
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
            with _OPENER.open(request, timeout=timeout) as response:
                raw = _read_listing(response, deadline, what)
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
        if len(raw) > MAX_LISTING_BYTES:
            raise DownloadError(
                f"The answer for {what} from {base} is larger than {human_size(MAX_LISTING_BYTES)}; "
                "a Zenodo listing is a few kB, so it was not read.",
                hint=f"Check {ZENODO_URL_ENV} or the base URL you gave. {hint}",
            )
        return raw

    raw = _with_retries(fetch, retries=retries, backoff=backoff, deadline=deadline)
    return _parse_listing(record_id, raw, base)


def _read_listing(response: http.client.HTTPResponse, deadline: float, what: str) -> bytes:
    """The body, up to one byte past :data:`MAX_LISTING_BYTES`, read as it arrives until the
    deadline (a server that dribbles never trips the per-read timeout)."""
    chunks: list[bytes] = []
    n_bytes = 0
    while n_bytes <= MAX_LISTING_BYTES:
        if time.monotonic() > deadline:
            raise DownloadError(f"The listing of {what} arrives too slowly; it was not read to its end.",
                                hint="Try again later.")
        chunk = response.read1(MAX_LISTING_BYTES + 1 - n_bytes)
        if not chunk:
            break
        chunks.append(chunk)
        n_bytes += len(chunk)
    return b"".join(chunks)


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
            key, size = str(entry["key"]), int(entry["size"])
            _check_listed(record_id, key, size, url, base)
            files.append(RemoteFile(record_id, key, size, digest.lower(), url, classify(key, size)))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise bad from None
    return files


def _check_listed(record_id: str, key: str, size: int, url: str, base: str) -> None:
    """Refuse a listed file that could write outside its folder or over our own files."""
    where = f"Zenodo record {record_id} at {base}"
    hint = "The server's answer is not trustworthy: check the record number and the base URL."
    if not is_plain_name(key):
        raise DownloadError(f"{where} lists a file name that is not a plain file name: {key!r}.", hint=hint)
    if size < 0:
        raise DownloadError(f"{where} lists {key!r} with a negative size ({size}).", hint=hint)
    if urllib.parse.urlsplit(url)[:2] != urllib.parse.urlsplit(base)[:2]:
        raise DownloadError(f"{where} lists {key!r} on another server ({url}).", hint=hint)


def is_plain_name(key: str) -> bool:
    """A file name we may create: no folder part, no NUL, not hidden, not one of our own
    bookkeeping files (:data:`CHECKSUMS_NAME`, ``*.part``, ``*.tmp``, ``*.download``)."""
    return bool(
        key
        and len(key.encode("utf-8", "surrogatepass")) <= 200
        and not any(c in key for c in "/\\\x00")
        and not key.startswith(".")
        and key.lower() not in (CHECKSUMS_NAME, CHECKSUMS_NAME + ".tmp")
        and not key.lower().endswith((".part", ".tmp", ".download"))
    )


# --- downloading ----------------------------------------------------------------------------


def download_file(
    remote: RemoteFile,
    dest_dir: Path | str,
    *,
    progress: ProgressFn | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    timeout: float = DEFAULT_TIMEOUT,
    pace: Pace | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Download ``remote`` into ``dest_dir`` (resuming, verifying), or keep a valid copy there.

    Returns the final path, which exists only once its md5 matched. ``pace`` bounds the
    whole file's time (default :meth:`Pace.from_env`); ``should_stop()`` True raises
    :class:`DownloadCancelled`, keeping the part fetched so far.
    """
    dest_dir = Path(dest_dir)
    if not is_plain_name(remote.key):
        raise DownloadError(f"{remote.key!r} is not a plain file name; it is not downloaded.",
                            hint="Use a file name without '/', '..' or an absolute path.")
    final = paths.safe_child(dest_dir, remote.key)
    part = paths.safe_child(dest_dir, remote.key + ".part")
    make_dir(final.parent)
    report = progress_reporter(progress, should_stop)
    if verify_file(final, remote.md5):
        report(remote.size, remote.size)
        record_checksum(final, remote.md5)
        return final

    have = part.stat().st_size if part.is_file() else 0
    deadline = (pace or Pace.from_env()).deadline(remote.size - have)
    _with_retries(
        lambda: _fetch_into(remote, part, report, timeout, deadline),
        retries=retries, backoff=backoff, deadline=deadline,
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
"""``{file name: {"size": n, "md5": hex, "sha256": hex}}`` beside downloaded files (the md5 of
Zenodo files, the sha256 of Drive files), so ``bulkformer verify`` can re-check them offline.
Older books hold ``{file name: md5 hex}``; both are read."""
_BOOK_LOCK = threading.Lock()
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Recorded:
    """What the checksum book says about one file (``None``: not recorded)."""

    size: int | None = None
    md5: str | None = None
    sha256: str | None = None


def read_checksums(folder: Path) -> dict[str, Recorded]:
    """The folder's checksum book, or nothing if it has none (or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / CHECKSUMS_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    book = {}
    for name, entry in data.items():
        if isinstance(entry, str):
            entry = {"md5": entry.removeprefix("md5:")}
        if not isinstance(entry, dict):
            continue
        size, md5, sha256 = entry.get("size"), entry.get("md5"), entry.get("sha256")
        book[str(name)] = Recorded(
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
            md5=md5.lower() if isinstance(md5, str) and _MD5_HEX.fullmatch(md5) else None,
            sha256=sha256.lower() if isinstance(sha256, str) and _SHA256_HEX.fullmatch(sha256) else None,
        )
    return {name: r for name, r in book.items() if r != Recorded()}


def check_recorded(path: Path, recorded: Recorded) -> bool:
    """True when ``path`` has the recorded size and digests (it is read once, in chunks)."""
    path = Path(path)
    if not path.is_file() or (recorded.size is not None and path.stat().st_size != recorded.size):
        return False
    md5, sha256 = file_digests(path)
    return (recorded.md5 in (None, md5)) and (recorded.sha256 in (None, sha256))


def record_checksum(path: Path, md5: str | None = None, *, sha256: str | None = None) -> None:
    """Add ``path``'s size and verified digest(s) to its folder's book (written atomically)."""
    path = Path(path)
    entry = {"size": path.stat().st_size}
    entry |= {"md5": md5.lower()} if md5 else {}
    entry |= {"sha256": sha256.lower()} if sha256 else {}
    book = path.parent / CHECKSUMS_NAME
    with _BOOK_LOCK:
        try:
            known = json.loads(book.read_text()) if book.is_file() else {}
        except ValueError:
            known = {}
        if not isinstance(known, dict):
            known = {}
        known[path.name] = entry
        tmp = book.with_name(book.name + ".tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, book)


def file_digests(path: Path) -> tuple[str, str]:
    """(md5, sha256) hex of a file, read once in chunks."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def progress_reporter(progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> ProgressFn:
    """``progress``, raising :class:`DownloadCancelled` first when ``should_stop()`` says so."""

    def report(done: int, total: int) -> None:
        if should_stop is not None and should_stop():
            raise DownloadCancelled("The download was cancelled.",
                                    hint="Start it again to continue: the part fetched so far is kept.")
        if progress is not None:
            progress(done, total)

    return report


def _fetch_into(remote: RemoteFile, part: Path, report: ProgressFn, timeout: float, deadline: float) -> None:
    """One attempt: continue ``part`` from its current size up to ``remote.size`` bytes."""
    offset = part.stat().st_size if part.exists() else 0
    if offset > remote.size:
        part.unlink()
        offset = 0
    if offset == remote.size:
        return  # complete already (a crash before the rename); the md5 check decides
    check_free_space(part.parent, remote.size - offset)

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
        response = _OPENER.open(request, timeout=timeout)
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
        done = _stream(response, part, offset, remote, report, deadline)

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
    deadline: float,
) -> int:
    """Append the body to ``part`` (truncating it first when ``offset`` is 0); bytes on disk.

    ``read1`` returns whatever has arrived, so a server that dribbles bytes meets the
    ``deadline`` check within one read timeout of it.
    """
    done = offset
    report(done, remote.size)
    try:
        with open(part, "ab" if offset else "wb") as fh:
            while True:
                if time.monotonic() > deadline:
                    raise too_slow_error(remote.key, done, remote.size)
                try:
                    chunk = response.read1(_CHUNK)
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
    for drive in DRIVE_CHECKPOINTS:
        if drive.checkpoint.lower() == selection.lower():
            raise DownloadError(
                f"{selection} is published on Google Drive, not on Zenodo: get it with "
                f"'bulkformer download model --size {drive.name}'.",
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
        make_dir(folder)
        check_free_space(folder, n_bytes)

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


def partial_bytes(final: Path) -> int:
    """Bytes of an unfinished download of ``final`` on disk (ours: ``.part``; gdown's:
    ``<name><random>.part``)."""
    folder = final.parent
    if not folder.is_dir():
        return 0
    sizes = [p.stat().st_size for p in folder.glob(glob.escape(final.name) + "*.part") if p.is_file()]
    return max(sizes, default=0)


# --- internals ------------------------------------------------------------------------------


def _with_retries(
    action: Callable[[], _T], *, retries: int, backoff: float, deadline: float | None = None
) -> _T:
    """Run ``action``, retrying :class:`_Transient` failures with exponential backoff
    (never waiting past ``deadline``)."""
    attempt = 0
    while True:
        try:
            return action()
        except _Transient as exc:
            delay = exc.delay if exc.delay is not None else backoff * 2**attempt
            late = deadline is not None and time.monotonic() + delay > deadline
            if attempt >= retries or late:
                tries = f" Gave up after {attempt + 1} attempts." if attempt else ""
                raise DownloadError(exc.message + tries, hint=exc.hint) from None
            time.sleep(delay)
            attempt += 1


def too_slow_error(key: str, done: int, total: int) -> DownloadError:
    """The error for a file that missed its :class:`Pace` deadline (its part is kept)."""
    return DownloadError(
        f"The download of {key} is too slow: {human_size(done)} of {human_size(total)} arrived "
        "before its deadline.",
        hint=f"Run the download again later: it resumes where it stopped. To allow slower "
        f"connections, set {MIN_RATE_ENV} to fewer bytes per second (default 50000).",
    )


class _SameHostRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme, host and port."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (new.scheme, new.netloc) != (old.scheme, old.netloc):
            fp.close()
            raise DownloadError(
                f"{old.scheme}://{old.netloc} redirected the download to another server ({newurl}); "
                "it was not followed.",
                hint=f"Check {ZENODO_URL_ENV} or the base URL you gave, or download the file by hand.",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHostRedirect)


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


def _require_web_url(url: str) -> None:
    """https, or http to this computer or to a base URL set in the environment: a URL can
    never mean a file, and plain http is only for a test server or a mirror an admin chose."""
    parts = urllib.parse.urlsplit(url)
    chosen = {urllib.parse.urlsplit(u).netloc for u in
              (os.environ.get(ZENODO_URL_ENV), os.environ.get(DRIVE_URL_ENV)) if u}
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and (parts.hostname in _LOCAL_HOSTS or parts.netloc in chosen):
        return
    raise DownloadError(
        f"{url!r} is not a secure web address (https).",
        hint=f"Check {ZENODO_URL_ENV}, {DRIVE_URL_ENV} or the base URL you gave; plain http is "
        "allowed only for this computer or a base URL you set.",
    )


def make_dir(folder: Path) -> None:
    """Create ``folder`` (and parents), or a :class:`DownloadError` saying it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"Could not create the folder {folder}: {exc.strerror or exc}.",
            hint="Choose a folder you may write to.",
        ) from None


def check_free_space(folder: Path, n_bytes: int) -> None:
    """Refuse, before the first byte, a download that does not fit on the disk."""
    free = shutil.disk_usage(folder).free
    if n_bytes > free:
        raise DownloadError(
            f"Not enough disk space in {folder}: the download needs {human_size(n_bytes)} "
            f"but only {human_size(free)} is free.",
            hint="Free some space, or choose another folder for the download.",
        )
