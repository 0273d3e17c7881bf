"""Removing the private folders of app sessions that have ended."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Collection
from pathlib import Path

#: A per-session folder's name: 32 hex digits (``uuid4().hex``).
SESSION_FOLDER = re.compile(r"[0-9a-f]{32}")


def sweep_session_folders(root: Path, *, live: Collection[str], ours: Collection[str], now: float,
                          stale_after_s: float) -> list[Path]:
    """Delete the per-session folders under ``root`` whose session ended; returns them.

    ``ours`` are the folders this server made: each is deleted once no ``live`` session holds
    it. Any other session folder (a crashed server's, or another server's sharing ``root``) is
    deleted only when untouched for ``stale_after_s``. Other files and folders are left alone.
    """
    deleted = []
    for child in root.iterdir() if root.is_dir() else ():
        if not SESSION_FOLDER.fullmatch(child.name) or child.name in live:
            continue
        with contextlib.suppress(OSError):
            if child.is_dir() and (child.name in ours or now - child.stat().st_mtime > stale_after_s):
                shutil.rmtree(child, ignore_errors=True)
                deleted.append(child)
    return deleted
