"""``bulkformer.read``: any expression table a user has, as an AnnData for scanpy users.

The same reader, orientation and gene mapping as every other input (:func:`bulkformer.io.read_table`,
:func:`bulkformer.genes.orient`, :func:`bulkformer.genes.map_genes`); nothing is normalised, so
``X`` holds the file's own numbers (counts stay counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bulkformer.choices import IdType, Orientation, ValueType

if TYPE_CHECKING:
    import anndata

    from bulkformer.io import Source
    from bulkformer.model import BulkFormerModel


def read(
    path: Source,
    *,
    sample_sheet: Source | pd.DataFrame | None = None,
    orientation: Orientation = "auto",
    id_type: IdType = "auto",
    value_type: ValueType = "auto",
    model: str | Path | BulkFormerModel | None = None,
    filename: str | None = None,
) -> anndata.AnnData:
    """Read an expression table (CSV/TSV/TXT, Excel, Parquet, h5ad, featureCounts, RSEM, salmon,
    gzipped too) as an AnnData: samples as ``obs``, genes as ``var``.

    Parameters
    ----------
    path
        The table's path (or its bytes, with ``filename``); genes × samples or samples × genes.
    sample_sheet
        Optional sample sheet (any table format, or a DataFrame); its columns become ``obs``
        columns, its sample names matched to the table's as everywhere else.
    orientation, id_type, value_type
        Override the guesses (:data:`bulkformer.choices.ORIENTATION`, ``ID_TYPE``, ``VALUE_TYPE``).
    model
        Optional model (a name such as ``"demo"`` or ``"147M"``, a path, or a loaded
        :class:`~bulkformer.BulkFormerModel`): the QC report against its genes goes into ``uns``.
    filename
        The file's name when ``path`` is bytes.

    Returns
    -------
    anndata.AnnData
        ``X``: the file's values as read (float32; counts stay counts); ``obs_names`` the sample
        IDs; ``var_names`` the gene labels as written, ``var["gene_id"]`` their Ensembl IDs (empty
        where unmapped) and ``var["symbol"]``; ``uns["bulkformer"]["read"]`` what was guessed and
        why (orientation, gene IDs, value type) and ``["qc"]`` the QC summary when ``model`` is
        given. Ready for :func:`bulkformer.tl.embed` and :func:`bulkformer.tl.impute`.

    Examples
    --------
    >>> import bulkformer as bf
    >>> from bulkformer.paths import demo_dir
    >>> adata = bf.read(demo_dir() / "demo_counts.csv.gz", sample_sheet=demo_dir() / "demo_samples.csv")
    >>> adata.n_obs, adata.uns["bulkformer"]["read"]["value_type"]
    (200, 'counts')
    >>> adata.obs["is_outlier"].dtype
    dtype('bool')
    """
    import anndata

    from bulkformer import genes, io
    from bulkformer.export._formats import plain_text
    from bulkformer.inputs._pipeline import _value_type

    annotation = genes.load_annotation()
    raw = io.read_table(path, filename=filename)
    table = genes.orient(raw, orientation=orientation, annotation=annotation)
    mapping = genes.map_genes(table.gene_labels, annotation=annotation, id_type=id_type)
    values_guess = _value_type(raw, table, value_type)
    ensembl = [g or "" for g in mapping.ensg_ids]
    symbols = annotation.symbols_of([g for g in ensembl if g])
    var = pd.DataFrame({"gene_id": ensembl, "symbol": [symbols.get(g, "") if g else "" for g in ensembl]},
                       index=pd.Index([str(label) for label in table.gene_labels], name="gene"))
    if table.gene_lengths is not None:
        var["length"] = np.asarray(table.gene_lengths, dtype=np.float64)
    obs = pd.DataFrame(index=pd.Index([str(s) for s in table.sample_ids], name="sample_id"))
    if sample_sheet is not None:
        sheet = io.read_sample_sheet(sample_sheet, sample_ids=table.sample_ids)
        obs = obs.join(sheet.table.reindex(obs.index))
    # text as plain Python strings, as anndata < 0.13 writes them under pandas 3 (adata.write_h5ad works)
    adata = anndata.AnnData(X=np.asarray(table.values, dtype=np.float32), obs=plain_text(obs), var=plain_text(var))
    if not adata.var_names.is_unique:
        adata.var_names_make_unique()
    read_facts: dict[str, object] = {
        "source_format": raw.source_format,
        "orientation": table.orientation.value, "orientation_reason": table.orientation.reason,
        "id_type": mapping.id_type.value, "id_type_reason": mapping.id_type.reason,
        "value_type": values_guess.value, "value_type_reason": values_guess.reason,
        "n_genes_read": len(table.gene_labels), "n_genes_mapped": mapping.n_mapped,
        "counters_left_out": list(table.counter_labels),  # HTSeq / STAR counters: not genes, not in X
    }
    uns: dict[str, object] = {"read": read_facts}
    if model is not None:
        from bulkformer.tl._common import load_model

        loaded = load_model(model)
        prepared = loaded.prepare(path, filename=filename, orientation=orientation, id_type=id_type,
                                  value_type=value_type)
        uns["qc"] = list(prepared.qc.summary_lines())
        uns["model_name"] = loaded.name
    adata.uns["bulkformer"] = uns
    return adata
