"""AnnData (.h5ad) files: the cell budget checked from the HDF5 structure, then read with anndata."""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np

from bulkformer.errors import InputError
from bulkformer.io._budget import _check_budget, check_cells
from bulkformer.io._raw import Guess, RawTable
from bulkformer.io._source import _Input


def _read_h5ad(inp: _Input) -> RawTable:
    """AnnData: samples are observations, genes variables; raw counts from
    ``layers['counts']`` when present, else ``X``. Read with h5py only, nothing unpickled."""
    import anndata  # imported here: slow to import, only .h5ad uploads need it

    readable = inp.readable_binary()
    _check_h5ad_budget(inp.name, readable)
    if isinstance(readable, io.BytesIO):
        readable.seek(0)
    try:
        adata = anndata.read_h5ad(readable)
    except Exception as err:  # h5py/anndata raise many types for a damaged file
        raise InputError(f"{inp.name} is not a readable AnnData (.h5ad) file: {err}",
                         hint="Write it again with anndata's write_h5ad.") from err
    use_layer = "counts" in adata.layers
    matrix = adata.layers["counts"] if use_layer else adata.X
    if matrix is None or adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"{inp.name} holds no expression matrix.",
                         hint="Store the values in X (samples × genes).")
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    try:
        values = np.asarray(dense, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"{inp.name}: the expression matrix is not numeric.",
                         hint="Store numbers in X.") from err
    finite = np.isfinite(values)
    if not finite.all():
        r, c = (int(i[0]) for i in np.nonzero(~finite))
        raise InputError(f"{inp.name}: a missing or infinite value at observation "
                         f"{adata.obs_names[r]!r}, variable {adata.var_names[c]!r}.",
                         hint="Fill every cell with a number.")
    return RawTable(values, tuple(map(str, adata.obs_names)), tuple(map(str, adata.var_names)),
                    "h5ad",
                    layout=Guess("genes_in_columns", "AnnData stores samples as observations "
                                                     "and genes as variables"),
                    value_hint=Guess("counts", "AnnData layers['counts']") if use_layer else None)


def _check_h5ad_budget(name: str, readable: str | BinaryIO) -> None:
    """Refuse, from the HDF5 structure alone, a file whose stored values or whose expression
    matrix once dense (sparse matrices record their dense shape) exceed the cell budget.
    A file h5py cannot walk is left to anndata, which words the damage."""
    import h5py

    try:
        with h5py.File(readable, "r") as file:
            stored = 0

            def count(_: str, obj: object) -> None:
                nonlocal stored
                if isinstance(obj, h5py.Dataset):
                    stored += int(obj.size or 0)

            file.visititems(count)
            layers = file.get("layers")
            matrix = layers.get("counts") if isinstance(layers, h5py.Group) else None
            shape = _h5_matrix_shape(file.get("X") if matrix is None else matrix)
    except Exception:  # noqa: BLE001 - any damage is reported by anndata next, in its own words
        return
    _check_budget(name, f"{stored:,} stored values", stored)
    if shape is not None:
        check_cells(name, *shape)


def _h5_matrix_shape(obj: object) -> tuple[int, int] | None:
    """(rows, columns) of an AnnData matrix: a dense dataset, or a sparse group's ``shape``."""
    import h5py

    if isinstance(obj, h5py.Dataset):
        shape = obj.shape
    elif isinstance(obj, h5py.Group):
        shape = obj.attrs.get("shape", obj.attrs.get("h5sparse_shape"))
    else:
        return None
    try:
        rows, columns = (int(n) for n in shape)
    except (TypeError, ValueError):
        return None
    return (rows, columns) if rows >= 0 and columns >= 0 else None
