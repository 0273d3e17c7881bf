"""AnnData (.h5ad) files: the cell budget checked from the HDF5 structure, then read with anndata."""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np
import scipy.sparse

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
    if scipy.sparse.issparse(matrix):
        _check_sparse(inp.name, matrix)
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


def _check_sparse(name: str, matrix: scipy.sparse.spmatrix | scipy.sparse.sparray) -> None:
    """Refuse a sparse matrix whose index arrays do not describe its shape (an index past the
    end, ``indptr`` not rising, lengths that disagree), before scipy densifies it: its C++
    code trusts them and writes out of bounds (signal 11 from a 3 × 3 matrix with a column
    index of 10⁹)."""
    try:
        if isinstance(matrix, (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix,
                               scipy.sparse.csr_array, scipy.sparse.csc_array)):
            _check_compressed(matrix)
        if hasattr(matrix, "check_format"):
            matrix.check_format(full_check=True)
    except (ValueError, TypeError) as err:
        raise InputError(f"{name}: the sparse expression matrix is damaged ({err}).",
                         hint="Write it again with anndata's write_h5ad.") from err


def _check_compressed(matrix: scipy.sparse.csr_matrix | scipy.sparse.csc_matrix) -> None:
    """The CSR/CSC invariants, checked with numpy alone (never scipy's compiled code)."""
    major, minor = matrix.shape if matrix.format == "csr" else matrix.shape[::-1]
    indptr, indices = np.asarray(matrix.indptr), np.asarray(matrix.indices)
    if indptr.ndim != 1 or len(indptr) != major + 1:
        raise ValueError(f"indptr has {len(indptr)} entries for {major} "
                         f"{'rows' if matrix.format == 'csr' else 'columns'}")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr does not rise from 0")
    if indptr[-1] != len(indices) or len(indices) != len(np.asarray(matrix.data)):
        raise ValueError(f"indptr ends at {indptr[-1]} but {len(indices)} indices and "
                         f"{len(np.asarray(matrix.data))} values are stored")
    if len(indices) and (indices.min() < 0 or indices.max() >= minor):
        raise ValueError(f"an index ({int(indices.max())}) lies outside the {minor} "
                         f"{'columns' if matrix.format == 'csr' else 'rows'}")


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
