"""Where the app's own files live: shipped assets, and the folders for downloaded weights.

Every path that a user-supplied name can reach is resolved through :func:`safe_child`, so a
name such as ``../../etc/passwd`` can never leave the folder it was meant for.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bulkformer.errors import BulkFormerError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_INSTALLED_ASSETS = Path(__file__).resolve().parent / "assets"  # where an installed wheel has them
ASSETS_DIR = _INSTALLED_ASSETS if _INSTALLED_ASSETS.is_dir() else PROJECT_ROOT / "assets"
ANNOTATION_DIR = ASSETS_DIR / "annotation"
GENE_LENGTHS_DIR = ASSETS_DIR / "gene_lengths"


def _work_root() -> Path:
    """Home of the downloaded and cached files: the checkout, or for an installed package
    (nothing is written into site-packages) the current folder."""
    return Path.cwd() if ASSETS_DIR == _INSTALLED_ASSETS else PROJECT_ROOT


def demo_dir() -> Path:
    """The demo cohort and demo model (``BULKFORMER_DEMO_DIR``, default ``assets/demo``)."""
    return Path(os.environ.get("BULKFORMER_DEMO_DIR", ASSETS_DIR / "demo"))


def demo_model_dir() -> Path:
    return demo_dir() / "model"


def model_dir() -> Path:
    """Folder for downloaded checkpoints (``BULKFORMER_MODEL_DIR``, default ``./model``)."""
    return Path(os.environ.get("BULKFORMER_MODEL_DIR", _work_root() / "model"))


def data_dir() -> Path:
    """Folder for downloaded gene tables and graphs (``BULKFORMER_DATA_DIR``, default ``./data``)."""
    return Path(os.environ.get("BULKFORMER_DATA_DIR", _work_root() / "data"))


def cache_dir() -> Path:
    """Folder for on-disk result caches: ``BULKFORMER_CACHE_DIR``, else the user's cache folder
    (``$XDG_CACHE_HOME/bulkformer``, ``~/.cache/bulkformer``), else a per-user temporary folder:
    never inside the source tree, where results derived from users' data could be committed."""
    if os.environ.get("BULKFORMER_CACHE_DIR"):
        return Path(os.environ["BULKFORMER_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "bulkformer"
    try:
        return Path.home() / ".cache" / "bulkformer"
    except RuntimeError:  # no home folder (a service account)
        user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
        return Path(tempfile.gettempdir()) / f"bulkformer-{user}"


def safe_child(parent: Path, name: str) -> Path:
    """``parent / name``, refusing any name that would resolve outside ``parent``."""
    parent = parent.resolve()
    candidate = (parent / name).resolve()
    if candidate == parent or parent not in candidate.parents:
        raise BulkFormerError(
            f"{name!r} is not a plain file name inside {parent}.",
            hint="Use a file name without '/', '..' or an absolute path.",
        )
    return candidate
