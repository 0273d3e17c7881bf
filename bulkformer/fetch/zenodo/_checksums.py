"""The checksum book (:data:`CHECKSUMS_NAME`) beside downloaded files, and the digests it holds,
so that ``bulkformer verify`` can re-check files offline."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

CHECKSUMS_NAME = "checksums.json"
"""``{file name: {"size": n, "md5": hex, "sha256": hex}}`` beside downloaded files (the md5 of
Zenodo files, the sha256 of Drive files), so ``bulkformer verify`` can re-check them offline.
Older books hold ``{file name: md5 hex}``; both are read."""
MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
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
            md5=md5.lower() if isinstance(md5, str) and MD5_HEX.fullmatch(md5) else None,
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
