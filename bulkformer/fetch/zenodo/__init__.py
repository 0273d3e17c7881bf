"""Fetch the published BulkFormer checkpoints and gene tables from Zenodo and Google Drive.

Zenodo: standard library only (``urllib.request``). A file is streamed into ``<name>.part``,
resumed with an HTTP ``Range`` request after an interruption, checked against Zenodo's md5,
and only then renamed to its final name: a file with the final name is therefore always
complete and verified. Every failure a user can meet (no network, HTTP errors, a corrupt
transfer, a full disk, a server too slow to finish) is raised as a
:class:`~bulkformer.errors.DownloadError` whose hint says how to get the file by hand.

The five v2 checkpoints (:data:`DRIVE_CHECKPOINTS`) are on Google Drive: :mod:`bulkformer.fetch._gdrive`
fetches them with ``gdown`` and checks them; :mod:`bulkformer.fetch._published` fetches one
published model with the gene table and graph of its family. Both build on this package's
helpers (URLs, :class:`Pace`, the checksum book, free-space checks).

A server is never trusted: listings are read up to :data:`MAX_LISTING_BYTES`; a file name must
be a plain name that is not one of ours (:data:`CHECKSUMS_NAME`, ``*.part``); a size must not
be negative; redirects must stay on the same host; every file has an overall deadline
(:class:`Pace`); plain http is allowed only for this computer or a base URL configured in the
environment (a test server).

What was fetched is recorded in each folder's :data:`CHECKSUMS_NAME` (size, md5 and/or
sha256): :func:`read_checksums` and :func:`check_recorded` let ``bulkformer verify`` re-check
files offline.

The pieces, one module each: ``_http`` (the rules for an untrusted server: allowed base URLs,
same-host redirects, retries), ``_pace`` (deadline, progress, stop), ``_disk`` (folders, free
space, sizes in words), ``_checksums`` (the checksum book and digests), ``_listing`` (records,
their listings, selections) and ``_fetch`` (resumable, verified downloads).
"""

from __future__ import annotations

from bulkformer.fetch.zenodo._checksums import (
    CHECKSUMS_NAME,
    Recorded,
    check_recorded,
    file_digests,
    read_checksums,
    record_checksum,
    verify_file,
)
from bulkformer.fetch.zenodo._disk import (
    check_free_space,
    human_size,
    make_dir,
    partial_bytes,
)
from bulkformer.fetch.zenodo._fetch import FileProgressFn, download, download_file
from bulkformer.fetch.zenodo._http import (
    DEFAULT_BACKOFF,
    DEFAULT_DRIVE_URL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_ZENODO_URL,
    DRIVE_URL_ENV,
    MAX_RETRY_AFTER_S,
    ZENODO_URL_ENV,
    drive_base_url,
    drive_download_url,
    zenodo_base_url,
)
from bulkformer.fetch.zenodo._listing import (
    DRIVE_CHECKPOINTS,
    KNOWN_RECORDS,
    LARGE_FILE_BYTES,
    MAX_LISTING_BYTES,
    FileKind,
    KnownRecord,
    RemoteFile,
    classify,
    drive_instructions,
    is_plain_name,
    list_record,
    record_page_url,
    resolve_record_id,
    select_files,
    target_dir,
)
from bulkformer.fetch.zenodo._pace import (
    GRACE_ENV,
    MIN_RATE_ENV,
    DownloadCancelled,
    Pace,
    ProgressFn,
    progress_reporter,
    too_slow_error,
)

__all__ = [
    "CHECKSUMS_NAME", "DEFAULT_BACKOFF", "DEFAULT_DRIVE_URL", "DEFAULT_RETRIES", "DEFAULT_TIMEOUT",
    "DEFAULT_ZENODO_URL", "DRIVE_CHECKPOINTS", "DRIVE_URL_ENV", "GRACE_ENV", "KNOWN_RECORDS",
    "LARGE_FILE_BYTES", "MAX_LISTING_BYTES", "MAX_RETRY_AFTER_S", "MIN_RATE_ENV", "ZENODO_URL_ENV",
    "DownloadCancelled", "FileKind", "FileProgressFn", "KnownRecord", "Pace", "ProgressFn", "Recorded",
    "RemoteFile",
    "check_free_space", "check_recorded", "classify", "download", "download_file", "drive_base_url",
    "drive_download_url", "drive_instructions", "file_digests", "human_size", "is_plain_name",
    "list_record", "make_dir", "partial_bytes", "progress_reporter", "read_checksums", "record_checksum",
    "record_page_url", "resolve_record_id", "select_files", "target_dir", "too_slow_error",
    "verify_file", "zenodo_base_url",
]
