"""The rules for an untrusted server: which base URLs are allowed, redirects only to the same
host, retries of transient failures (HTTP 429/5xx, dropped connections) with a capped
``Retry-After``, and the wording of HTTP and connection failures."""

from __future__ import annotations

import email.utils
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from bulkformer.errors import DownloadError

ZENODO_URL_ENV = "BULKFORMER_ZENODO_URL"
DEFAULT_ZENODO_URL = "https://zenodo.org"
DRIVE_URL_ENV = "BULKFORMER_DRIVE_URL"
"""Base URL for Google Drive downloads (``<base>/uc?id=<file id>&export=download``): a test server."""
DEFAULT_DRIVE_URL = "https://drive.google.com"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 1.0
MAX_RETRY_AFTER_S = 120.0
"""Longest ``Retry-After`` wait honoured, so a misbehaving server cannot stall us for hours."""

USER_AGENT = "BulkFormer-Studio (+https://zenodo.org/records/15559368)"
_T = TypeVar("_T")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class Transient(Exception):
    """A failure worth retrying (HTTP 429/5xx, a dropped or refused connection)."""

    def __init__(self, message: str, hint: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.delay = delay


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


def with_retries(
    action: Callable[[], _T], *, retries: int, backoff: float, deadline: float | None = None
) -> _T:
    """Run ``action``, retrying :class:`Transient` failures with exponential backoff
    (never waiting past ``deadline``)."""
    attempt = 0
    while True:
        try:
            return action()
        except Transient as exc:
            delay = exc.delay if exc.delay is not None else backoff * 2**attempt
            late = deadline is not None and time.monotonic() + delay > deadline
            if attempt >= retries or late:
                tries = f" Gave up after {attempt + 1} attempts." if attempt else ""
                raise DownloadError(exc.message + tries, hint=exc.hint) from None
            time.sleep(delay)
            attempt += 1


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


OPENER = urllib.request.build_opener(_SameHostRedirect)


def bound_next_read(response: object, seconds: float) -> None:
    """Let the next read of ``response`` (an ``http.client.HTTPResponse``) block at most
    ``seconds``: the socket's timeout, set again before every read so that an overall
    deadline is a real bound. Responses without a socket (tests, closed ones) are left alone."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.settimeout(seconds)
        except OSError:
            pass  # closed meanwhile: the read itself reports it


def http_failure(exc: urllib.error.HTTPError, what: str, hint: str) -> Exception:
    """A retryable :class:`Transient` for 429/5xx, a :class:`DownloadError` otherwise."""
    delay = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
    exc.close()
    message = f"Zenodo answered HTTP {exc.code} ({exc.reason}) for the {what}."
    if exc.code == 429 or 500 <= exc.code < 600:
        return Transient(message, hint, delay)
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


def unreachable(base: str, exc: BaseException, hint: str) -> Exception:
    """No connection: retried, except a failed name lookup (offline), which fails at once."""
    reason = getattr(exc, "reason", None) or exc
    message = f"Zenodo could not be reached at {base} ({reason})."
    if isinstance(reason, socket.gaierror):
        return DownloadError(message, hint=hint)
    return Transient(message, hint)


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
