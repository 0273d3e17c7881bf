"""The one table of output formats: for each extension, the writer, the download's MIME type and
what kinds of data it can hold. Adding a format is one :data:`OUTPUT_FORMAT` line in
:mod:`bulkformer.choices` and one entry here (a test keeps the two equal).

Every text table (CSV, TSV) holds a header row and data rows only, so that
``pandas.read_csv(path, index_col=0)``, R's ``read.csv(path, row.names = 1, check.names = FALSE)``
and a spreadsheet open it with no options; what a file is and the notes about its run go where
each format keeps metadata (:class:`FileInfo`): Parquet's key-value metadata (key ``bulkformer``,
JSON), an h5ad's ``uns["bulkformer"]``, and for every file the run-report sidecar beside it
(:func:`sidecar_path`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from bulkformer.choices import OUTPUT_FORMAT

if TYPE_CHECKING:
    import anndata

#: What a file can hold: a table (DataFrame), an AnnData, one array, or named arrays and ID lists.
DataKind = Literal["table", "anndata", "array", "arrays"]

#: The scale of every expression value written (said in each file's metadata and sidecar).
VALUE_SCALE = ("log1p TPM: the natural log of (TPM + 1), the scale the model reads and writes; "
               "not counts, so not an input for DESeq2 or edgeR")


@dataclass(frozen=True)
class FileInfo:
    """What a file holds, in words, and the notes about its run (the demo model, low coverage,
    the hold-out verdict): written into the format's metadata and into the sidecar."""

    contents: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: Extra facts for metadata (model name, checksum …), plain strings and numbers.
    facts: Mapping[str, object] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        """The whole as one JSON-able dictionary (Parquet's ``bulkformer`` key, h5ad ``uns``)."""
        return {"contents": list(self.contents), "notes": list(self.notes), **dict(self.facts)}


@dataclass(frozen=True)
class FileFormat:
    """One output format: its extension, MIME type (for download buttons), the kinds of data it
    holds, and the function that writes them to a path."""

    ext: str
    mime: str
    kinds: frozenset[str]
    write: Callable[[object, Path, FileInfo], None]

    def to_bytes(self, data: object, info: FileInfo | None = None) -> bytes:
        """The file's bytes, as :meth:`write` makes it (for download buttons)."""
        with tempfile.TemporaryDirectory(prefix="bulkformer-") as tmp:
            path = Path(tmp) / f"file{self.ext}"
            self.write(data, path, info or FileInfo())
            return path.read_bytes()


def kind_of(data: object) -> DataKind:
    """Which :data:`DataKind` ``data`` is."""
    import anndata

    if isinstance(data, pd.DataFrame):
        return "table"
    if isinstance(data, anndata.AnnData):
        return "anndata"
    if isinstance(data, np.ndarray):
        return "array"
    if isinstance(data, Mapping):
        return "arrays"
    raise TypeError(f"cannot write {type(data).__name__}")


#: The end of a run-report sidecar's name.
SIDECAR_SUFFIX = ".report.md"
_MAX_NAME_BYTES = 255


def sidecar_path(path: Path) -> Path:
    """Where the run report of ``path`` goes: beside it, ``<name>.report.md`` (the name shortened
    from its end where that would pass the file system's 255 bytes)."""
    name = path.name
    while len((name + SIDECAR_SUFFIX).encode()) > _MAX_NAME_BYTES:
        name = name[:-1]
    return path.with_name(name + SIDECAR_SUFFIX)


# The writers, one per format and kind. ---------------------------------------------------------

def _keeps_index(frame: pd.DataFrame) -> bool:
    return not isinstance(frame.index, pd.RangeIndex)


def _write_csv(sep: str) -> Callable[[object, Path, FileInfo], None]:
    def write(data: object, path: Path, info: FileInfo) -> None:
        frame = _require(data, "table")
        frame.to_csv(path, sep=sep, index=_keeps_index(frame), encoding="utf-8")
    return write


def _write_parquet(data: object, path: Path, info: FileInfo) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = _require(data, "table")
    table = pa.Table.from_pandas(frame, preserve_index=_keeps_index(frame))
    metadata = dict(table.schema.metadata or {})
    metadata[b"bulkformer"] = json.dumps(info.metadata(), default=str).encode("utf-8")
    pq.write_table(table.replace_schema_metadata(metadata), path)


def _write_h5ad(data: object, path: Path, info: FileInfo) -> None:
    import anndata

    if isinstance(data, pd.DataFrame):
        data = _table_anndata(data)
    adata = _require(data, "anndata")
    assert isinstance(adata, anndata.AnnData)
    if info.contents or info.notes or info.facts:
        adata = adata.copy() if adata.is_view else adata
        uns = dict(adata.uns.get("bulkformer", {}))
        for key, value in info.metadata().items():
            uns.setdefault(key, value)
        adata = _with_uns(adata, uns)
    write_h5ad(adata, path)


def _write_npy(data: object, path: Path, info: FileInfo) -> None:
    np.save(path, _require(data, "array"), allow_pickle=False)


def _write_pt(data: object, path: Path, info: FileInfo) -> None:
    import torch

    if isinstance(data, pd.DataFrame):
        obj: object = _table_dict(data)
    elif isinstance(data, np.ndarray):
        obj = _tensor(data)
    elif isinstance(data, Mapping):
        obj = {k: _tensor(v) if isinstance(v, np.ndarray) else list(v) for k, v in data.items()}
    else:
        raise TypeError(f"cannot write {type(data).__name__} as .pt")
    torch.save(obj, path)


FORMATS: dict[str, FileFormat] = {
    ".csv": FileFormat(".csv", "text/csv", frozenset({"table"}), _write_csv(",")),
    ".tsv": FileFormat(".tsv", "text/tab-separated-values", frozenset({"table"}), _write_csv("\t")),
    ".parquet": FileFormat(".parquet", "application/vnd.apache.parquet", frozenset({"table"}), _write_parquet),
    ".h5ad": FileFormat(".h5ad", "application/x-hdf5", frozenset({"table", "anndata"}), _write_h5ad),
    ".npy": FileFormat(".npy", "application/octet-stream", frozenset({"array"}), _write_npy),
    ".pt": FileFormat(".pt", "application/octet-stream", frozenset({"table", "array", "arrays"}), _write_pt),
}
"""Every output format by extension; the keys are :data:`bulkformer.choices.OUTPUT_FORMAT`'s names."""

assert tuple(FORMATS) == OUTPUT_FORMAT.names, "FORMATS and choices.OUTPUT_FORMAT must list the same formats"


def formats_for(kind: DataKind) -> tuple[str, ...]:
    """The extensions that can hold data of ``kind``, in :data:`FORMATS` order."""
    return tuple(ext for ext, fmt in FORMATS.items() if kind in fmt.kinds)


def mime_of(ext: str) -> str:
    """The MIME type of a download with extension ``ext`` (``.csv`` or ``csv``)."""
    return FORMATS["." + ext.lower().lstrip(".")].mime


# Helpers of the writers. ----------------------------------------------------------------------

def _require(data: object, kind: DataKind) -> object:
    if kind_of(data) != kind:
        raise TypeError(f"expected {kind}, got {type(data).__name__}")
    return data


def _table_anndata(frame: pd.DataFrame) -> anndata.AnnData:
    import anndata

    from bulkformer.errors import BulkFormerError

    numeric = frame.select_dtypes("number")
    if numeric.shape[1] != frame.shape[1]:
        raise BulkFormerError("Only tables of numbers can be written as .h5ad.", hint="Use .csv or .parquet.")
    return anndata.AnnData(X=numeric.to_numpy(dtype=np.float32),
                           obs=pd.DataFrame(index=frame.index.astype(str)),
                           var=pd.DataFrame(index=frame.columns.astype(str)))


def _with_uns(adata: anndata.AnnData, bulkformer_uns: dict[str, object]) -> anndata.AnnData:
    """``adata`` with ``uns["bulkformer"]`` replaced, the caller's object left as it was."""
    import anndata

    uns = dict(adata.uns)
    uns["bulkformer"] = bulkformer_uns
    return anndata.AnnData(X=adata.X, obs=adata.obs, var=adata.var, uns=uns, obsm=adata.obsm,
                           varm=adata.varm, layers=adata.layers, obsp=adata.obsp, varp=adata.varp,
                           raw=None if adata.raw is None else {"X": adata.raw.X, "var": adata.raw.var,
                                                               "varm": adata.raw.varm})


def write_h5ad(adata: anndata.AnnData, path: Path) -> None:
    """Write ``adata`` with pandas 3's string arrays (its default for text) stored the way every
    anndata reads them: anndata < 0.13 refuses to write them, and what its opt-in writes needs
    anndata >= 0.11 to be read. The matrices are shared, not copied."""
    import anndata

    raw = adata.raw
    plain = anndata.AnnData(
        X=adata.X, obs=plain_text(adata.obs), var=plain_text(adata.var), uns=adata.uns,
        obsm=adata.obsm, varm=adata.varm, layers=adata.layers, obsp=adata.obsp, varp=adata.varp,
        raw=None if raw is None else {"X": raw.X, "var": plain_text(raw.var), "varm": raw.varm})
    plain.write_h5ad(path)


def plain_text(frame: pd.DataFrame) -> pd.DataFrame:
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
    from bulkformer.errors import BulkFormerError

    numeric = frame.select_dtypes("number")
    if numeric.shape[1] != frame.shape[1]:
        raise BulkFormerError("Only tables of numbers can be written as .pt.", hint="Use .csv or .parquet.")
    return {"index": [str(i) for i in frame.index], "columns": [str(c) for c in frame.columns],
            "values": _tensor(numeric.to_numpy(dtype=np.float32))}


def _tensor(array: np.ndarray) -> object:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def describe_table(frame: pd.DataFrame, *, rows: str, columns: str, values: str) -> tuple[str, ...]:
    """:attr:`FileInfo.contents` for a table: which way it runs and what its numbers are."""
    index = frame.index.name or "the first column"
    return (f"Rows: {rows} ({frame.shape[0]:,}; row key: {index}).",
            f"Columns: {columns} ({frame.shape[1]:,}).",
            f"Values: {values}.")
