"""``bulkformer.tl.embed``: sample embeddings into ``obsm``, as scanpy's tools do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bulkformer.choices import Aggregate, Compile, Precision, ValueType

if TYPE_CHECKING:
    import anndata

    from bulkformer.model import BulkFormerModel


def embed(
    adata: anndata.AnnData,
    *,
    model: str | Path | BulkFormerModel,
    layer: str | None = None,
    value_type: ValueType = "auto",
    aggregate: Aggregate = "mean",
    precision: Precision = "auto",
    compile: Compile = "auto",
    batch_size: int | None = None,
    device: str = "auto",
    key_added: str = "X_bulkformer",
    copy: bool = False,
) -> anndata.AnnData | None:
    """BulkFormer sample embeddings of every sample, into ``adata.obsm[key_added]``.

    Parameters
    ----------
    adata
        Samples × genes; gene IDs (Ensembl, symbols or NCBI IDs) in ``var_names``, mapped as for
        any table. Values in ``X`` (or ``layers[layer]``): counts, TPM, FPKM or log values,
        detected as for a file (or say which with ``value_type``).
    model
        ``"demo"``, a published size (``"147M"`` …), a path, or a loaded
        :class:`~bulkformer.BulkFormerModel`.
    layer
        Take the values from this layer instead of ``X``.
    value_type
        What the values are (:data:`bulkformer.choices.VALUE_TYPE`); ``"auto"`` detects it.
    aggregate
        How per-gene embeddings are pooled (:data:`bulkformer.choices.AGGREGATION`).
    precision, compile, batch_size, device
        How the model runs (:class:`~bulkformer.RunOptions`; they change speed, not meaning).
    key_added
        The ``obsm`` key (scanpy's ``use_rep``).
    copy
        Return a copy with the result instead of writing into ``adata``.

    Returns
    -------
    anndata.AnnData or None
        ``None``, or the copy when ``copy=True``; either way ``obsm[key_added]`` holds the
        embeddings (float32, samples × features; their names in
        ``uns["bulkformer"]["embedding_columns"]``) and ``uns["bulkformer"]`` the model, its
        checksum, the options, the value scale, the coverage and the QC summary.

    Examples
    --------
    >>> import bulkformer as bf
    >>> from bulkformer.paths import demo_dir
    >>> adata = bf.read(demo_dir() / "demo_counts.csv.gz")[:8].copy()
    >>> bf.tl.embed(adata, model="demo", precision="fp32", compile="off")
    >>> adata.obsm["X_bulkformer"].shape
    (8, 35)
    """
    from bulkformer import workflows
    from bulkformer.model import RunOptions
    from bulkformer.tl._common import load_model, prepared_from, record

    adata = adata.copy() if copy else adata
    loaded = load_model(model, device=device)
    prepared = prepared_from(adata, loaded, layer=layer, value_type=value_type)
    options = RunOptions(embed=True, impute=False, aggregate=aggregate, precision=precision, compile=compile,
                         batch_size=batch_size)
    result = workflows.run_cohort(loaded, prepared, options, maps=()).result
    adata.obsm[key_added] = result.sample_embedding
    names = list(loaded.config.feature_names())
    record(adata, loaded, prepared, options, embedding_key=key_added,
           embedding_columns=names if len(names) == result.sample_embedding.shape[1] else
           [f"emb_{i}" for i in range(result.sample_embedding.shape[1])])
    return adata if copy else None
