"""Results as tables: sample embeddings, the three kinds of expression, per-gene embeddings in
long format, map coordinates, and the gene column names (conventions: :mod:`bulkformer.export`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bulkformer.choices import IMPUTE_MODE
from bulkformer.errors import BulkFormerError
from bulkformer.analysis._projection import Projection
from bulkformer.model._bulkformer_model import InferenceResult

#: Excel's column limit: a wider gene table is written genes as rows.
EXCEL_MAX_COLUMNS = 16_384


def embedding_frame(result: InferenceResult, *, column_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Sample embeddings: index ``sample_id``, columns ``emb_0`` … ``emb_{d-1}``, or
    ``column_names`` when they fit (``BulkFormerConfig.feature_names``: a v2 model's last three
    columns are sample features, named)."""
    emb = require_array(result.sample_embedding, "sample embeddings")
    columns = list(column_names) if column_names is not None and len(column_names) == emb.shape[-1] \
        else _emb_columns(emb.shape[-1])
    return pd.DataFrame(emb, index=sample_index(result.sample_ids), columns=columns)


def expression_values(
    result: InferenceResult, *, measured_values: np.ndarray, observed: np.ndarray, mode: str = "filled"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """One of the :data:`~bulkformer.choices.IMPUTE_MODE` as (values ``[samples, genes]``, gene IDs).

    ``measured_values`` ``[samples, genes]`` is the model's input (log1p TPM, -10 where not
    measured) and ``observed`` ``[genes]`` the genes the table measured, both in
    ``result.gene_ids`` order.
    """
    IMPUTE_MODE.check(mode)
    model = require_array(result.imputed, "imputed expression")
    observed = np.asarray(observed, dtype=bool)
    measured_values = np.asarray(measured_values, dtype=np.float32)
    if measured_values.shape != model.shape or observed.shape != model.shape[1:]:
        raise BulkFormerError(f"Measured values {measured_values.shape} and genes {observed.shape} do not match "
                              f"the model's output {model.shape}.")
    genes = tuple(result.gene_ids)
    if mode == "model":
        return model, genes
    if mode == "missing":
        return model[:, ~observed], tuple(g for g, seen in zip(genes, observed, strict=True) if not seen)
    return np.where(observed[None, :], measured_values, model).astype(np.float32), genes


def expression_frame(
    result: InferenceResult,
    *,
    measured_values: np.ndarray,
    observed: np.ndarray,
    mode: str = "filled",
    symbols: Mapping[str, str] | None = None,
    genes_as_rows: bool | None = None,
) -> pd.DataFrame:
    """Expression of one of the :data:`~bulkformer.choices.IMPUTE_MODE` as a table (log1p TPM).

    Samples as rows with gene columns (named as in the module notes), or, when
    ``genes_as_rows`` (default: when the genes would not fit in Excel's columns), genes as rows:
    index ``ensembl_id``, column ``symbol``, then one column per sample.
    """
    values, genes = expression_values(result, measured_values=measured_values, observed=observed, mode=mode)
    if genes_as_rows is None:
        genes_as_rows = too_wide_for_excel(len(genes))
    if not genes_as_rows:
        return pd.DataFrame(values, index=sample_index(result.sample_ids),
                            columns=pd.Index(gene_labels(genes, symbols), name="gene"))
    frame = pd.DataFrame(values.T, index=pd.Index(list(genes), name="ensembl_id"),
                         columns=[str(s) for s in result.sample_ids])
    frame.insert(0, "symbol", [(symbols or {}).get(g) or "" for g in genes])
    return frame


def too_wide_for_excel(n_genes: int) -> bool:
    """Whether a samples-as-rows table of ``n_genes`` gene columns (plus the sample ID) would not
    open in full in Excel."""
    return n_genes + 1 > EXCEL_MAX_COLUMNS


def gene_embedding_frame(result: InferenceResult) -> pd.DataFrame:
    """Per-gene embeddings in long format: ``sample_id``, ``gene_id``, ``emb_0`` …, one row per pair."""
    emb = require_array(result.gene_embedding, "gene embeddings")
    n, k, d = emb.shape
    frame = pd.DataFrame(emb.reshape(n * k, d), columns=_emb_columns(d))
    frame.insert(0, "gene_id", np.tile(np.asarray(result.gene_embedding_ids, dtype=object), n))
    frame.insert(0, "sample_id", np.repeat(np.asarray(result.sample_ids, dtype=object), k))
    return frame


def projection_frame(
    projection: Projection, sample_ids: Sequence[str], metadata: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Map coordinates: ``sample_id``, ``x``, ``y``, ``method``, then the sample-sheet columns.

    A sample-sheet column whose name clashes with these gets `` (sample sheet)`` appended.
    """
    if len(sample_ids) != projection.coords.shape[0]:
        raise BulkFormerError(f"{len(sample_ids)} sample IDs for a map of {projection.coords.shape[0]} samples.")
    frame = pd.DataFrame({
        "sample_id": list(sample_ids),
        "x": projection.coords[:, 0],
        "y": projection.coords[:, 1],
        "method": projection.method,
    })
    if metadata is not None:
        extra = metadata.reindex(list(sample_ids))
        extra.columns = [f"{c} (sample sheet)" if c in frame.columns else c for c in extra.columns]
        frame = pd.concat([frame, extra.reset_index(drop=True)], axis=1)
    return frame


def gene_labels(gene_ids: Sequence[str], symbols: Mapping[str, str] | None = None) -> list[str]:
    """Column names for genes: the Ensembl ID, or ``SYMBOL (ENSG…)`` where a symbol is known."""
    if symbols is None:
        return [str(g) for g in gene_ids]
    return [f"{symbols[g]} ({g})" if symbols.get(g) else str(g) for g in gene_ids]


def require_array(array: np.ndarray | None, what: str) -> np.ndarray:
    """The array, if the run produced it and it holds no NaN or infinity."""
    if array is None:
        raise BulkFormerError(f"This run did not compute {what}.", hint=f"Run the model again with {what} turned on.")
    if not np.isfinite(array).all():
        raise BulkFormerError(f"The {what} contain missing or infinite values; they are not exported.",
                              hint="Run the model again with fp32 precision.")
    return array


def sample_index(sample_ids: Sequence[str]) -> pd.Index:
    return pd.Index(list(sample_ids), name="sample_id")


def _emb_columns(d: int) -> list[str]:
    return [f"emb_{i}" for i in range(d)]

