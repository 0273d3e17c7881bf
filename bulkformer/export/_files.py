"""Results written to disk in the format a file name asks for (:data:`~bulkformer.export.FORMATS`),
complete or not at all, with the run-report sidecar beside them; and files as bytes for download
buttons. Writing never prints: each function returns what it wrote."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bulkformer.errors import BulkFormerError
from bulkformer.export._formats import (
    FORMATS,
    FileInfo,
    formats_for,
    kind_of,
    sidecar_path,
    write_h5ad,
)

if TYPE_CHECKING:
    import anndata

    from bulkformer.export._report import RunFacts

_WHAT = {"table": "a table", "anndata": "an AnnData object", "array": "an array", "arrays": "a set of arrays"}

#: Kept for callers that list them: the extensions each kind of data can be written as.
TABLE_FORMATS = formats_for("table")
ARRAY_FORMATS = formats_for("array")
ANNDATA_FORMATS = formats_for("anndata")

__all__ = ["ANNDATA_FORMATS", "ARRAY_FORMATS", "TABLE_FORMATS", "part_path", "to_bytes", "write_h5ad",
           "write_output", "written_in_full"]


def write_output(data: pd.DataFrame | anndata.AnnData | np.ndarray | Mapping[str, object], path: Path, *,
                 notes: Sequence[str] = (), info: FileInfo | None = None, facts: RunFacts | None = None,
                 sidecar: bool | None = None) -> Path:
    """Write ``data`` in the format named by ``path``'s extension; never leaves a partial file.

    Tables: ``.csv`` ``.tsv`` ``.parquet`` ``.h5ad`` ``.pt``; arrays: ``.npy`` ``.pt``; AnnData:
    ``.h5ad`` (:data:`~bulkformer.export.FORMATS`). A ``.pt`` file is read back with
    ``torch.load(path, weights_only=True)``: an array becomes a tensor, a table ``{"index",
    "columns", "values"}``, a mapping of arrays and lists of IDs a dict of tensors and lists.
    CSV/TSV hold the table only. ``info`` (what the file holds) and ``notes`` (:func:`file_notes`)
    go into Parquet's key-value metadata (key ``bulkformer``) and an h5ad's ``uns["bulkformer"]``;
    with ``facts`` (the run) they also make the run-report sidecar ``<name>.report.md``
    (:func:`~bulkformer.export.sidecar_path`), written with the file (``sidecar``: force it on or
    off; by default it is written when there is anything to say).

    Parameters
    ----------
    data
        A table (``DataFrame``), an ``AnnData``, an array, or a mapping of arrays and ID lists.
    path
        Where to write; its extension picks the format.
    notes
        What must travel with the numbers (the demo model, low coverage, a verdict).
    info
        What the file holds, in words.
    facts
        The run (:class:`~bulkformer.export.RunFacts`): the sidecar then holds the whole run report.
    sidecar
        Write ``<name>.report.md`` beside the file (default: when there is anything to say).

    Returns
    -------
    The path written.

    Raises
    ------
    bulkformer.BulkFormerError
        A format that cannot hold ``data`` (the hint lists those that can).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from bulkformer.export import write_output
    >>> table = pd.DataFrame({"emb_0": [0.5, 1.5]}, index=pd.Index(["S1", "S2"], name="sample_id"))
    >>> folder = Path(tempfile.mkdtemp())
    >>> written = write_output(table, folder / "embeddings.csv", notes=("Made with the DEMO model.",))
    >>> written.read_text().splitlines()
    ['sample_id,emb_0', 'S1,0.5', 'S2,1.5']
    >>> sorted(p.name for p in folder.iterdir())
    ['embeddings.csv', 'embeddings.csv.report.md']
    """
    from bulkformer.export._report import sidecar_report

    path = Path(path)
    ext = path.suffix.lower()
    info = _merged(info, notes, facts)
    kind = kind_of(data)
    fmt = FORMATS.get(ext)
    if fmt is None or kind not in fmt.kinds:
        raise BulkFormerError(f"Cannot write {_WHAT[kind]} as {path.name!r}: unknown file type {ext or '(none)'}."
                              if fmt is None else f"Cannot write {_WHAT[kind]} as {path.name!r}.",
                              hint=f"End the file name with one of: {', '.join(formats_for(kind))}.")
    if sidecar is None:
        sidecar = bool(info.contents or info.notes or facts is not None)
    with written_in_full(path) as tmp:
        fmt.write(data, tmp, info)
        if sidecar:
            with written_in_full(sidecar_path(path)) as side:
                side.write_text(sidecar_report(path.name, info, facts), encoding="utf-8")
    return path


def to_bytes(data: pd.DataFrame | anndata.AnnData | np.ndarray, fmt: str = "csv", *, notes: Sequence[str] = (),
             info: FileInfo | None = None) -> bytes:
    """``data`` as the bytes of a ``fmt`` file (``csv``, ``.parquet``, … as
    :data:`~bulkformer.export.FORMATS`), for download buttons; same conventions as
    :func:`write_output` (a CSV holds the table only; ``notes`` and ``info`` go into the
    metadata of formats that have it; offer :func:`~bulkformer.export.sidecar_report` beside it)."""
    ext = "." + fmt.lower().lstrip(".")
    if ext not in FORMATS or kind_of(data) not in FORMATS[ext].kinds:
        raise BulkFormerError(f"Unknown download format {fmt!r}.",
                              hint=f"Use one of {', '.join(formats_for(kind_of(data)))}.")
    return FORMATS[ext].to_bytes(data, _merged(info, notes, None))


def _merged(info: FileInfo | None, notes: Sequence[str], facts: RunFacts | None) -> FileInfo:
    """``info`` with ``notes`` and the run's own notes added (each once), and the run's facts."""
    from bulkformer.export._report import facts_dict

    info = info or FileInfo()
    extra = tuple(notes) + (tuple(facts.notes) if facts is not None else ())
    merged_notes = tuple(dict.fromkeys((*info.notes, *(" ".join(str(n).split()) for n in extra))))
    merged_facts = {**(facts_dict(facts) if facts is not None else {}), **dict(info.facts)}
    merged_facts.pop("notes", None)
    return FileInfo(info.contents, merged_notes, merged_facts)


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
