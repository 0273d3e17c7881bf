"""Where the app's own files live: shipped assets, and the folders for downloaded weights.

Every path that a user-supplied name can reach is resolved through :func:`safe_child`, so a
name such as ``../../etc/passwd`` can never leave the folder it was meant for.
"""

from __future__ import annotations

import os
from pathlib import Path

from bulkformer.errors import BulkFormerError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
ANNOTATION_DIR = ASSETS_DIR / "annotation"


def demo_dir() -> Path:
    """The demo cohort and demo model (``BULKFORMER_DEMO_DIR``, default ``assets/demo``)."""
    return Path(os.environ.get("BULKFORMER_DEMO_DIR", ASSETS_DIR / "demo"))


def demo_model_dir() -> Path:
    return demo_dir() / "model"


def model_dir() -> Path:
    """Folder for downloaded checkpoints (``BULKFORMER_MODEL_DIR``, default ``./model``)."""
    return Path(os.environ.get("BULKFORMER_MODEL_DIR", PROJECT_ROOT / "model"))


def data_dir() -> Path:
    """Folder for downloaded gene tables and graphs (``BULKFORMER_DATA_DIR``, default ``./data``)."""
    return Path(os.environ.get("BULKFORMER_DATA_DIR", PROJECT_ROOT / "data"))


def cache_dir() -> Path:
    """Folder for on-disk result caches (``BULKFORMER_CACHE_DIR``, default ``./.cache``)."""
    return Path(os.environ.get("BULKFORMER_CACHE_DIR", PROJECT_ROOT / ".cache"))


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
