"""Tools in the scanpy style: ``bf.tl.embed(adata, model=…)`` writes ``obsm["X_bulkformer"]``,
``bf.tl.impute`` the model's expression into ``layers``, ``bf.tl.holdout`` returns the hold-out
check with its verdict. Keyword-only options after the data, ``copy=False`` as scanpy (``None``
and in place, or a copy when ``copy=True``); :func:`bulkformer.read` makes the AnnData.

Loaded lazily: importing ``bulkformer.tl`` loads no torch.
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_embed": ("embed",),
    "_impute": ("impute",),
    "_holdout": ("holdout",),
})
