"""The BulkFormer network (plain ``nn.Module`` s) and its configuration.

Imported lazily, so that reading a config or the published shapes (``PRESETS``) needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "BulkFormer": "bulkformer.model.bulkformer",
    "BulkFormerConfig": "bulkformer.model.config",
    "MISSING": "bulkformer.model.config",
    "PRESETS": "bulkformer.model.config",
}

__all__ = ["MISSING", "PRESETS", "BulkFormer", "BulkFormerConfig"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bulkformer.model' has no attribute {name!r}")
