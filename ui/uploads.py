"""The session's data: its uploads (table and sample sheet), the reading choices, the table
prepared for the model, and gene names for pickers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from bulkformer import paths
from bulkformer.errors import BulkFormerError
from ui.keys import (
    K_DATASET,
    K_JOBS,
    K_MEMO,
    K_OVERRIDES,
    K_PREPARED,
    K_RESULTS,
    K_SHEET_ERROR,
    K_SHEET_ID_COLUMN,
)
from ui.session import init_session, memo

if TYPE_CHECKING:  # for the reader and type checkers only: pages paint before torch is loaded
    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel

log = logging.getLogger("bulkformer.app")


@dataclass(frozen=True, eq=False)
class Upload:
    """One file as the user gave it: its name, bytes and their sha256."""

    name: str
    data: bytes
    sha: str

    @classmethod
    def of(cls, name: str, data: bytes) -> Upload:
        return cls(name, bytes(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, eq=False)
class Dataset:
    table: Upload
    sheet: Upload | None = None
    origin: str = "upload"  # upload | demo | panel

    @property
    def label(self) -> str:
        extra = {"demo": " (demo cohort)", "panel": " (demo gene panel)"}.get(self.origin, "")
        return self.table.name + extra


def dataset() -> Dataset | None:
    init_session()
    return st.session_state.get(K_DATASET)


def _drop_derived(keep_runs: bool = False) -> None:
    ss = st.session_state
    ss.pop(K_PREPARED, None)
    if not keep_runs:
        for entry in list(ss[K_JOBS].values()):
            with contextlib.suppress(Exception):
                entry.job.cancel()
        ss[K_JOBS] = {}
        ss[K_RESULTS] = {}
        ss[K_MEMO] = {}


def set_table(upload: Upload, *, origin: str = "upload", sheet: Upload | None = None) -> None:
    """What the uploader (and the demo button) call: make ``upload`` this session's table."""
    init_session()
    st.session_state[K_DATASET] = Dataset(upload, sheet, origin)
    st.session_state[K_OVERRIDES] = {"orientation": "auto", "id_type": "auto", "value_type": "auto"}
    _drop_derived()


def set_sheet(sheet: Upload | None) -> None:
    """Attach (or remove) a sample sheet; runs stay valid (the sheet changes no numbers)."""
    current = dataset()
    if current is None:
        return
    st.session_state[K_DATASET] = Dataset(current.table, sheet, current.origin)
    st.session_state.pop(K_SHEET_ID_COLUMN, None)
    _drop_derived(keep_runs=True)


def sheet_id_column() -> str | None:
    """The sample sheet's ID column as the user chose it (``None``: the app decides)."""
    return st.session_state.get(K_SHEET_ID_COLUMN)


def set_sheet_id_column(column: str | None) -> None:
    if column != sheet_id_column():
        st.session_state[K_SHEET_ID_COLUMN] = column
        st.session_state.pop(K_PREPARED, None)


def sheet_error() -> BaseException | None:
    """Why the session's sample sheet could not be used with its table (``None`` if it could)."""
    return st.session_state.get(K_SHEET_ERROR)


def sheet_columns() -> tuple[str, ...]:
    """The column names of the session's sample sheet (``()`` if it has none or is unreadable)."""
    from bulkformer.io import sample_sheet_columns

    data = dataset()
    if data is None or data.sheet is None:
        return ()
    key = ("sheet_columns", data.sheet.sha)
    cache = memo()
    if key not in cache:
        try:
            cache[key] = sample_sheet_columns(data.sheet.data, filename=data.sheet.name)
        except BulkFormerError:
            cache[key] = ()
    return cache[key]


def clear_dataset() -> None:
    init_session()
    st.session_state.pop(K_DATASET, None)
    _drop_derived()


DEMO_FILES = {
    "demo": ("demo_counts.csv.gz", "demo_samples.csv"),
    "panel": ("demo_panel_counts.csv.gz", "demo_panel_samples.csv"),
}


def load_demo(kind: str = "demo") -> None:
    """Load a shipped demo table and its sample sheet as if the user had uploaded them."""
    table_name, sheet_name = DEMO_FILES[kind]
    folder = paths.demo_dir()
    table_path, sheet_path = folder / table_name, folder / sheet_name
    if not table_path.is_file():
        raise BulkFormerError(
            f"The demo data ({table_name}) is not installed in {folder}.",
            hint="Reinstall BulkFormer Studio, or upload your own table on the Upload & QC page.",
        )
    sheet = Upload.of(sheet_name, sheet_path.read_bytes()) if sheet_path.is_file() else None
    set_table(Upload.of(table_name, table_path.read_bytes()), origin=kind, sheet=sheet)


def overrides() -> dict[str, str]:
    init_session()
    return dict(st.session_state[K_OVERRIDES])


def set_overrides(**changes: str) -> None:
    new = {**overrides(), **changes}
    if new != overrides():
        st.session_state[K_OVERRIDES] = new
        _drop_derived(keep_runs=True)  # runs are keyed by the overrides; old ones are kept for reuse


def table_fingerprint(model: BulkFormerModel) -> str:
    """The one identity of the numbers the model sees: a content key of the upload's bytes
    (sha256), the reading choices and the model's checksum. Prepared tables and results are
    kept under it."""
    from bulkformer.jobs import content_key

    data = dataset()
    assert data is not None
    return content_key("table", data.table.sha, json.dumps(overrides(), sort_keys=True), model.checksum)


def get_prepared(model: BulkFormerModel) -> tuple[PreparedInput | None, BaseException | None]:
    """The session's table read, mapped and aligned to ``model``'s genes (cached per session)."""
    data = dataset()
    if data is None:
        return None, None
    key = json.dumps([table_fingerprint(model), data.sheet.sha if data.sheet else None, sheet_id_column()])
    held = st.session_state.get(K_PREPARED)
    if held is not None and held[0] == key:
        return held[1], held[2]
    opts = overrides()
    prepared, error = None, None
    try:
        with st.spinner("Reading your table and matching its genes to the model…"):
            prepared = model.prepare(
                data.table.data,
                filename=data.table.name,
                orientation=opts["orientation"],
                id_type=opts["id_type"],
                value_type=opts["value_type"],
                **_sheet_kwargs(data.sheet),
            )
    except Exception as err:
        if not isinstance(err, BulkFormerError):
            log.error("prepare() failed on %s", data.table.name, exc_info=err)
        error = err
    st.session_state[K_SHEET_ERROR] = None
    if error is not None and data.sheet is not None:  # a sheet that does not fit blocks nothing
        without_sheet, table_error = _prepare_without_sheet(model, data, opts)
        if table_error is None:
            st.session_state[K_SHEET_ERROR] = error
            prepared, error = without_sheet, None
    st.session_state[K_PREPARED] = (key, prepared, error)
    return prepared, error


def _prepare_without_sheet(model: BulkFormerModel, data: Dataset, opts: Mapping[str, str]) -> tuple[PreparedInput | None, BaseException | None]:
    """The table prepared on its own: tells a sample sheet's error apart from the table's."""
    try:
        with st.spinner("Reading your table without the sample sheet…"):
            return model.prepare(data.table.data, filename=data.table.name, orientation=opts["orientation"],
                                 id_type=opts["id_type"], value_type=opts["value_type"]), None
    except Exception as err:  # noqa: BLE001 - the caller shows the first error
        return None, err


def _sheet_kwargs(sheet: Upload | None) -> dict[str, Any]:
    if sheet is None:
        return {}
    return {"sample_sheet": sheet.data, "sample_sheet_filename": sheet.name, "sample_id_column": sheet_id_column()}


def guess_items(prepared: PreparedInput) -> dict[str, Any]:
    """The pipeline's guesses as ``{name: Guess(value, reason)}``, whatever container holds them."""
    guesses = getattr(prepared, "guesses", None)
    if guesses is None:
        return {}
    if isinstance(guesses, Mapping):
        return dict(guesses)
    if hasattr(guesses, "__dataclass_fields__"):
        return {k: getattr(guesses, k) for k in guesses.__dataclass_fields__}
    return dict(vars(guesses))


# ================================================================================ genes


def _annotation() -> Any:
    from bulkformer.genes import load_annotation

    return load_annotation()  # read once per process by the package (functools.cache)


def symbols_for(gene_ids: Sequence[str]) -> dict[str, str]:
    """Ensembl ID → symbol for ``gene_ids`` (IDs without a symbol are left out)."""
    key = ("symbols", hashlib.sha256("\n".join(gene_ids).encode()).hexdigest())
    cache = memo()
    if key not in cache:
        cache[key] = _annotation().symbols_of(gene_ids)
    return cache[key]


def gene_labels(gene_ids: Sequence[str]) -> list[str]:
    """``SYMBOL (ENSG…)`` labels for pickers."""
    sym = symbols_for(gene_ids)
    return [f"{sym[g]} ({g})" if g in sym else g for g in gene_ids]


def resolve_gene_text(text: str, gene_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Typed genes → (model gene IDs in the order given, names that matched no gene of the model),
    by the package's one gene-list rule."""
    from bulkformer.genes import parse_gene_list

    found = parse_gene_list(text, gene_ids, annotation=_annotation())
    return list(found.genes), [*found.unknown, *found.outside]
