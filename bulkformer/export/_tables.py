"""Results as tables: sample embeddings, the three kinds of expression, per-gene embeddings in
long format, map coordinates, and the gene column names (conventions: :mod:`bulkformer.export`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bulkformer.analysis._projection import Projection
from bulkformer.choices import IMPUTE_MODE
from bulkformer.errors import BulkFormerError
from bulkformer.model._bulkformer_model import InferenceResult

#: Excel's column limit (a model's ~20,000 genes do not fit in a row).
EXCEL_MAX_COLUMNS = 16_384

#: The one orientation rule of expression files, in words (README, Downloads page, sidecars).
EXPRESSION_LAYOUT = ("Expression tables (CSV, TSV, Parquet) always run genes as rows and samples as "
                     "columns, for every kind of values (filled, model, missing genes only): a model's "
                     "~20,000 genes do not fit in a spreadsheet's 16,384 columns, and genes as rows is "
                     "how count matrices are shared in R and Bioconductor. The row key `gene` is "
                     "SYMBOL_ENSG… (e.g. TP53_ENSG00000141510); every other column is a sample. "
                     "An .h5ad runs samples as rows (obs) and genes as columns (var), as AnnData does.")


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
    genes_as_rows: bool = True,
) -> pd.DataFrame:
    """Expression of one of the :data:`~bulkformer.choices.IMPUTE_MODE` as a table (log1p TPM).

    Genes as rows (:data:`EXPRESSION_LAYOUT`, the same for every mode and every table format):
    index ``gene`` (:func:`gene_labels`: ``SYMBOL_ENSG…``), one numeric column per sample
    (columns named ``sample_id``). ``genes_as_rows=False`` gives the transpose (samples as rows),
    for code that wants it; no file is written that way.
    """
    values, genes = expression_values(result, measured_values=measured_values, observed=observed, mode=mode)
    frame = pd.DataFrame(values.T, index=pd.Index(gene_labels(genes, symbols), name="gene"),
                         columns=pd.Index([str(s) for s in result.sample_ids], name="sample_id"))
    return frame if genes_as_rows else frame.T


def too_wide_for_excel(n_genes: int) -> bool:
    """Whether a samples-as-rows table of ``n_genes`` gene columns (plus the sample ID) would not
    open in full in Excel (one reason expression tables run genes as rows)."""
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
    """Names for genes in tables: ``SYMBOL_ENSG…`` where a symbol is known (``TP53_ENSG00000141510``),
    else the Ensembl ID: unique (the Ensembl ID is always part of it), readable, and left as is
    by R's ``check.names``, by spreadsheets and by pandas. The Ensembl ID is the text after the
    last ``_``."""
    if symbols is None:
        return [str(g) for g in gene_ids]
    return [f"{symbols[g]}_{g}" if symbols.get(g) else str(g) for g in gene_ids]


def unique_symbols(gene_ids: Sequence[str], symbols: Mapping[str, str] | None) -> list[str]:
    """One symbol per gene, unique (so it can become ``var_names``): the symbol where only one
    gene has it, else :func:`gene_labels`' ``SYMBOL_ENSG…``; the Ensembl ID where none is known."""
    found = [(symbols or {}).get(g) or "" for g in gene_ids]
    seen: dict[str, int] = {}
    for symbol in found:
        seen[symbol] = seen.get(symbol, 0) + 1
    return [s if s and seen[s] == 1 else (f"{s}_{g}" if s else str(g)) for s, g in zip(found, gene_ids, strict=True)]


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

