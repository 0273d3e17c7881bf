"""``bulkformer.tl.impute``: the model's expression for the AnnData's genes (layers) and for the
model genes it lacks (``obsm``), as scanpy's tools do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bulkformer.choices import Compile, Precision, ValueType

if TYPE_CHECKING:
    import anndata

    from bulkformer.model import BulkFormerModel


def impute(
    adata: anndata.AnnData,
    *,
    model: str | Path | BulkFormerModel,
    layer: str | None = None,
    value_type: ValueType = "auto",
    precision: Precision = "auto",
    compile: Compile = "auto",
    batch_size: int | None = None,
    device: str = "auto",
    key_added: str = "bulkformer",
    copy: bool = False,
) -> anndata.AnnData | None:
    """The model's expression (log1p TPM) of every gene, written beside ``adata``'s own values.

    Parameters
    ----------
    adata
        Samples × genes; gene IDs in ``var_names``, values in ``X`` (or ``layers[layer]``), as
        for :func:`embed`.
    model
        ``"demo"``, a published size, a path, or a loaded :class:`~bulkformer.BulkFormerModel`.
    layer
        Take the values from this layer instead of ``X``.
    value_type
        What the values are (:data:`bulkformer.choices.VALUE_TYPE`); ``"auto"`` detects it.
    precision, compile, batch_size, device
        How the model runs (:class:`~bulkformer.RunOptions`).
    key_added
        Names of what is written: ``layers[key_added]``, ``layers[key_added + "_filled"]`` and
        ``obsm[key_added + "_unmeasured"]``.
    copy
        Return a copy with the result instead of writing into ``adata``.

    Returns
    -------
    anndata.AnnData or None
        ``None``, or the copy when ``copy=True``. Written: ``layers["bulkformer"]``, the model's
        reconstruction of each of ``adata``'s genes; ``layers["bulkformer_filled"]``, the values
        the model read (log1p TPM) where the gene is one of the model's, its prediction where the
        model did not get it, NaN for genes the model does not have (both log1p TPM);
        ``obsm["bulkformer_unmeasured"]``, the model genes ``adata`` lacks (samples × genes, log1p
        TPM: the imputed genes; their names, ``SYMBOL_ENSG…``, in
        ``uns["bulkformer"]["unmeasured_genes"]``); ``uns["bulkformer"]``: model, options, value
        scale, coverage, QC. As a table: ``pd.DataFrame(adata.obsm["bulkformer_unmeasured"],
        index=adata.obs_names, columns=adata.uns["bulkformer"]["unmeasured_genes"])``.

    Examples
    --------
    >>> import bulkformer as bf
    >>> from bulkformer.paths import demo_dir
    >>> adata = bf.read(demo_dir() / "demo_panel_counts.csv.gz")[:6].copy()
    >>> bf.tl.impute(adata, model="demo", precision="fp32", compile="off")
    >>> adata.layers["bulkformer"].shape == adata.shape
    True
    >>> adata.obsm["bulkformer_unmeasured"].shape[1] == len(adata.uns["bulkformer"]["unmeasured_genes"])
    True
    """
    from bulkformer import export, workflows
    from bulkformer.genes import load_annotation, map_genes
    from bulkformer.model import RunOptions
    from bulkformer.tl._common import load_model, prepared_from, record

    adata = adata.copy() if copy else adata
    loaded = load_model(model, device=device)
    prepared = prepared_from(adata, loaded, layer=layer, value_type=value_type)
    options = RunOptions(embed=False, impute=True, precision=precision, compile=compile, batch_size=batch_size)
    result = workflows.run_cohort(loaded, prepared, options, maps=()).result
    aligned = prepared.aligned
    filled, _ = export.expression_values(result, measured_values=aligned.values, observed=aligned.observed)
    position = {g: i for i, g in enumerate(aligned.gene_ids)}
    ensembl = map_genes([str(g) for g in adata.var_names], annotation=load_annotation()).ensg_ids
    column = np.array([position.get(g, -1) if g else -1 for g in ensembl])
    known = column >= 0
    model_layer = np.full(adata.shape, np.nan, dtype=np.float32)
    filled_layer = np.full(adata.shape, np.nan, dtype=np.float32)
    model_layer[:, known] = result.imputed[:, column[known]]
    filled_layer[:, known] = filled[:, column[known]]
    adata.layers[key_added] = model_layer
    adata.layers[f"{key_added}_filled"] = filled_layer
    missing, missing_ids = export.expression_values(result, measured_values=aligned.values,
                                                    observed=aligned.observed, mode="missing")
    labels = export.gene_labels(missing_ids, load_annotation().symbols_of(missing_ids))
    adata.obsm[f"{key_added}_unmeasured"] = missing  # an array: h5ad writes one dataset, not one per gene
    record(adata, loaded, prepared, options, imputed_layers=[key_added, f"{key_added}_filled"],
           unmeasured_key=f"{key_added}_unmeasured", unmeasured_genes=labels,
           n_genes_outside_model=int((~known).sum()))
    return adata if copy else None
