"""One AnnData object holding a whole run, ready for scanpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bulkformer.export._report import RunFacts, facts_dict
from bulkformer.export._tables import expression_values, require_array, sample_index
from bulkformer.model._config import MISSING
from bulkformer.analysis._projection import Projection
from bulkformer.model._bulkformer_model import InferenceResult

if TYPE_CHECKING:
    import anndata


def to_anndata(
    result: InferenceResult,
    *,
    measured_values: np.ndarray,
    observed: np.ndarray,
    metadata: pd.DataFrame | None = None,
    projection: Projection | None = None,
    symbols: Mapping[str, str] | None = None,
    facts: RunFacts | None = None,
    embedding_columns: Sequence[str] | None = None,
) -> anndata.AnnData:
    """One AnnData holding the whole run, ready for scanpy.

    ``X`` is the *filled* expression (log1p TPM: measured values kept, the others the model's;
    absent if imputation was not run), ``layers["measured"]`` the input with NaN where a gene
    was not measured, ``layers["bulkformer"]`` the model's value for every gene; ``var`` has
    ``measured`` (bool) and ``symbol`` when known; ``obsm["X_bulkformer"]`` the sample
    embeddings, ``obsm["X_umap"]``/``obsm["X_pca"]`` the map, ``obsm["X_bulkformer_genes"]``
    the per-gene embeddings ``[samples, genes asked for, d]`` (their IDs in ``uns``);
    ``uns["bulkformer"]["embedding_columns"]`` names ``X_bulkformer``'s columns when
    ``embedding_columns`` (``BulkFormerConfig.feature_names()``) fits its width, as the CSV's header does.
    ``measured_values`` and ``observed`` are the model's input and its measured genes, in
    ``result.gene_ids`` order.
    """
    import anndata

    obs = pd.DataFrame(index=sample_index(result.sample_ids).astype(str))
    if metadata is not None:
        obs = obs.join(_h5ad_safe(metadata.reindex(obs.index)))
    var = pd.DataFrame(index=pd.Index(list(result.gene_ids), name="gene_id"))
    if symbols is not None:
        var["symbol"] = [symbols.get(g) or "" for g in result.gene_ids]
    observed = np.asarray(observed, dtype=bool)
    var["measured"] = observed
    filled = None
    if result.imputed is not None:
        filled, _ = expression_values(result, measured_values=measured_values, observed=observed)
    adata = anndata.AnnData(X=filled, obs=obs, var=var)
    if result.imputed is not None:
        adata.layers["bulkformer"] = result.imputed
    measured = np.asarray(measured_values, dtype=np.float32).copy()
    measured[(measured == MISSING) | ~observed[None, :]] = np.nan
    adata.layers["measured"] = measured
    if result.sample_embedding is not None:
        adata.obsm["X_bulkformer"] = require_array(result.sample_embedding, "sample embeddings")
    if result.gene_embedding is not None:
        adata.obsm["X_bulkformer_genes"] = require_array(result.gene_embedding, "gene embeddings")
    if projection is not None:
        adata.obsm[f"X_{projection.method}"] = projection.coords
    uns: dict[str, object] = {"aggregate": result.aggregate,
                              "gene_embedding_ids": list(result.gene_embedding_ids),
                              "values": "log1p TPM; X: filled (measured values kept, unmeasured genes "
                                        "predicted); layers['measured']: NaN where not measured; "
                                        "layers['bulkformer']: the model's value for every gene"}
    if embedding_columns is not None and result.sample_embedding is not None \
            and len(embedding_columns) == result.sample_embedding.shape[-1]:
        uns["embedding_columns"] = list(embedding_columns)
    if projection is not None and projection.note:
        uns["map_note"] = projection.note
    if facts is not None:
        uns.update(facts_dict(facts))
    adata.uns["bulkformer"] = uns
    return adata


def _h5ad_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Sample-sheet columns h5ad can store: mixed-type text columns become text (NaN kept);
    a column named like anndata's reserved ``_index`` or like the index gets `` (sample sheet)``."""
    frame = frame.copy()
    reserved = {"_index"} | ({str(frame.index.name)} if frame.index.name is not None else set())
    frame.columns = [f"{c} (sample sheet)" if str(c) in reserved else str(c) for c in frame.columns]
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            frame[name] = column.where(column.isna(), column.astype(str))
    return frame
