"""What to write for which kind of result in which format: the one place that pairs a run's
output (sample embeddings, imputed expression, per-gene embeddings) with a file type, used by
the CLI and the Downloads page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from bulkformer.errors import BulkFormerError
from bulkformer.export._anndata import (
    EMBEDDING_KEY,
    embedding_anndata,
    gene_embedding_anndata,
    to_anndata,
)
from bulkformer.export._formats import (
    FORMATS,
    VALUE_SCALE,
    FileInfo,
    describe_table,
    kind_of,
)
from bulkformer.export._tables import (
    EXPRESSION_LAYOUT,
    embedding_frame,
    expression_frame,
    expression_values,
    gene_embedding_frame,
)

if TYPE_CHECKING:
    from bulkformer.export._report import RunFacts
    from bulkformer.model._bulkformer_model import InferenceResult

ResultKind = Literal["transcriptome_level", "gene_level", "expression_imputation"]
#: The names of the arrays in a ``.pt`` file, by kind of result.
ARRAY_NAMES: dict[str, str] = {"transcriptome_level": "embedding", "expression_imputation": "imputed",
                               "gene_level": "gene_embedding"}


@dataclass(frozen=True, eq=False)
class ResultFile:
    """One result ready to write: the data for the format, what it holds in words, and the row
    and column IDs a bare ``.npy`` cannot hold itself (written beside it)."""

    data: object
    info: FileInfo
    sample_ids: tuple[str, ...] | None = None
    gene_ids: tuple[str, ...] | None = None
    #: For an AnnData: the ``obsm`` key of the sample embeddings (scanpy's ``use_rep``).
    use_rep: str | None = None

    def describe(self) -> str:
        """Its size in words, for a "Wrote …" line."""
        import anndata

        data = self.data
        if isinstance(data, pd.DataFrame):
            return f"{data.shape[0]} rows × {data.shape[1]} columns"
        if isinstance(data, anndata.AnnData):
            text = f"{data.n_obs} rows (obs) × {data.n_vars} columns (var)"
            return text + (f"; embeddings in obsm['{self.use_rep}'], use_rep='{self.use_rep}'" if self.use_rep else "")
        array = next(v for v in data.values() if not isinstance(v, list)) if isinstance(data, Mapping) else data
        return "array " + " × ".join(map(str, np.shape(array)))


def result_file(
    result: InferenceResult,
    ext: str,
    *,
    kind: ResultKind,
    measured_values: np.ndarray,
    observed: np.ndarray,
    metadata: pd.DataFrame | None = None,
    symbols: Mapping[str, str] | None = None,
    facts: RunFacts | None = None,
    embedding_columns: Sequence[str] | None = None,
    mode: str = "filled",
) -> ResultFile:
    """The data to write for a result of ``kind`` as an ``ext`` file.

    Tables: sample embeddings run samples as rows (index ``sample_id``, columns ``emb_0`` …);
    expression runs genes as rows (:data:`~bulkformer.export.EXPRESSION_LAYOUT`); per-gene
    embeddings are long (``sample_id``, ``gene_id``, ``emb_0`` …). The sample sheet goes only
    into an h5ad's ``obs``, never among a table's columns. An ``.h5ad`` holds what its kind
    needs (:func:`to_anndata`, :func:`embedding_anndata`, :func:`gene_embedding_anndata`);
    ``.npy`` the bare array (IDs in :attr:`ResultFile.sample_ids` / ``gene_ids``); ``.pt`` the
    array with its IDs. ``measured_values`` and ``observed`` are the model's input and measured
    genes in ``result.gene_ids`` order.
    """
    ext = ext.lower()
    if ext not in FORMATS:
        raise BulkFormerError(f"Cannot write results as {ext!r}: unknown file type.",
                              hint=f"Use one of: {', '.join(FORMATS)}.")
    samples = tuple(str(s) for s in result.sample_ids)
    if ext == ".h5ad":
        if kind == "expression_imputation":
            adata = to_anndata(result, measured_values=measured_values, observed=observed, metadata=metadata,
                               symbols=symbols, facts=facts, embedding_columns=embedding_columns)
        elif kind == "transcriptome_level":
            adata = embedding_anndata(result, metadata=metadata, facts=facts, embedding_columns=embedding_columns)
        else:
            adata = gene_embedding_anndata(result, metadata=metadata, symbols=symbols, facts=facts)
        contents = tuple(adata.uns["bulkformer"].get("contents", ()))
        return ResultFile(adata, FileInfo(contents), use_rep=EMBEDDING_KEY if EMBEDDING_KEY in adata.obsm else None)
    if "table" in FORMATS[ext].kinds and ext != ".pt":
        frame, contents = _table(result, kind, measured_values=measured_values, observed=observed, symbols=symbols,
                                 embedding_columns=embedding_columns, mode=mode)
        return ResultFile(frame, FileInfo(contents))
    if kind == "expression_imputation":
        array, genes = expression_values(result, measured_values=measured_values, observed=observed, mode=mode)
        what = f"expression [samples, genes], {VALUE_SCALE}"
    elif kind == "transcriptome_level":
        array, genes, what = result.sample_embedding, None, "sample embeddings [samples, features]"
    else:
        array, genes = result.gene_embedding, tuple(result.gene_embedding_ids)
        what = "per-gene embeddings [samples, genes, features]"
    if array is None:
        raise BulkFormerError(f"This run did not compute the {ARRAY_NAMES[kind].replace('_', ' ')}.")
    genes = None if genes is None else tuple(genes)
    if ext == ".pt":
        data = {"sample_ids": list(samples), ARRAY_NAMES[kind]: np.asarray(array),
                **({"gene_ids": list(genes)} if genes is not None else {})}
        return ResultFile(data, FileInfo((f"'{ARRAY_NAMES[kind]}': {what}; 'sample_ids', "
                                          + ("'gene_ids': " if genes else "") + "their order.",)))
    return ResultFile(np.asarray(array), FileInfo((f"Array: {what}.",)), sample_ids=samples, gene_ids=genes)


def _table(result: InferenceResult, kind: str, *, measured_values: np.ndarray, observed: np.ndarray,
           symbols: Mapping[str, str] | None, embedding_columns: Sequence[str] | None,
           mode: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    if kind == "expression_imputation":
        frame = expression_frame(result, measured_values=measured_values, observed=observed, mode=mode,
                                 symbols=symbols)
        return frame, (*describe_table(frame, rows="genes, SYMBOL_ENSG…", columns="samples",
                                       values=f"{mode} expression, {VALUE_SCALE}"), EXPRESSION_LAYOUT)
    if kind == "transcriptome_level":
        frame = embedding_frame(result, column_names=embedding_columns)
        return frame, describe_table(frame, rows="samples", columns="embedding features (emb_0 …)",
                                     values="sample embeddings (model features, not expression)")
    frame = gene_embedding_frame(result)
    return frame, ((f"Rows: one per sample and gene ({frame.shape[0]:,}); columns sample_id, gene_id, "
                    f"then the embedding features emb_0 … ({frame.shape[1] - 2})."),
                   "Values: per-gene embeddings (model features, not expression).")


def write_result(file: ResultFile, path: Path, *, facts: RunFacts | None = None,
                 id_paths: tuple[Path, Path] | None = None) -> Path:
    """Write ``file`` to ``path`` with its run-report sidecar (:func:`write_output`); a ``.npy``'s
    sample and gene IDs go to ``id_paths`` (sample IDs, gene IDs; CSV), all removed again if the
    main file cannot be written."""
    from bulkformer.export._files import write_output

    written: list[Path] = []
    try:
        if kind_of(file.data) == "array" and id_paths is not None:
            written += write_ids(id_paths, samples=file.sample_ids or (), genes=file.gene_ids)
        write_output(file.data, path, info=file.info, facts=facts, sidecar=True)
    except BaseException:
        for done in written:
            done.unlink(missing_ok=True)
        raise
    return path


def write_ids(id_paths: tuple[Path, Path], *, samples: Sequence[str], genes: Sequence[str] | None) -> list[Path]:
    """The row (``sample_id``) and column (``gene_id``) IDs of a bare array, as one-column CSVs."""
    from bulkformer.export._files import write_output

    written = [write_output(pd.DataFrame({"sample_id": list(samples)}), id_paths[0], sidecar=False)]
    if genes is not None:
        written.append(write_output(pd.DataFrame({"gene_id": list(genes)}), id_paths[1], sidecar=False))
    return written
