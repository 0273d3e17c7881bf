"""Results written to disk in the format a file name asks for (CSV, TSV, Parquet, NPY, PT,
H5AD), complete or not at all; and tables as file bytes for download buttons. Writing never
prints: each function returns what it wrote."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from bulkformer.errors import BulkFormerError

if TYPE_CHECKING:
    import anndata

TABLE_FORMATS = (".csv", ".tsv", ".parquet", ".pt", ".h5ad")
ARRAY_FORMATS = (".npy", ".pt")
ANNDATA_FORMATS = (".h5ad",)


def write_output(data: pd.DataFrame | anndata.AnnData | np.ndarray | Mapping[str, object], path: Path, *,
                 notes: Sequence[str] = ()) -> Path:
    """Write ``data`` in the format named by ``path``'s extension; never leaves a partial file.

    Tables: ``.csv`` ``.tsv`` ``.parquet`` ``.h5ad`` ``.pt``; arrays: ``.npy`` ``.pt``; AnnData:
    ``.h5ad``. A ``.pt`` file is read back with ``torch.load(path, weights_only=True)``: an array
    becomes a tensor, a table ``{"index", "columns", "values"}``, a mapping of arrays and lists of
    IDs a dict of tensors and lists. ``notes`` (:func:`file_notes`) open a table's CSV/TSV as ``# ``
    lines and go into a Parquet file's ``attrs["notes"]`` (an AnnData of a run carries them in
    ``uns["bulkformer"]["notes"]`` through :func:`to_anndata`'s ``facts``).
    """
    path = Path(path)
    if notes and isinstance(data, pd.DataFrame):
        data = data.copy()
        data.attrs["notes"] = list(notes)
    writer = _writer_for(data, path.suffix.lower(), path.name)
    with written_in_full(path) as tmp:
        writer(tmp)
    return path


@contextlib.contextmanager
def written_in_full(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` (:func:`part_path`; same folder, so the rename is atomic)
    for the block to write; renamed to ``path`` when the block ends, removed if it fails. The
    block creates the file itself, so that it gets the usual permissions."""
    tmp = part_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise BulkFormerError(f"Could not write {path}: {exc.strerror or exc}.",
                              hint="Check the free disk space and that you may write to that folder.") from exc
    finally:
        with contextlib.suppress(OSError):  # never hide the error that brought us here
            tmp.unlink(missing_ok=True)


def part_path(path: Path) -> Path:
    """A fresh hidden name beside ``path`` to write it under until it is complete; short, so that
    every legal ``path`` (names up to 255 bytes) has a legal temporary name too."""
    return path.with_name(f".{path.stem[:40]}.{uuid.uuid4().hex[:12]}.part{path.suffix[:16]}")


def _writer_for(data: object, ext: str, name: str) -> Callable[[Path], None]:
    """The function that writes ``data`` as ``ext``, or a user error listing what is possible."""
    import anndata

    if isinstance(data, pd.DataFrame):
        formats, index = TABLE_FORMATS, not isinstance(data.index, pd.RangeIndex)
        writers: dict[str, Callable[[Path], None]] = {
            ".csv": lambda p: _write_text_table(data, p, sep=",", index=index),
            ".tsv": lambda p: _write_text_table(data, p, sep="\t", index=index),
            ".parquet": lambda p: data.to_parquet(p, index=index),
            ".h5ad": lambda p: _write_h5ad(_table_anndata(data), p),
            ".pt": lambda p: _torch_save(_table_dict(data), p),
        }
        what = "a table"
    elif isinstance(data, anndata.AnnData):
        formats, writers, what = ANNDATA_FORMATS, {".h5ad": lambda p: _write_h5ad(data, p)}, "an AnnData object"
    elif isinstance(data, np.ndarray):
        writers = {".npy": lambda p: np.save(p, data, allow_pickle=False),
                   ".pt": lambda p: _torch_save(_tensor(data), p)}
        formats, what = ARRAY_FORMATS, "an array"
    elif isinstance(data, Mapping):
        writers = {".pt": lambda p: _torch_save({k: _tensor(v) if isinstance(v, np.ndarray) else list(v)
                                                 for k, v in data.items()}, p)}
        formats, what = (".pt",), "a set of arrays"
    else:
        raise TypeError(f"cannot write {type(data).__name__}")
    if ext not in writers:
        raise BulkFormerError(f"Cannot write {what} as {name!r}: unknown file type {ext or '(none)'}.",
                              hint=f"End the file name with one of: {', '.join(formats)}.")
    return writers[ext]


def _comment_lines(frame: pd.DataFrame) -> str:
    """A table's ``attrs["notes"]`` as ``# `` lines (``pandas.read_csv(..., comment="#")`` skips them)."""
    return "".join(f"# {' '.join(str(note).split())}\n" for note in frame.attrs.get("notes", ()))


def _write_text_table(frame: pd.DataFrame, path: Path, *, sep: str, index: bool) -> None:
    comments = _comment_lines(frame)
    if comments:
        path.write_text(comments, encoding="utf-8")
    frame.to_csv(path, sep=sep, index=index, mode="a" if comments else "w")


def _table_anndata(frame: pd.DataFrame) -> anndata.AnnData:
    import anndata

    numeric = frame.select_dtypes("number")
    if numeric.shape[1] != frame.shape[1]:
        raise BulkFormerError("Only tables of numbers can be written as .h5ad.", hint="Use .csv or .parquet.")
    return anndata.AnnData(X=numeric.to_numpy(dtype=np.float32),
                           obs=pd.DataFrame(index=frame.index.astype(str)),
                           var=pd.DataFrame(index=frame.columns.astype(str)))


def _write_h5ad(adata: anndata.AnnData, path: Path) -> None:
    """Write ``adata`` with pandas 3's string arrays (its default for text) stored the way every
    anndata reads them: anndata < 0.13 refuses to write them, and what its opt-in writes needs
    anndata >= 0.11 to be read. The matrices are shared, not copied."""
    import anndata

    raw = adata.raw
    plain = anndata.AnnData(
        X=adata.X, obs=_plain_text(adata.obs), var=_plain_text(adata.var), uns=adata.uns,
        obsm=adata.obsm, varm=adata.varm, layers=adata.layers, obsp=adata.obsp, varp=adata.varp,
        raw=None if raw is None else {"X": raw.X, "var": _plain_text(raw.var), "varm": raw.varm})
    plain.write_h5ad(path)


def _plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with string-array index and columns as Python strings; a text column with
    missing values becomes categorical (h5ad has no missing value in a string array)."""
    frame = frame.copy()
    if isinstance(frame.index.dtype, pd.StringDtype):
        frame.index = frame.index.astype(object)
    for name, column in frame.items():
        if isinstance(column.dtype, pd.StringDtype):
            frame[name] = column.astype("category" if column.isna().any() else object)
    return frame


def _table_dict(frame: pd.DataFrame) -> dict[str, object]:
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] != frame.shape[1]:
        raise BulkFormerError("Only tables of numbers can be written as .pt.", hint="Use .csv or .parquet.")
    return {"index": [str(i) for i in frame.index], "columns": [str(c) for c in frame.columns],
            "values": _tensor(numeric.to_numpy(dtype=np.float32))}


def _tensor(array: np.ndarray) -> object:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def _torch_save(obj: object, path: Path) -> None:
    import torch

    torch.save(obj, path)


def to_bytes(df: pd.DataFrame, fmt: Literal["csv", "parquet"] = "csv", *, notes: Sequence[str] = ()) -> bytes:
    """A table as file bytes, for download buttons (same conventions as :func:`write_output`,
    ``notes`` included)."""
    index = not isinstance(df.index, pd.RangeIndex)
    if notes:
        df = df.copy()
        df.attrs["notes"] = list(notes)
    if fmt == "csv":
        return (_comment_lines(df) + df.to_csv(index=index)).encode("utf-8")
    if fmt == "parquet":
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=index)
        return buffer.getvalue()
    raise BulkFormerError(f"Unknown download format {fmt!r}.", hint="Use one of csv, parquet.")
