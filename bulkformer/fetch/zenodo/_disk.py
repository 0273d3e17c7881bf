"""The local side of a download: sizes in words, folders, free space, unfinished parts."""

from __future__ import annotations

import errno
import glob
import shutil
from pathlib import Path

from bulkformer.errors import DownloadError

DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
"""``OSError.errno`` values that mean the disk (or the user's quota) is full."""


def human_size(n_bytes: int) -> str:
    """``568.5 MB``-style size in decimal units, as Zenodo shows them."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def partial_bytes(final: Path) -> int:
    """Bytes of an unfinished download of ``final`` on disk (ours: ``.part``; gdown's:
    ``<name><random>.part``)."""
    folder = final.parent
    if not folder.is_dir():
        return 0
    sizes = [p.stat().st_size for p in folder.glob(glob.escape(final.name) + "*.part") if p.is_file()]
    return max(sizes, default=0)


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
