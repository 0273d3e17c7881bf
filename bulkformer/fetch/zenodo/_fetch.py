"""Downloading Zenodo files: one file streamed into ``<name>.part``, resumed with a ``Range``
request, checked against Zenodo's md5 and only then renamed; a selection of files at once,
with free space checked for the whole batch first."""

from __future__ import annotations

import functools
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bulkformer import paths
from bulkformer.errors import DownloadError
from bulkformer.fetch.zenodo._checksums import record_checksum, verify_file
from bulkformer.fetch.zenodo._disk import (
    DISK_FULL,
    check_free_space,
    human_size,
    make_dir,
)
from bulkformer.fetch.zenodo._http import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    OPENER,
    USER_AGENT,
    Transient,
    bound_next_read,
    http_failure,
    unreachable,
    with_retries,
)
from bulkformer.fetch.zenodo._listing import (
    RemoteFile,
    is_plain_name,
    record_page_url,
    select_files,
    target_dir,
)
from bulkformer.fetch.zenodo._pace import (
    Pace,
    ProgressFn,
    progress_reporter,
    read_timeout,
    too_slow_error,
)

FileProgressFn = Callable[["RemoteFile", int, int], None]
"""``progress(remote, bytes_done, bytes_total)``: like :data:`ProgressFn`, naming the file."""

_CHUNK = 256 * 1024


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
    with_retries(
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
    response = _open_from(remote, part, offset, read_timeout(timeout, deadline), what=what, by_hand=by_hand)
    with response:
        _refuse_web_page(response, remote, part, by_hand)
        if response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise Transient(
                    f"Zenodo sent the wrong part of the {what}.",
                    f"Run the download again (it starts from the beginning), or {by_hand}",
                    delay=0,
                )
        else:  # 200: the server ignored our Range request, so start again from zero
            offset = 0
        done = _stream(response, part, offset, remote, report, deadline, timeout)
    _check_received(remote, part, done, by_hand)


def _refuse_web_page(response: http.client.HTTPResponse, remote: RemoteFile, part: Path, by_hand: str) -> None:
    """A web page (an error or maintenance page answered with 200) is not the file: it is
    refused at once, and never kept as a part to resume (issue #28: one was kept as an
    "interrupted" part of 5.5 kB)."""
    kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml") and not remote.key.lower().endswith((".html", ".htm")):
        if response.status != 206:  # a 200 would replace the part: keep nothing of it
            part.unlink(missing_ok=True)
        raise Transient(
            f"Zenodo answered with a web page instead of the {remote.key} file (it may be down for "
            "maintenance).",
            f"Try again later, or {by_hand}",
        )


def _open_from(remote: RemoteFile, part: Path, offset: int, timeout: float, *,
               what: str, by_hand: str) -> http.client.HTTPResponse:
    """The server's answer for ``remote`` from byte ``offset`` on (a ``Range`` request when
    resuming); a 416 drops ``part`` and is retried from the beginning, a 404 is final."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(remote.url, headers=headers)
    try:
        return OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our partial file does not fit the server's file
            exc.close()
            part.unlink()
            raise Transient(
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
        raise http_failure(exc, what, f"Try again later, or {by_hand}") from None
    except (OSError, http.client.HTTPException) as exc:
        hint = f"Check your internet connection and run the download again, or {by_hand}"
        host = urllib.parse.urlsplit(remote.url)
        raise unreachable(f"{host.scheme}://{host.netloc}", exc, hint) from None


def _check_received(remote: RemoteFile, part: Path, done: int, by_hand: str) -> None:
    """Too few bytes: retried (the next attempt resumes); too many: ``part`` is deleted."""
    if done < remote.size:
        raise Transient(
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
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Append the body to ``part`` (truncating it first when ``offset`` is 0); bytes on disk.

    ``read1`` returns whatever has arrived, and no read waits past ``deadline``: a server that
    dribbles bytes, or stalls mid-body, is ended at the deadline, not one read timeout later.
    """
    done = offset
    report(done, remote.size)
    try:
        with open(part, "ab" if offset else "wb") as fh:
            while True:
                if time.monotonic() > deadline:
                    raise too_slow_error(remote.key, done, remote.size)
                bound_next_read(response, read_timeout(timeout, deadline))
                try:
                    chunk = response.read1(_CHUNK)
                except (OSError, http.client.HTTPException):
                    if time.monotonic() >= deadline - 0.05:
                        raise too_slow_error(remote.key, done, remote.size) from None
                    break  # a dropped connection: keep what we have, the caller resumes
                if not chunk or done > remote.size:
                    break
                fh.write(chunk)
                done += len(chunk)
                report(min(done, remote.size), remote.size)
    except OSError as exc:
        part.unlink(missing_ok=True)
        if exc.errno in DISK_FULL:
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
