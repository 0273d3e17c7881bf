"""What the tools share: the model a call names, an AnnData turned into the model's input by the
same pipeline as any file (:func:`bulkformer.prepare`), and the facts each tool records."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bulkformer.choices import VALUE_TYPE

if TYPE_CHECKING:
    import anndata

    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel, RunOptions

#: ``uns`` key of what the tools record.
UNS_KEY = "bulkformer"


def load_model(model: str | Path | BulkFormerModel, *, device: str = "auto") -> BulkFormerModel:
    """A loaded model as is; a name (``"demo"``, ``"147M"``) or a path loaded; the demo model warns."""
    from bulkformer.export import DEMO_NOTICE
    from bulkformer.model import BulkFormerModel

    loaded = model if isinstance(model, BulkFormerModel) else BulkFormerModel.load(model, device=device)
    if loaded.is_demo:
        warnings.warn(DEMO_NOTICE, UserWarning, stacklevel=3)
    return loaded


def prepared_from(adata: anndata.AnnData, model: BulkFormerModel, *, layer: str | None,
                  value_type: str) -> PreparedInput:
    """``adata``'s values (``X`` or ``layers[layer]``; samples × genes, gene IDs in ``var_names``)
    as the model's input, through exactly the pipeline a file goes through: gene IDs mapped,
    value type detected (or ``value_type``), counts → TPM with the model's gene lengths, log1p,
    aligned to the model's genes, QC."""
    import anndata as ad

    from bulkformer.errors import InputError
    from bulkformer.export._formats import write_h5ad

    VALUE_TYPE.check(value_type, error=InputError)
    if layer is not None and layer not in adata.layers:
        raise InputError(f"The AnnData has no layer {layer!r}.",
                         hint=f"Layers: {', '.join(adata.layers) or '(none)'}; or leave layer=None for X.")
    matrix = adata.X if layer is None else adata.layers[layer]
    if matrix is None:
        raise InputError("The AnnData holds no values in X.", hint="Give layer=… with the expression values.")
    bare = ad.AnnData(X=matrix, obs=adata.obs[[]].copy(), var=adata.var[[]].copy())
    bare.obs_names = [str(s) for s in adata.obs_names]
    bare.var_names = [str(g) for g in adata.var_names]
    with tempfile.TemporaryDirectory(prefix="bulkformer-") as tmp:
        path = Path(tmp) / "adata.h5ad"
        write_h5ad(bare, path)
        prepared = model.prepare(path, filename="the AnnData", value_type=value_type)
    if list(prepared.aligned.sample_ids) != [str(s) for s in adata.obs_names]:
        raise InputError("The AnnData's sample names changed on the way to the model.",
                         hint="Make obs_names unique (adata.obs_names_make_unique()).")
    return prepared


def record(adata: anndata.AnnData, model: BulkFormerModel, prepared: PreparedInput, options: RunOptions,
           **more: object) -> None:
    """``uns["bulkformer"]``: the model (name, checksum, demo), the options, the value scale,
    the coverage and QC of this input, and what the tool adds (``more``)."""
    import dataclasses

    from bulkformer.export import VALUE_SCALE, file_notes

    aligned = prepared.aligned
    n_measured = int(np.asarray(aligned.observed, dtype=bool).sum())
    facts: dict[str, object] = dict(adata.uns.get(UNS_KEY, {}))
    facts.update({
        "model_name": model.name, "model_checksum": model.checksum, "is_demo": int(bool(model.is_demo)),
        "options": {k: ("" if v is None else v if isinstance(v, (bool, int, float, str)) else list(v))
                    for k, v in dataclasses.asdict(options).items()},
        "value_scale": VALUE_SCALE, "value_type": prepared.guesses.value_type.value,
        "n_model_genes": len(aligned.gene_ids), "n_measured_genes": n_measured,
        "coverage": n_measured / max(len(aligned.gene_ids), 1),
        "qc": list(prepared.qc.summary_lines()),
        "notes": list(file_notes(is_demo=bool(model.is_demo), n_measured=n_measured,
                                 n_model_genes=len(aligned.gene_ids))),
        **more,
    })
    adata.uns[UNS_KEY] = facts
