"""Every result as a file a biologist can open: tables, arrays, AnnData and a run report.

Conventions for every table written here:

* rows are samples and the sample ID is the row key (the index ``sample_id``, or the first
  column ``sample_id`` for long tables that have one row per sample and gene);
* gene columns are Ensembl gene IDs without version (``ENSG00000141510``); when a symbol map is
  given they read ``SYMBOL (ENSG…)``, e.g. ``TP53 (ENSG00000141510)``: friendly to read and
  still unique, since the Ensembl ID is always part of the name;
* values are log1p TPM, as the model reads and writes them; embeddings and imputed values are
  never NaN (a result with NaN is refused rather than written);
* expression comes in three kinds (:data:`IMPUTE_MODES`): ``filled`` (measured values kept,
  only the genes the table did not measure predicted; the default), ``model`` (the model's
  reconstruction of every gene) and ``missing`` (only the genes the table did not measure);
  "measured" means the gene is a column of the input (``AlignedMatrix.observed``);
* a gene table with more genes than Excel has columns (:data:`EXCEL_MAX_COLUMNS`) is written
  genes as rows (index ``ensembl_id``, then ``symbol``, then one column per sample);
* notes about a run (the demo model, low coverage; :func:`file_notes`) open a CSV/TSV as lines
  starting with ``#``: read such a file with ``pandas.read_csv(path, comment="#")``.

Files are written to a temporary file in the target folder and renamed into place, so an
output file either is complete or does not exist.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from bulkformer.model.config import MISSING
from bulkformer.errors import BulkFormerError, check_choice
from bulkformer.projection import Projection
from bulkformer.wrapper import InferenceResult

if TYPE_CHECKING:
    import anndata

CITATION = ("Kang B, Fan R, Yi M, Cui C, Cui Q. A large-scale foundation model for bulk "
            "transcriptomes. bioRxiv (2025). doi:10.1101/2025.06.11.659222")
TABLE_FORMATS = (".csv", ".tsv", ".parquet", ".pt", ".h5ad")
ARRAY_FORMATS = (".npy", ".pt")
ANNDATA_FORMATS = (".h5ad",)
AGGREGATE_WORDS = {
    "max": "element-wise maximum", "mean": "mean", "median": "median",
    "all": "sum of the element-wise maximum, mean and median",
}
#: Excel's column limit: a wider gene table is written genes as rows.
EXCEL_MAX_COLUMNS = 16_384
#: The three kinds of expression output, and what each holds.
IMPUTE_MODES = {
    "filled": "measured values kept; only the genes your table did not measure are the model's predictions",
    "model": "the model's reconstruction of every gene, measured ones included (measured values replaced)",
    "missing": "only the genes your table did not measure, as the model predicts them",
}
DEMO_NOTICE = ("DEMO model trained on SIMULATED data: these numbers show how BulkFormer Studio works and mean "
               "nothing biologically. Get the published model: 'bulkformer download model', or the app's "
               "Model page -> Get the published model.")
REPORTED_PACKAGES = (
    ("torch", "torch"), ("torch_geometric", "torch-geometric"), ("performer_pytorch", "performer-pytorch"),
    ("numpy", "numpy"), ("pandas", "pandas"), ("bulkformer", "bulkformer-studio"),
)


# --- tables ---------------------------------------------------------------------------------


def embedding_frame(result: InferenceResult, *, column_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Sample embeddings: index ``sample_id``, columns ``emb_0`` … ``emb_{d-1}``, or
    ``column_names`` when they fit (``BulkFormerConfig.feature_names``: a v2 model's last three
    columns are sample features, named)."""
    emb = _require(result.sample_embedding, "sample embeddings")
    columns = list(column_names) if column_names is not None and len(column_names) == emb.shape[-1] \
        else _emb_columns(emb.shape[-1])
    return pd.DataFrame(emb, index=_sample_index(result.sample_ids), columns=columns)


def expression_values(
    result: InferenceResult, *, measured_values: np.ndarray, observed: np.ndarray, mode: str = "filled"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """One of the :data:`IMPUTE_MODES` as (values ``[samples, genes]``, gene IDs).

    ``measured_values`` ``[samples, genes]`` is the model's input (log1p TPM, -10 where not
    measured) and ``observed`` ``[genes]`` the genes the table measured, both in
    ``result.gene_ids`` order.
    """
    check_choice(mode, IMPUTE_MODES, what="expression output")
    model = _require(result.imputed, "imputed expression")
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
    genes_as_rows: bool | None = None,
) -> pd.DataFrame:
    """Expression of one of the :data:`IMPUTE_MODES` as a table (log1p TPM).

    Samples as rows with gene columns (named as in the module notes), or, when
    ``genes_as_rows`` (default: when the genes would not fit in Excel's columns), genes as rows:
    index ``ensembl_id``, column ``symbol``, then one column per sample.
    """
    values, genes = expression_values(result, measured_values=measured_values, observed=observed, mode=mode)
    if genes_as_rows is None:
        genes_as_rows = too_wide_for_excel(len(genes))
    if not genes_as_rows:
        return pd.DataFrame(values, index=_sample_index(result.sample_ids),
                            columns=pd.Index(gene_labels(genes, symbols), name="gene"))
    frame = pd.DataFrame(values.T, index=pd.Index(list(genes), name="ensembl_id"),
                         columns=[str(s) for s in result.sample_ids])
    frame.insert(0, "symbol", [(symbols or {}).get(g) or "" for g in genes])
    return frame


def too_wide_for_excel(n_genes: int) -> bool:
    """Whether a samples-as-rows table of ``n_genes`` gene columns (plus the sample ID) would not
    open in full in Excel."""
    return n_genes + 1 > EXCEL_MAX_COLUMNS


def file_notes(*, is_demo: bool, n_measured: int, n_model_genes: int) -> tuple[str, ...]:
    """What every result file of a run must say about it: the demo model, low coverage."""
    from bulkformer.qc import low_coverage_warning

    return tuple(note for note in (DEMO_NOTICE if is_demo else None,
                                   low_coverage_warning(n_measured, n_model_genes)) if note)


def gene_embedding_frame(result: InferenceResult) -> pd.DataFrame:
    """Per-gene embeddings in long format: ``sample_id``, ``gene_id``, ``emb_0`` …, one row per pair."""
    emb = _require(result.gene_embedding, "gene embeddings")
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
    """Column names for genes: the Ensembl ID, or ``SYMBOL (ENSG…)`` where a symbol is known."""
    if symbols is None:
        return [str(g) for g in gene_ids]
    return [f"{symbols[g]} ({g})" if symbols.get(g) else str(g) for g in gene_ids]


# --- AnnData --------------------------------------------------------------------------------


def to_anndata(
    result: InferenceResult,
    *,
    measured_values: np.ndarray,
    observed: np.ndarray,
    metadata: pd.DataFrame | None = None,
    projection: Projection | None = None,
    symbols: Mapping[str, str] | None = None,
    facts: RunFacts | None = None,
) -> anndata.AnnData:
    """One AnnData holding the whole run, ready for scanpy.

    ``X`` is the *filled* expression (log1p TPM: measured values kept, the others the model's;
    absent if imputation was not run), ``layers["measured"]`` the input with NaN where a gene
    was not measured, ``layers["bulkformer"]`` the model's value for every gene; ``var`` has
    ``measured`` (bool) and ``symbol`` when known; ``obsm["X_bulkformer"]`` the sample
    embeddings, ``obsm["X_umap"]``/``obsm["X_pca"]`` the map, ``obsm["X_bulkformer_genes"]``
    the per-gene embeddings ``[samples, genes asked for, d]`` (their IDs in ``uns``).
    ``measured_values`` and ``observed`` are the model's input and its measured genes, in
    ``result.gene_ids`` order.
    """
    import anndata

    obs = pd.DataFrame(index=_sample_index(result.sample_ids).astype(str))
    if metadata is not None:
        obs = obs.join(_h5ad_safe(metadata.reindex(obs.index)))
    var = pd.DataFrame(index=pd.Index(list(result.gene_ids), name="gene_id"))
    if symbols is not None:
        var["symbol"] = [symbols.get(g) or "" for g in result.gene_ids]
    observed = np.asarray(observed, dtype=bool)
    var["measured"] = observed
    filled = None
    if result.imputed is not None:
        filled, _ = expression_values(result, measured_values=measured_values, observed=observed)
    adata = anndata.AnnData(X=filled, obs=obs, var=var)
    if result.imputed is not None:
        adata.layers["bulkformer"] = result.imputed
    measured = np.asarray(measured_values, dtype=np.float32).copy()
    measured[(measured == MISSING) | ~observed[None, :]] = np.nan
    adata.layers["measured"] = measured
    if result.sample_embedding is not None:
        adata.obsm["X_bulkformer"] = _require(result.sample_embedding, "sample embeddings")
    if result.gene_embedding is not None:
        adata.obsm["X_bulkformer_genes"] = _require(result.gene_embedding, "gene embeddings")
    if projection is not None:
        adata.obsm[f"X_{projection.method}"] = projection.coords
    uns: dict[str, object] = {"aggregate": result.aggregate,
                              "gene_embedding_ids": list(result.gene_embedding_ids),
                              "values": "log1p TPM; X: filled (measured values kept, unmeasured genes "
                                        "predicted); layers['measured']: NaN where not measured; "
                                        "layers['bulkformer']: the model's value for every gene"}
    if projection is not None and projection.note:
        uns["map_note"] = projection.note
    if facts is not None:
        uns.update(_facts_dict(facts))
    adata.uns["bulkformer"] = uns
    return adata


def _h5ad_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Sample-sheet columns h5ad can store: mixed-type text columns become text (NaN kept);
    a column named like anndata's reserved ``_index`` or like the index gets `` (sample sheet)``."""
    frame = frame.copy()
    reserved = {"_index"} | ({str(frame.index.name)} if frame.index.name is not None else set())
    frame.columns = [f"{c} (sample sheet)" if str(c) in reserved else str(c) for c in frame.columns]
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            frame[name] = column.where(column.isna(), column.astype(str))
    return frame


# --- writing --------------------------------------------------------------------------------


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


# --- run report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFacts:
    """What a run used and produced, for the report and for AnnData's ``uns``."""

    model_name: str
    model_checksum: str
    model_source: str
    is_demo: bool
    device: str
    aggregate: str
    batch_size: int | None
    precision: str
    n_samples: int
    n_genes: int
    qc_summary: tuple[str, ...]
    extra: tuple[tuple[str, str], ...] = ()
    #: Model genes the input measured (``None``: not recorded); under ``qc.LOW_COVERAGE`` the
    #: report opens with the low-coverage warning.
    n_measured_genes: int | None = None
    #: The imputation hold-out check's verdict and table summary (``holdout.Verdict.lines()``).
    holdout: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """What every file of this run must say (:func:`file_notes`)."""
        if self.n_measured_genes is None:
            return (DEMO_NOTICE,) if self.is_demo else ()
        return file_notes(is_demo=self.is_demo, n_measured=self.n_measured_genes, n_model_genes=self.n_genes)


DEMO_WARNING = ("**These results come from a DEMO model trained on SIMULATED data.** They show how "
                "the app works and mean nothing biologically. Run `bulkformer download` to get the "
                "published BulkFormer weights and run the analysis again with them.")


def run_report(facts: RunFacts) -> str:
    """A Markdown record of a run: model, parameters, QC, versions, and a methods paragraph."""
    lines = ["# BulkFormer run report", "",
             f"Created {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.", ""]
    if facts.is_demo:
        lines += [DEMO_WARNING, ""]
    lines += [f"**Warning:** {note}\n" for note in facts.notes if note != DEMO_NOTICE]
    if facts.holdout:
        lines += ["## Imputation hold-out check", "", *(f"- {line}" for line in facts.holdout), ""]
    lines += [
        "## Model", "",
        f"- Model: {facts.model_name}{' (demo model, simulated data)' if facts.is_demo else ''}",
        f"- Weights checksum (sha256): `{facts.model_checksum}`",
        f"- Loaded from: `{facts.model_source}`",
        "",
        "## Parameters", "",
        f"- Device: {facts.device}",
        f"- Precision: {facts.precision}",
        f"- Batch size: {facts.batch_size if facts.batch_size is not None else 'automatic'}",
        f"- Gene aggregation for sample embeddings: {facts.aggregate}",
        f"- Samples: {facts.n_samples}",
        f"- Model genes: {facts.n_genes}",
        *(f"- {key}: {value}" for key, value in facts.extra),
        "",
        "## Input quality control", "",
        *(f"- {line}" for line in facts.qc_summary or ("(no QC summary recorded)",)),
        "",
        "## Software", "",
        *(f"- {name}: {version}" for name, version in package_versions()),
        "",
        "## Methods", "",
        methods_paragraph(facts),
        "",
    ]
    return "\n".join(lines)


def methods_paragraph(facts: RunFacts) -> str:
    """A paragraph to paste into a paper's methods section."""
    versions = dict(package_versions())
    model = ("a demonstration model trained on simulated data (not the published weights)"
             if facts.is_demo else f"the published BulkFormer {facts.model_name} weights")
    return (
        f"Sample and gene representations were computed with BulkFormer (Kang et al., 2025), a "
        f"foundation model for human bulk transcriptomes, using {model} (sha256 "
        f"{facts.model_checksum[:12]}…) in BulkFormer Studio {versions.get('bulkformer', '')} with "
        f"PyTorch {versions.get('torch', '')}. Expression values of {facts.n_samples} samples were "
        f"converted to log1p-transformed TPM (log(TPM + 1)) and aligned to the model's "
        f"{facts.n_genes} genes; genes not measured in the input were given the placeholder value "
        f"-10, which the model treats as missing and imputes. Sample embeddings were obtained by "
        f"aggregating the per-gene embeddings over genes with the "
        f"{AGGREGATE_WORDS.get(facts.aggregate, facts.aggregate)} ({facts.precision} precision, "
        f"{facts.device}).\n\n"
        f"Reference: {CITATION}."
    )


def package_versions() -> list[tuple[str, str]]:
    """Versions of Python and the packages a result depends on ('not installed' if absent)."""
    from bulkformer import __version__

    found = [("python", platform.python_version())]
    for label, dist in REPORTED_PACKAGES:
        try:
            found.append((label, importlib_metadata.version(dist)))
        except importlib_metadata.PackageNotFoundError:  # this package run from a source checkout
            found.append((label, __version__ if label == "bulkformer" else "not installed"))
    return found


def _facts_dict(facts: RunFacts) -> dict[str, object]:
    """RunFacts as plain strings and numbers (h5ad can store those)."""
    return {
        "model_name": facts.model_name, "model_checksum": facts.model_checksum,
        "model_source": facts.model_source, "is_demo": int(facts.is_demo), "device": facts.device,
        "batch_size": -1 if facts.batch_size is None else facts.batch_size, "precision": facts.precision,
        "n_samples": facts.n_samples, "n_genes": facts.n_genes, "qc_summary": "\n".join(facts.qc_summary),
        "notes": list(facts.notes), "holdout": "\n".join(facts.holdout),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{f"extra_{k}".replace("/", "_"): v for k, v in facts.extra},
        **{f"version_{name}": version for name, version in package_versions()},
    }


# --- helpers --------------------------------------------------------------------------------


def _require(array: np.ndarray | None, what: str) -> np.ndarray:
    """The array, if the run produced it and it holds no NaN or infinity."""
    if array is None:
        raise BulkFormerError(f"This run did not compute {what}.", hint=f"Run the model again with {what} turned on.")
    if not np.isfinite(array).all():
        raise BulkFormerError(f"The {what} contain missing or infinite values; they are not exported.",
                              hint="Run the model again with fp32 precision.")
    return array


def _sample_index(sample_ids: Sequence[str]) -> pd.Index:
    return pd.Index(list(sample_ids), name="sample_id")


def _emb_columns(d: int) -> list[str]:
    return [f"emb_{i}" for i in range(d)]
