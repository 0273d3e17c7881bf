"""``bulkformer.tl.holdout``: how far to trust the model's imputed genes on this AnnData."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bulkformer.choices import Compile, Precision, ValueType

if TYPE_CHECKING:
    import anndata

    from bulkformer.model import BulkFormerModel
    from bulkformer.workflows import HoldoutOutcome


def holdout(
    adata: anndata.AnnData,
    *,
    model: str | Path | BulkFormerModel,
    fraction: float = 0.1,
    seed: int = 0,
    layer: str | None = None,
    value_type: ValueType = "auto",
    precision: Precision = "auto",
    compile: Compile = "auto",
    batch_size: int | None = None,
    device: str = "auto",
) -> HoldoutOutcome:
    """The hold-out check: hide ``fraction`` of each sample's measured genes, let the model fill
    them in, and score it against two baselines (each gene's mean over the other samples, kNN)
    on the same hidden values (:func:`bulkformer.workflows.holdout_check`). ``adata`` is read,
    not changed.

    Parameters
    ----------
    adata
        Samples × genes; gene IDs in ``var_names``, values in ``X`` (or ``layers[layer]``).
    model
        ``"demo"``, a published size, a path, or a loaded :class:`~bulkformer.BulkFormerModel`.
    fraction
        Share of each sample's measured genes hidden (0 < fraction < 1).
    seed
        Which genes are hidden (the same seed hides the same genes).
    layer, value_type
        Where the values are and what they are, as for :func:`embed`.
    precision, compile, batch_size, device
        How the model runs (:class:`~bulkformer.RunOptions`).

    Returns
    -------
    bulkformer.workflows.HoldoutOutcome
        ``.verdict`` (``.lines()`` in words: whether the model clearly beats the baselines),
        ``.comparison.table`` (method, scope, group, pearson, spearman, mae, n).

    Examples
    --------
    >>> import bulkformer as bf
    >>> from bulkformer.paths import demo_dir
    >>> adata = bf.read(demo_dir() / "demo_counts.csv.gz")[:12].copy()
    >>> checked = bf.tl.holdout(adata, model="demo", precision="fp32", compile="off")
    >>> sorted(set(checked.comparison.table["method"]))
    ['BulkFormer', 'gene mean', 'kNN']
    """
    from bulkformer import workflows
    from bulkformer.model import RunOptions
    from bulkformer.tl._common import load_model, prepared_from

    loaded = load_model(model, device=device)
    prepared = prepared_from(adata, loaded, layer=layer, value_type=value_type)
    options = RunOptions(embed=False, impute=True, precision=precision, compile=compile, batch_size=batch_size)
    return workflows.holdout_check(loaded, prepared, options, fraction=fraction, seed=seed)
