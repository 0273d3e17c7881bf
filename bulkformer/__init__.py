"""BulkFormer Studio: run the BulkFormer bulk RNA-seq foundation model on your own tables.

The public API is imported lazily so that ``import bulkformer`` stays fast (no torch until a
model is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "BulkFormerModel": "bulkformer.wrapper",
    "InferenceResult": "bulkformer.wrapper",
    "RunOptions": "bulkformer.run_options",
    "BulkFormerConfig": "bulkformer.model.config",
    "PRESETS": "bulkformer.model.config",
    "BulkFormerError": "bulkformer.errors",
    "InputError": "bulkformer.errors",
    "CheckpointError": "bulkformer.errors",
    "DownloadError": "bulkformer.errors",
    "prepare": "bulkformer.pipeline",
    "PreparedInput": "bulkformer.pipeline",
    "AlignedMatrix": "bulkformer.align",
    "QCReport": "bulkformer.qc",
    "read_table": "bulkformer.io",
    "load_annotation": "bulkformer.genes",
    "train": "bulkformer.train",
    "TrainingConfig": "bulkformer.train",
    "simulate_cohort": "bulkformer.simulate",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bulkformer' has no attribute {name!r}")
