"""Google Drive downloads of the v2 checkpoints, with ``gdown``, and the check that a fetched
file is the checkpoint it should be.

Drive publishes no checksum, so a fetched file is loaded as tensors (``weights_only=True``,
memory-mapped) and its family and shape, read off the tensors, compared with the registry
before it is renamed into place; Drive's HTML page or a truncated file is refused and deleted.
gdown writes ``<name>.download<8 random>.part`` and resumes it after an interruption; an
overall deadline (:class:`~bulkformer.fetch.zenodo.Pace`) and a stop request end it through
gdown's ``cancel`` event. Redirects follow the Zenodo client's same-host rule: gdown's session
gets a response hook that refuses, before it is followed, a redirect to another scheme, host
or port, Drive's own hosts (drive.google.com → drive.usercontent.google.com, over https) apart.
"""

from __future__ import annotations

import errno
import importlib
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from bulkformer import paths
from bulkformer.errors import DownloadError
from bulkformer.fetch._registry import PublishedModel
from bulkformer.fetch.zenodo import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    DownloadCancelled,
    Pace,
    ProgressFn,
    check_free_space,
    check_recorded,
    drive_download_url,
    file_digests,
    make_dir,
    partial_bytes,
    progress_reporter,
    read_checksums,
    record_checksum,
    too_slow_error,
)


def fetch_drive_checkpoint(
    model: PublishedModel,
    dest_dir: Path | str,
    *,
    url: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    pace: Pace | None = None,
) -> Path:
    """Fetch ``model``'s checkpoint from Google Drive with gdown, check it, record it.

    gdown writes ``<name>.download<random>.part`` and resumes it after an interruption; the
    finished ``<name>.download`` is loaded as tensors and its shapes compared with the registry
    (:func:`check_checkpoint`) before it is renamed to ``<name>``; a file that is no
    BulkFormer checkpoint (Drive's HTML page, a truncated file) is deleted. A checkpoint
    already in place is kept when it matches the checksum book, or, placed by hand, when it
    passes the same check.
    """
    dest_dir = Path(dest_dir)
    make_dir(dest_dir)
    final = paths.safe_child(dest_dir, model.checkpoint)
    staging = paths.safe_child(dest_dir, model.checkpoint + ".download")
    report = progress_reporter(progress, should_stop)
    url = url or drive_download_url(model.drive_id)
    if final.is_file() and _keep_existing(final, model):
        size = final.stat().st_size
        report(size, size)
        return final

    have = partial_bytes(staging)
    check_free_space(dest_dir, max(model.download_bytes - have, 0))
    report(have, max(model.download_bytes, have))
    deadline = (pace or Pace.from_env()).deadline(model.download_bytes - have)
    _gdown_into(staging, model, dest_dir=dest_dir, url=url, report=report, should_stop=should_stop,
                deadline=deadline, timeout=timeout, retries=retries)
    return _install(staging, final, model)


def _gdown_into(staging: Path, model: PublishedModel, *, dest_dir: Path, url: str, report: ProgressFn,
                should_stop: Callable[[], bool] | None, deadline: float, timeout: float, retries: int) -> None:
    """Run gdown into ``staging`` (resuming its part), ended by a stop request or the deadline;
    each of its failures as a :class:`DownloadError` that says how to get the file by hand
    (into ``dest_dir``, the folder as the caller named it)."""
    import gdown  # imported here: requests and BeautifulSoup are needed only for Drive

    cancel, finished = threading.Event(), threading.Event()
    responses: list[object] = []  # gdown's responses, so that the deadline can end a stalled read
    watch = threading.Thread(target=_watch, args=(cancel, finished, should_stop, deadline, responses),
                             name="bulkformer-download-watch", daemon=True)
    watch.start()
    by_hand = (f"Or download it by hand: open {model.source_url} in a web browser and put the file, "
               f"named {model.checkpoint}, into {dest_dir}.")

    arrived = [partial_bytes(staging)]  # the most gdown reported: its part may not be flushed yet

    def on_chunk(done: int, total: int | None) -> None:
        arrived[0] = max(arrived[0], done)
        expected = total if total else model.download_bytes
        report(done, max(expected, done))

    _guard_gdown_sessions()
    _GUARD.allowed, _GUARD.responses = _allowed_origins(url), responses
    try:
        gdown.download(url=url, output=str(staging), quiet=True, resume=True, use_cookies=False,
                       progress=on_chunk, timeout=timeout, retries=retries, cancel=cancel)
    except Exception as exc:  # noqa: BLE001 - sorted below; others re-raised
        _raise_drive_error(exc, gdown, model, staging=staging, dest_dir=dest_dir, by_hand=by_hand,
                           should_stop=should_stop, timed_out=cancel.is_set(), arrived=arrived[0])
    finally:
        _GUARD.allowed, _GUARD.responses = None, None
        finished.set()


def _raise_drive_error(exc: Exception, gdown: object, model: PublishedModel, *, staging: Path, dest_dir: Path,
                       by_hand: str, should_stop: Callable[[], bool] | None, timed_out: bool,
                       arrived: int) -> None:
    """gdown's failure as a :class:`DownloadError` that says what happened and what to do."""
    try:
        raise exc
    except gdown.exceptions.DownloadCancelled:  # type: ignore[attr-defined]
        if should_stop is not None and should_stop():
            raise DownloadCancelled("The download was cancelled.",
                                    hint="Start it again to continue: the part fetched so far is kept.") from None
        raise _too_slow(model, max(arrived, partial_bytes(staging))) from None
    except gdown.exceptions.FileURLRetrievalError as refused:  # type: ignore[attr-defined]
        raise DownloadError(
            f"Google Drive did not hand out {model.checkpoint} ({_first_line(refused)}).",
            hint=f"Drive limits how often a shared file may be downloaded: try again later. {by_hand}",
        ) from None
    except DownloadError:  # ours: a stop request seen by the progress callback, a foreign redirect
        raise
    except Exception as failure:  # noqa: BLE001 - gdown and requests raise their own types; others re-raised
        if timed_out and not (should_stop is not None and should_stop()):  # the deadline cut a read short
            raise _too_slow(model, max(arrived, partial_bytes(staging))) from None
        raise _drive_failure(failure, model, by_hand, dest_dir) from None


#: Google Drive's own hosts, between which its download flow redirects (https only).
DRIVE_ORIGINS = frozenset({("https", "drive.google.com"), ("https", "drive.usercontent.google.com")})
#: For the download running in this thread: the origins a redirect may lead to (``allowed``;
#: None: no rule) and the list its responses are put in (``responses``).
_GUARD = threading.local()
_GUARD_LOCK = threading.Lock()


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _allowed_origins(url: str) -> frozenset[tuple[str, str]]:
    """The start URL's own scheme, host and port; Drive's hosts too when it starts at Drive."""
    start = _origin(url)
    return frozenset({start} | (DRIVE_ORIGINS if start in DRIVE_ORIGINS else set()))


def _refuse_foreign_redirect(response: object, *args: object, **kwargs: object) -> object:
    """requests response hook: runs on every response, a redirect's before it is followed;
    every response is noted, so that the deadline can end a read that stalls."""
    seen = getattr(_GUARD, "responses", None)
    if seen is not None:
        seen.append(response)
    allowed = getattr(_GUARD, "allowed", None)
    if allowed is None or not getattr(response, "is_redirect", False):
        return response
    target = urllib.parse.urljoin(response.url, response.headers.get("location", ""))  # type: ignore[attr-defined]
    if _origin(target) not in allowed:
        response.close()  # type: ignore[attr-defined]
        start = "://".join(_origin(response.url))  # type: ignore[attr-defined]
        raise DownloadError(
            f"{start} redirected the download to another server ({target}); it was not followed.",
            hint="Check BULKFORMER_DRIVE_URL or the address you gave, or download the file by hand.")
    return response


def _guard_gdown_sessions() -> None:
    """Once per process: every requests session gdown makes gets :func:`_refuse_foreign_redirect`
    (gdown 6.5 takes no session of ours; ``_get_session`` is where it makes its own)."""
    module = importlib.import_module("gdown.download")
    with _GUARD_LOCK:
        make = module._get_session
        if getattr(make, "_bulkformer_guarded", False):
            return

        def guarded(*args: object, **kwargs: object) -> object:
            session, cookies_file = make(*args, **kwargs)
            session.hooks["response"].append(_refuse_foreign_redirect)
            return session, cookies_file

        guarded._bulkformer_guarded = True  # type: ignore[attr-defined]
        module._get_session = guarded


def _too_slow(model: PublishedModel, saved: int) -> DownloadError:
    return too_slow_error(model.checkpoint, saved, model.download_bytes,
                          batch="Google Drive's client saves 512 kB at a time")


def _install(staging: Path, final: Path, model: PublishedModel) -> Path:
    """Check the finished download, rename it to ``final`` and record its sha256; a file that
    is not ``model``'s checkpoint is deleted."""
    try:
        check_checkpoint(staging, model)
        _, sha256 = file_digests(staging)
        os.replace(staging, final)
    except DownloadError:
        staging.unlink(missing_ok=True)
        raise
    except OSError as exc:
        raise DownloadError(f"Could not move the finished download to {final}: {exc.strerror or exc}.",
                            hint=f"Check that you may write to {final.parent}.") from None
    record_checksum(final, sha256=sha256)
    return final


def check_checkpoint(path: Path, model: PublishedModel) -> None:
    """Refuse (:class:`DownloadError`) a file that is not ``model``'s checkpoint.

    It is read with ``torch.load(weights_only=True, mmap=True)`` (tensors only, nothing copied
    into memory) and its family and shape, read off the tensors, must equal the registry's.
    """
    from bulkformer.errors import CheckpointError
    from bulkformer.model._checkpoint import infer_config, read_state_dict

    def refuse(why: str) -> DownloadError:
        return DownloadError(
            f"The file fetched for {model.label} is not a BulkFormer checkpoint: {why}. It was deleted.",
            hint=f"Run the download again. If this repeats, open {model.source_url} in a web browser "
            f"and put the file, named {model.checkpoint}, into {Path(path).parent}.",
        )

    with Path(path).open("rb") as fh:
        start = fh.read(512)
    head = start.lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        raise refuse("it is a web page (Google Drive sends one instead of the file when it asks for a "
                     "confirmation or refuses the download)")
    if not start.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or its legacy pickle
        raise refuse("it is not a PyTorch file at all (its first bytes are neither a zip archive's "
                     "nor a pickle's): the download is damaged")
    try:
        try:
            state_dict = read_state_dict(Path(path), mmap=True)
        except CheckpointError as exc:  # a file in torch's legacy format cannot be mapped: read it
            if "mmap" not in str(exc.__cause__):
                raise
            state_dict = read_state_dict(Path(path))
        config = infer_config(state_dict)
    except CheckpointError as exc:
        raise refuse(exc.message.rstrip(".")) from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways; all mean "not it"
        raise refuse(f"it could not be read ({type(exc).__name__})") from None
    want = model.config
    fields = ("family", "n_genes", "dim", "p_repeat", "gb_repeat", "heads")
    if tuple(getattr(config, f) for f in fields) != tuple(getattr(want, f) for f in fields):
        raise refuse(f"it is a {config.family} network of width {config.dim} with {config.gb_repeat} × "
                     f"{config.p_repeat} layers and {config.n_genes} genes, not {model.name}'s "
                     f"{want.dim} with {want.gb_repeat} × {want.p_repeat} and {want.n_genes}")


def _keep_existing(final: Path, model: PublishedModel) -> bool:
    """Whether a checkpoint already in place is good: by the book, or (placed by hand) checked."""
    recorded = read_checksums(final.parent).get(final.name)
    if recorded is not None:
        return check_recorded(final, recorded)
    try:
        check_checkpoint(final, model)
    except DownloadError:
        return False
    record_checksum(final, sha256=file_digests(final)[1])
    return True


def _watch(cancel: threading.Event, finished: threading.Event, should_stop: Callable[[], bool] | None,
           deadline: float, responses: list[object]) -> None:
    """On a stop request or at the deadline, set ``cancel`` (which gdown polls between reads)
    and shut the connections down, so that a read that stalls ends now, not a read timeout
    later (the deadline is a real bound)."""
    while not finished.wait(0.2):
        if (should_stop is not None and should_stop()) or time.monotonic() > deadline:
            cancel.set()
            for response in list(responses):
                sock = getattr(getattr(getattr(response, "raw", None), "connection", None), "sock", None)
                if isinstance(sock, socket.socket):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed
            return


def _drive_failure(exc: Exception, model: PublishedModel, by_hand: str, folder: Path) -> DownloadError:
    """A clear :class:`DownloadError` for a network, HTTP or disk failure inside gdown."""
    import requests

    response = getattr(exc, "response", None)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return DownloadError(f"The disk is full: {model.checkpoint} does not fit in {folder}.",
                             hint="Free some space and run the download again: it resumes where it stopped.")
    if isinstance(exc, requests.HTTPError) and response is not None:
        message = f"Google Drive answered HTTP {response.status_code} for {model.checkpoint}."
    elif isinstance(exc, (requests.RequestException, OSError)) or type(exc).__module__.startswith("gdown"):
        message = f"The download of {model.checkpoint} from Google Drive failed ({_first_line(exc)})."
    else:
        raise exc
    return DownloadError(message, hint=f"Check your internet connection and run the download again: "
                         f"it resumes where it stopped. {by_hand}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
