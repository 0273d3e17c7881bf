"""BulkFormer Studio: run the BulkFormer bulk RNA-seq foundation model on your own tables.

The package by stage, as data flows: :mod:`bulkformer.io` (read files) → :mod:`bulkformer.genes`
(map gene IDs) → :mod:`bulkformer.inputs` (normalise, align, QC: :func:`prepare`) →
:mod:`bulkformer.model` (the network, checkpoints, inference, training) →
:mod:`bulkformer.analysis` (maps, hold-out check, prediction) → :mod:`bulkformer.export` (files).
Beside them: :mod:`bulkformer.fetch` (published models), :mod:`bulkformer.workflows` (the runs
the app and CLI share), :mod:`bulkformer.jobs` (background jobs, result cache),
:mod:`bulkformer.cli`, :mod:`bulkformer.simulate`.

The public API is imported lazily so that ``import bulkformer`` stays fast (no torch until a
model is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "BulkFormerModel": "bulkformer.model",
    "InferenceResult": "bulkformer.model",
    "RunOptions": "bulkformer.model",
    "BulkFormerConfig": "bulkformer.model",
    "PRESETS": "bulkformer.model",
    "train": "bulkformer.model",
    "TrainingConfig": "bulkformer.model",
    "BulkFormerError": "bulkformer.errors",
    "InputError": "bulkformer.errors",
    "CheckpointError": "bulkformer.errors",
    "DownloadError": "bulkformer.errors",
    "prepare": "bulkformer.inputs",
    "PreparedInput": "bulkformer.inputs",
    "AlignedMatrix": "bulkformer.inputs",
    "QCReport": "bulkformer.inputs",
    "read_table": "bulkformer.io",
    "load_annotation": "bulkformer.genes",
    "simulate_cohort": "bulkformer.simulate",
    "read": "bulkformer._read",
}

#: Subpackages reached as attributes, scanpy style (``bf.tl.embed``); imported on first use.
_SUBPACKAGES = ("tl",)

__all__ = [*_PUBLIC, *_SUBPACKAGES, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"bulkformer.{name}")
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bulkformer' has no attribute {name!r}")
