"""The published Zenodo records and their listings: what a record holds, classified (model,
data, pretraining), read with a size limit and a deadline, and refused where a server lists
a name or link that could write outside its folder; choosing files by a selection."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bulkformer import paths
from bulkformer.errors import DownloadError
from bulkformer.fetch import _registry as registry
from bulkformer.fetch._registry import PublishedModel
from bulkformer.fetch.zenodo._checksums import CHECKSUMS_NAME, MD5_HEX
from bulkformer.fetch.zenodo._disk import human_size
from bulkformer.fetch.zenodo._http import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    OPENER,
    USER_AGENT,
    ZENODO_URL_ENV,
    bound_next_read,
    http_failure,
    unreachable,
    with_retries,
    zenodo_base_url,
)
from bulkformer.fetch.zenodo._pace import (
    GRACE_ENV,
    LISTING_BUDGET_BYTES,
    Pace,
    read_timeout,
)

FileKind = Literal["model", "data", "pretraining"]
MAX_LISTING_BYTES = 8 * 2**20
"""Largest record listing read: Zenodo's listings of the BulkFormer records are a few kB."""
LARGE_FILE_BYTES = 10**9
"""A non-checkpoint file this big is pretraining data: the whole published data set is ~244 MB."""
_MODEL_NAME = re.compile(r".*ckpt.*\.pt|bulkformer_\d+m\.pt", re.IGNORECASE)
_PRETRAINING_NAME = re.compile(r"prebulk.*", re.IGNORECASE)

KnownRecord = registry.ZenodoRecord
KNOWN_RECORDS: tuple[KnownRecord, ...] = registry.RECORDS
"""Newest first: when both records offer a file name, the newer copy wins."""

DRIVE_CHECKPOINTS: tuple[PublishedModel, ...] = tuple(
    m for m in registry.MODELS.values() if m.source == "drive"
)
"""The published models whose checkpoint is on Google Drive (the v2 sizes)."""


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


def by_hand(record_id: str, base: str) -> str:
    """How to get a record's files in a web browser, naming the checkpoint it holds (v1's) or
    saying that its release's checkpoints are on Google Drive (v2's), and where each file goes."""
    page = f"{base}/records/{record_id}"
    here = [m.checkpoint for m in registry.MODELS.values()
            if m.source == "zenodo" and m.data_record.record_id == record_id]
    on_drive = [f"{m.checkpoint} at {m.source_url}" for m in DRIVE_CHECKPOINTS
                if m.data_record.record_id == record_id]
    if here:
        words = (f"To download by hand, open {page} in a web browser, put the model checkpoint "
                 f"({', '.join(here)}) in {paths.model_dir()} and all other files in {paths.data_dir()}.")
    else:
        words = f"To download by hand, open {page} in a web browser and put its files in {paths.data_dir()}."
    if on_drive:
        words += (f" This release's checkpoints are not on Zenodo but on Google Drive: open the link of the "
                  f"one you want and put the file, keeping its name, in {paths.model_dir()} "
                  f"({'; '.join(on_drive)}).")
    return words


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
    deadline = (pace or Pace.from_env()).deadline(LISTING_BUDGET_BYTES)
    base = zenodo_base_url(base_url)
    api_url = f"{base}/api/records/{record_id}"
    what = f"Zenodo record {record_id}"
    hint = f"Check your internet connection and try again. {by_hand(record_id, base)}"

    def fetch() -> bytes:
        request = urllib.request.Request(
            api_url, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
        )
        try:
            with OPENER.open(request, timeout=read_timeout(timeout, deadline)) as response:
                raw = _read_listing(response, deadline, what, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                exc.close()
                known = ", ".join(f"{k.record_id} ({k.label})" for k in KNOWN_RECORDS)
                raise DownloadError(
                    f"{what} was not found at {base} (HTTP 404).",
                    hint=f"Check the record number. The published BulkFormer records are {known}.",
                ) from None
            raise http_failure(exc, what, hint) from None
        except (OSError, http.client.HTTPException) as exc:
            raise unreachable(base, exc, hint) from None
        if len(raw) > MAX_LISTING_BYTES:
            raise DownloadError(
                f"The answer for {what} from {base} is larger than {human_size(MAX_LISTING_BYTES)}; "
                "a Zenodo listing is a few kB, so it was not read.",
                hint=f"Check {ZENODO_URL_ENV} or the base URL you gave. {hint}",
            )
        return raw

    raw = with_retries(fetch, retries=retries, backoff=backoff, deadline=deadline)
    return _parse_listing(record_id, raw, base)


def _read_listing(response: http.client.HTTPResponse, deadline: float, what: str,
                  timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The body, up to one byte past :data:`MAX_LISTING_BYTES`, read as it arrives until the
    deadline (a server that dribbles never trips the per-read timeout; no read waits past it)."""
    chunks: list[bytes] = []
    n_bytes = 0
    too_slow = DownloadError(f"The listing of {what} arrives too slowly; it was not read to its end.",
                             hint=f"Try again later. To wait longer, set {GRACE_ENV} to more seconds "
                                  "(default 120).")
    while n_bytes <= MAX_LISTING_BYTES:
        if time.monotonic() > deadline:
            raise too_slow
        bound_next_read(response, read_timeout(timeout, deadline))
        try:
            chunk = response.read1(MAX_LISTING_BYTES + 1 - n_bytes)
        except TimeoutError:
            if time.monotonic() >= deadline - 0.05:
                raise too_slow from None
            raise
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
            if algorithm != "md5" or not MD5_HEX.fullmatch(digest):
                raise bad
            url = urllib.parse.urljoin(base + "/", entry["links"]["self"])
            key, size = str(entry["key"]), int(entry["size"])
            _check_listed(record_id, key, size, url, base)
            files.append(RemoteFile(record_id, key, size, digest.lower(), url, classify(key, size)))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise bad from None  # RecursionError: json's parser recurses once per nested [ or {
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
