"""Runs as AnnData objects ready for scanpy: the whole run (expression in ``X``), sample
embeddings alone (embeddings in ``X``) and per-gene embeddings (one row per sample and gene).
Each describes in ``uns["bulkformer"]`` only what it holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bulkformer.analysis._projection import Projection
from bulkformer.export._formats import VALUE_SCALE
from bulkformer.export._report import RunFacts, facts_dict
from bulkformer.export._tables import (
    expression_values,
    require_array,
    sample_index,
    unique_symbols,
)
from bulkformer.model._bulkformer_model import InferenceResult
from bulkformer.model._config import MISSING

if TYPE_CHECKING:
    import anndata

#: Where sample embeddings live in every AnnData written here (``sc.pp.neighbors(adata, use_rep=…)``).
EMBEDDING_KEY = "X_bulkformer"


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

    ``X`` is the *filled* expression (log1p TPM: measured values kept, the others the model's),
    ``layers["measured"]`` the input with NaN where a gene was not measured,
    ``layers["bulkformer"]`` the model's value for every gene; ``var`` has ``measured`` (bool)
    and, with ``symbols``, a unique ``symbol`` (:func:`unique_symbols`, so
    ``adata.var_names = adata.var["symbol"]`` works); ``obsm["X_bulkformer"]`` the sample
    embeddings (``sc.pp.neighbors(adata, use_rep="X_bulkformer")``), ``obsm["X_umap"]``/
    ``obsm["X_pca"]`` the map, ``obsm["X_bulkformer_genes"]`` the per-gene embeddings
    ``[samples, genes asked for, d]`` (their IDs in ``uns``). A run without imputation gives
    :func:`embedding_anndata` instead (embeddings in ``X``). ``measured_values`` and ``observed``
    are the model's input and its measured genes, in ``result.gene_ids`` order.
    """
    import anndata

    if result.imputed is None:
        adata = embedding_anndata(result, metadata=metadata, facts=facts, embedding_columns=embedding_columns)
        if projection is not None:
            adata.obsm[f"X_{projection.method}"] = projection.coords
        return adata
    var = pd.DataFrame(index=pd.Index(list(result.gene_ids), name="gene_id"))
    if symbols is not None:
        var["symbol"] = unique_symbols(result.gene_ids, symbols)
    observed = np.asarray(observed, dtype=bool)
    var["measured"] = observed
    filled, _ = expression_values(result, measured_values=measured_values, observed=observed)
    adata = anndata.AnnData(X=filled, obs=_obs(result, metadata), var=var)
    adata.layers["bulkformer"] = require_array(result.imputed, "imputed expression")
    measured = np.asarray(measured_values, dtype=np.float32).copy()
    measured[(measured == MISSING) | ~observed[None, :]] = np.nan
    adata.layers["measured"] = measured
    held = ["X: filled expression (measured values kept, unmeasured genes predicted)",
            "layers['measured']: the input, NaN where a gene was not measured",
            "layers['bulkformer']: the model's value for every gene"]
    if result.sample_embedding is not None:
        adata.obsm[EMBEDDING_KEY] = require_array(result.sample_embedding, "sample embeddings")
        held.append(f"obsm['{EMBEDDING_KEY}']: sample embeddings (use_rep='{EMBEDDING_KEY}')")
    if result.gene_embedding is not None:
        adata.obsm["X_bulkformer_genes"] = require_array(result.gene_embedding, "gene embeddings")
        held.append("obsm['X_bulkformer_genes']: per-gene embeddings [samples, genes, d]")
    if projection is not None:
        adata.obsm[f"X_{projection.method}"] = projection.coords
        held.append(f"obsm['X_{projection.method}']: the 2-D map")
    uns = _uns(result, facts, held=held, values=f"X and layers: {VALUE_SCALE}", projection=projection)
    if result.gene_embedding is not None:
        uns["gene_embedding_ids"] = list(result.gene_embedding_ids)
    _name_embedding(uns, result, embedding_columns)
    adata.uns["bulkformer"] = uns
    return adata


def embedding_anndata(
    result: InferenceResult,
    *,
    metadata: pd.DataFrame | None = None,
    facts: RunFacts | None = None,
    embedding_columns: Sequence[str] | None = None,
) -> anndata.AnnData:
    """Sample embeddings as AnnData: ``X`` = the embeddings (samples × ``emb_0`` …, named as the
    CSV's columns), so scanpy's defaults work (``sc.pp.neighbors(adata)``); the same array in
    ``obsm["X_bulkformer"]`` for ``use_rep``; the sample sheet in ``obs``. No expression."""
    import anndata

    from bulkformer.export._tables import embedding_frame

    frame = embedding_frame(result, column_names=embedding_columns)
    adata = anndata.AnnData(X=frame.to_numpy(dtype=np.float32), obs=_obs(result, metadata),
                            var=pd.DataFrame(index=pd.Index([str(c) for c in frame.columns], name="feature")))
    adata.obsm[EMBEDDING_KEY] = adata.X.copy()
    uns = _uns(result, facts, held=[f"X and obsm['{EMBEDDING_KEY}']: sample embeddings (samples × features)"],
               values="sample embeddings (model features, not expression)")
    _name_embedding(uns, result, embedding_columns)
    adata.uns["bulkformer"] = uns
    return adata


def gene_embedding_anndata(
    result: InferenceResult,
    *,
    metadata: pd.DataFrame | None = None,
    symbols: Mapping[str, str] | None = None,
    facts: RunFacts | None = None,
) -> anndata.AnnData:
    """Per-gene embeddings as AnnData, one row per (sample, gene) pair as the long table has:
    ``X`` = the embedding (``emb_0`` …), ``obs`` = ``sample_id``, ``gene_id``, ``symbol`` and
    the sample sheet's columns; ``obs_names`` are ``<sample>|<gene>``. No expression."""
    import anndata

    from bulkformer.export._tables import gene_embedding_frame

    long = gene_embedding_frame(result)
    features = [c for c in long.columns if c not in ("sample_id", "gene_id")]
    obs = long[["sample_id", "gene_id"]].astype(str).copy()
    obs["symbol"] = [(symbols or {}).get(g) or "" for g in obs["gene_id"]]
    if metadata is not None:
        sheet = _h5ad_safe(metadata.reindex(obs["sample_id"]))
        sheet.columns = [f"{c} (sample sheet)" if c in obs.columns else c for c in sheet.columns]
        obs = pd.concat([obs.reset_index(drop=True), sheet.reset_index(drop=True)], axis=1)
    obs.index = pd.Index([f"{s}|{g}" for s, g in zip(obs["sample_id"], obs["gene_id"], strict=True)], name="pair")
    adata = anndata.AnnData(X=long[features].to_numpy(dtype=np.float32), obs=obs,
                            var=pd.DataFrame(index=pd.Index(features, name="feature")))
    uns = _uns(result, facts, held=["X: per-gene embeddings, one row per (sample, gene) pair"],
               values="per-gene embeddings (model features, not expression)")
    uns["gene_embedding_ids"] = list(result.gene_embedding_ids)
    adata.uns["bulkformer"] = uns
    return adata


def _obs(result: InferenceResult, metadata: pd.DataFrame | None) -> pd.DataFrame:
    obs = pd.DataFrame(index=sample_index(result.sample_ids).astype(str))
    if metadata is not None:
        obs = obs.join(_h5ad_safe(metadata.reindex(obs.index)))
    return obs


def _uns(result: InferenceResult, facts: RunFacts | None, *, held: list[str], values: str,
         projection: Projection | None = None) -> dict[str, object]:
    """``uns["bulkformer"]``: what this object holds, the scale of its values, the run's facts."""
    uns: dict[str, object] = {"aggregate": result.aggregate, "contents": held, "values": values}
    if projection is not None and projection.note:
        uns["map_note"] = projection.note
    if facts is not None:
        uns.update(facts_dict(facts))
    return uns


def _name_embedding(uns: dict[str, object], result: InferenceResult, columns: Sequence[str] | None) -> None:
    """``uns["embedding_columns"]``: ``X_bulkformer``'s column names, as the CSV's header has them."""
    if result.sample_embedding is not None and columns is not None and len(columns) == result.sample_embedding.shape[-1]:
        uns["embedding_columns"] = list(columns)


def _h5ad_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Sample-sheet columns h5ad can store, typed right: yes/no columns stay booleans (nullable
    ``boolean`` with gaps), other mixed-type text columns become text (NaN kept); a column named
    like anndata's reserved ``_index`` or like the index gets `` (sample sheet)``."""
    frame = frame.copy()
    reserved = {"_index"} | ({str(frame.index.name)} if frame.index.name is not None else set())
    frame.columns = [f"{c} (sample sheet)" if str(c) in reserved else str(c) for c in frame.columns]
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            present = column.dropna()
            if len(present) and all(isinstance(v, (bool, np.bool_)) for v in present):
                frame[name] = column.astype(bool) if len(present) == len(column) else column.astype("boolean")
            else:
                frame[name] = column.where(column.isna(), column.astype(str))
    return frame
