"""A fitted predictor to keep and reuse: the final model of one feature set as plain numbers.

Why plain numbers: a predictor is a file people pass around, and loading a pickle (or a joblib
file) runs whatever code it names. The pipelines here are linear after their unsupervised steps
(scaling, PCA, a linear / logistic / Cox model), so a handful of arrays describe them exactly:
``predictor.json`` (what it predicts, for which BulkFormer model, over which genes, the options
and the cross-validated scores) and ``arrays.npz`` (read with ``allow_pickle=False``). Applying
it is a few matrix products in NumPy, checked in the tests against the scikit-learn pipeline it
came from.

The PCA is fitted, as in :func:`~bulkformer.analysis.predict.evaluate`, on the samples written
in the basis of their own span (:func:`~bulkformer.analysis.predict.models.sample_space`); its
components are rotated back to genes here, so a new sample's log1p TPM over the same genes gives
exactly the scores it would have had.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bulkformer.analysis.predict.models import FEATURE_LABELS, FEATURE_SETS
from bulkformer.analysis.predict.targets import Kind, Target
from bulkformer.errors import InputError

FeatureSet = Literal["embeddings", "pca", "both"]
FORMAT = "bulkformer-predictor"
FORMAT_VERSION = 1
JSON_NAME = "predictor.json"
ARRAYS_NAME = "arrays.npz"
_ARRAY_KEYS = ("emb_mean", "emb_scale", "pca_mean", "pca_components", "pc_mean", "pc_scale", "coef", "intercept")


def genes_digest(gene_ids: Sequence[str]) -> str:
    """sha256 of a gene list in order: one short fact that says "the same genes, same order"."""
    return hashlib.sha256("\n".join(map(str, gene_ids)).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Predictor:
    """One feature set's model, fitted on all labelled samples of a cohort, as plain numbers.

    ``genes``: the BulkFormer model's gene IDs whose log1p TPM the PCA reads (empty for
    embeddings alone); ``model_genes``: digest of the model's whole gene list; ``cv_scores``:
    metric → ``{"value", "spread"}`` of the within-cohort cross-validation, plus ``p_value``;
    ``arrays``: the fitted numbers (see :data:`_ARRAY_KEYS`).
    """

    kind: Kind
    column: str
    event_column: str | None
    features: str
    classes: tuple[str, ...]
    model_checksum: str
    model_genes: str
    genes: tuple[str, ...]
    n_embedding: int
    settings: dict[str, Any]
    description: str
    risk_threshold: float
    cv_scores: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.column} + {self.event_column}" if self.event_column else self.column

    @property
    def uses_embeddings(self) -> bool:
        return self.features in ("embeddings", "both")

    @property
    def uses_expression(self) -> bool:
        return self.features in ("pca", "both")

    def output(self, embedding: np.ndarray | None, expression: np.ndarray | None) -> np.ndarray:
        """The model's raw output: class probabilities ``[n, n_classes]``, numbers ``[n]`` or
        risk scores ``[n]``. ``expression``: log1p TPM ``[n, len(genes)]`` in :attr:`genes` order."""
        a = self.arrays
        parts = []
        if self.uses_embeddings:
            emb = np.asarray(embedding, dtype=np.float64)
            parts.append((emb - a["emb_mean"]) / a["emb_scale"])
        if self.uses_expression:
            x = np.asarray(expression, dtype=np.float64)
            with threadpool_limits(1):
                pcs = (x - a["pca_mean"]) @ a["pca_components"].T
            parts.append((pcs - a["pc_mean"]) / a["pc_scale"])
        z = np.hstack(parts) @ np.atleast_2d(a["coef"]).T + a["intercept"]
        if self.kind == "classification":
            if z.shape[1] == 1:  # two classes: one logit for the second
                p = 1.0 / (1.0 + np.exp(-z[:, 0]))
                return np.column_stack([1.0 - p, p])
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        return z[:, 0]

    def table(self, sample_ids: Sequence[str], output: np.ndarray) -> pd.DataFrame:
        """Predictions as people read them, one row per sample."""
        frame = pd.DataFrame(index=pd.Index(list(map(str, sample_ids)), name="sample_id"))
        if self.kind == "classification":
            frame["predicted"] = np.asarray(self.classes, dtype=object)[output.argmax(axis=1)]
            frame["probability"] = output.max(axis=1)
            for j, c in enumerate(self.classes):
                frame[f"p_{c}"] = output[:, j]
        elif self.kind == "regression":
            frame["predicted"] = output
        else:
            frame["risk_score"] = output
            frame["predicted"] = np.where(output > self.risk_threshold, "higher risk", "lower risk")
        frame["features"] = FEATURE_LABELS[self.features]
        return frame

    def check_model(self, model_checksum: str, model_gene_ids: Sequence[str]) -> None:
        """Refuse a BulkFormer model other than the one whose embeddings / genes it was fitted on."""
        if model_checksum != self.model_checksum:
            raise InputError(
                f"This predictor was fitted with another BulkFormer model (checksum {self.model_checksum[:12]}…; "
                f"this one is {str(model_checksum)[:12]}…).",
                hint="Load the model the predictor was made with: embeddings of different models are not "
                     "comparable, so its numbers would mean nothing here.")
        if genes_digest(model_gene_ids) != self.model_genes:
            raise InputError("This predictor was fitted on another gene list than this model's.",
                             hint="Load the model the predictor was made with.")

    def expression_of(self, values: np.ndarray, gene_ids: Sequence[str], observed: np.ndarray) -> np.ndarray | None:
        """The log1p TPM of :attr:`genes` from a table aligned to the model (``None`` when not
        used); refuses a table that lacks some of them."""
        if not self.uses_expression:
            return None
        position = {g: i for i, g in enumerate(gene_ids)}
        observed = np.asarray(observed, dtype=bool)
        missing = [g for g in self.genes if g not in position or not observed[position[g]]]
        if missing:
            raise InputError(
                f"The table lacks {len(missing):,} of the {len(self.genes):,} genes this predictor's PCA reads "
                f"(e.g. {', '.join(missing[:5])}).",
                hint="Use a table that measures the same genes, or a predictor on the BulkFormer embeddings "
                     "alone: the model makes embeddings from whatever genes a table has.")
        return np.asarray(values, dtype=np.float64)[:, [position[g] for g in self.genes]]

    def apply(self, embedding: np.ndarray | None, values: np.ndarray, sample_ids: Sequence[str],
              gene_ids: Sequence[str], observed: np.ndarray, *, model_checksum: str) -> pd.DataFrame:
        """Predict new samples of a table aligned to the model (``values`` log1p TPM
        ``[n, model genes]``), after checking the model and the genes."""
        self.check_model(model_checksum, gene_ids)
        expression = self.expression_of(values, gene_ids, observed)
        if self.uses_embeddings:
            embedding = np.asarray(embedding, dtype=np.float64)
            if embedding.ndim != 2 or embedding.shape != (len(sample_ids), self.n_embedding):
                raise InputError(f"The embeddings have shape {embedding.shape}; this predictor needs "
                                 f"({len(sample_ids)}, {self.n_embedding}).",
                                 hint="Compute the embeddings with the model the predictor was made with.")
        return self.table(sample_ids, self.output(embedding, expression))

    def words(self) -> str:
        """What it is, in a sentence or two (the CLI and the page show it before applying)."""
        scores = ", ".join(f"{k} {v['value']:.3f} ± {v['spread']:.3f}" for k, v in self.cv_scores.items()
                           if isinstance(v, dict))
        genes = f" over {len(self.genes):,} genes" if self.genes else ""
        return (f"Predicts {self.name} ({self.kind}) from {FEATURE_LABELS[self.features]}{genes}: "
                f"{self.description}." + (f" Within-cohort CV: {scores}." if scores else ""))


# ---------------------------------------------------------------------------------- fitting
def fit_predictor(
    target: Target,
    embedding: np.ndarray | None,
    expression: np.ndarray | None,
    *,
    features: FeatureSet,
    genes: Sequence[str] = (),
    model_checksum: str,
    model_gene_ids: Sequence[str],
    seed: int = 0,
    cv_scores: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Predictor, Any]:
    """Tune (inner CV) and fit ``features``' model on all labelled samples of ``target``, as
    :func:`~bulkformer.analysis.predict.evaluate` fits its final models.

    Parameters
    ----------
    target
        The task; rows of the matrices are in ``target.sample_ids`` order.
    embedding
        Sample embeddings ``[n_samples, d]`` (``None`` for ``features="pca"``).
    expression
        log1p TPM ``[n_samples, len(genes)]`` (``None`` for ``features="embeddings"``).
    features
        ``"embeddings"``, ``"pca"`` or ``"both"``.
    genes
        The model's gene IDs of ``expression``'s columns (what a new table must measure).
    model_checksum, model_gene_ids
        The BulkFormer model's identity: a predictor refuses any other model.
    seed
        Inner-CV folds, as in :func:`~bulkformer.analysis.predict.evaluate`.
    cv_scores, options
        Kept in the predictor's description (the within-cohort scores, how it was made).

    Returns
    -------
    The :class:`Predictor` and the fitted scikit-learn pipeline it was read from.
    """
    import warnings

    from bulkformer.analysis.predict.evaluation import _final_model
    from bulkformer.analysis.predict.models import plan_cv

    if features not in FEATURE_SETS:
        raise InputError(f"Unknown feature set {features!r}.", hint=f"Use one of: {', '.join(FEATURE_SETS)}.")
    uses_emb, uses_expr = features in ("embeddings", "both"), features in ("pca", "both")
    d = int(np.shape(embedding)[1]) if uses_emb else 0
    blocks, basis = [], None
    if uses_emb:
        blocks.append(np.asarray(embedding, dtype=np.float64))
    if uses_expr:
        if expression is None or np.shape(expression)[1] != len(genes) or not len(genes):
            raise InputError("The expression part of the predictor needs log1p TPM over its genes.",
                             hint="Pass one column per gene of `genes`.")
        space, basis = _space_and_basis(np.asarray(expression, dtype=np.float64))
        blocks.append(space)
    design = np.hstack(blocks)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_cv(target, seed=seed)
        model, summary = _final_model(target, design, features, plan, n_embedding=d, seed=seed)
    arrays = _read_pipeline(model, features, basis, target.classes)
    risk = model.predict(design[np.flatnonzero(target.labelled)]) if target.kind == "survival" else None
    predictor = Predictor(
        kind=target.kind, column=target.column, event_column=target.event_column, features=features,
        classes=tuple(target.classes), model_checksum=str(model_checksum),
        model_genes=genes_digest(model_gene_ids), genes=tuple(genes) if uses_expr else (), n_embedding=d,
        settings=_plain(summary.params), description=summary.description,
        risk_threshold=float(np.median(risk)) if risk is not None else float("nan"),
        cv_scores=_plain(dict(cv_scores or {})), options=_plain(dict(options or {})), arrays=arrays)
    return predictor, model


def _space_and_basis(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(the samples in the basis of their span ``[n, r]``, that basis ``[r, g]``), as
    :func:`~bulkformer.analysis.predict.models.sample_space` writes them; basis ``None`` when
    there are no more genes than samples (no rotation)."""
    if x.shape[1] <= x.shape[0]:
        return x, None
    with threadpool_limits(1):
        _, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = s > (s[0] * 1e-10 if s.size else 0)
    basis = vt[keep]
    return x @ basis.T, basis


def _read_pipeline(model: Any, features: str, basis: np.ndarray | None,
                   classes: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The fitted pipeline's numbers, the PCA rotated back to genes."""
    out: dict[str, np.ndarray] = {}
    if features == "embeddings":
        emb_scaler, expr = model.named_steps["scale"], None
    elif features == "pca":
        emb_scaler, expr = None, model[:-1]
    else:
        columns = model.named_steps["features"]
        emb_scaler, expr = columns.named_transformers_["embeddings"], columns.named_transformers_["expression"]
    if emb_scaler is not None:
        out["emb_mean"], out["emb_scale"] = emb_scaler.mean_, emb_scaler.scale_
    if expr is not None:
        pca, scaler = expr.named_steps["pca"], expr.named_steps["scale"]
        components, mean = pca.components_, pca.mean_
        if basis is not None:
            components, mean = components @ basis, mean @ basis
        out.update(pca_mean=mean, pca_components=components, pc_mean=scaler.mean_, pc_scale=scaler.scale_)
    fitted = model.named_steps["model"]
    coef = np.atleast_2d(np.asarray(fitted.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(getattr(fitted, "intercept_", 0.0), dtype=np.float64))
    if classes:  # rows in the target's class order (scikit-learn sorts them its own way)
        fitted_classes = [str(c) for c in fitted.classes_]
        if len(classes) == 2:
            if fitted_classes[1] != classes[1]:
                coef, intercept = -coef, -intercept
        else:
            order = [fitted_classes.index(c) for c in classes]
            coef, intercept = coef[order], intercept[order]
    out["coef"], out["intercept"] = coef, intercept
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def _plain(value: Any) -> Any:
    """JSON-ready copy: NumPy numbers as Python numbers, NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


# ---------------------------------------------------------------------------------- files
def _meta(predictor: Predictor) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": predictor.kind, "column": predictor.column,
        "event_column": predictor.event_column, "features": predictor.features, "classes": list(predictor.classes),
        "model_checksum": predictor.model_checksum, "model_genes": predictor.model_genes,
        "genes": list(predictor.genes), "n_embedding": predictor.n_embedding, "settings": predictor.settings,
        "description": predictor.description,
        "risk_threshold": _plain(predictor.risk_threshold), "cv_scores": predictor.cv_scores,
        "options": predictor.options,
    }


def _files(predictor: Predictor) -> dict[str, bytes]:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v, dtype=np.float64) for k, v in predictor.arrays.items()})
    return {JSON_NAME: json.dumps(_meta(predictor), indent=1, allow_nan=False).encode("utf-8"),
            ARRAYS_NAME: buffer.getvalue()}


def save_predictor(predictor: Predictor, folder: str | os.PathLike[str]) -> Path:
    """Write ``predictor`` as a folder (``predictor.json`` + ``arrays.npz``), built under a
    temporary name beside it and renamed when complete; an existing predictor folder is replaced."""
    folder = Path(folder)
    if folder.exists() and not (folder.is_dir() and (not any(folder.iterdir()) or (folder / JSON_NAME).is_file())):
        raise InputError(f"{folder} exists and is not a saved predictor; it was left alone.",
                         hint="Choose a new folder name for the predictor.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, data in _files(predictor).items():
            (temp / name).write_bytes(data)
        if folder.exists():
            shutil.rmtree(folder)
        temp.rename(folder)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return folder


def predictor_zip(predictor: Predictor) -> bytes:
    """The predictor's two files in a .zip, built in memory (the page's download)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _files(predictor).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def load_predictor(source: str | os.PathLike[str] | bytes) -> Predictor:
    """A predictor from its folder, its .zip (a path or the bytes of an upload). Only JSON and
    NumPy arrays are read (``allow_pickle=False``): a file from anyone runs no code."""
    files = _read_files(source)
    try:
        meta = json.loads(files[JSON_NAME].decode("utf-8"))
        with np.load(io.BytesIO(files[ARRAYS_NAME]), allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files if k in _ARRAY_KEYS}
    except (ValueError, KeyError, UnicodeDecodeError, OSError, zipfile.BadZipFile) as err:
        raise InputError(f"This is not a readable BulkFormer predictor ({err}).",
                         hint="Use the folder or .zip that `bulkformer predict --save-predictor` or the "
                              "Predict page saved.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError("This file is not a BulkFormer predictor.",
                         hint="Use the folder or .zip that `bulkformer predict --save-predictor` or the "
                              "Predict page saved.")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError("This predictor was saved by a newer BulkFormer Studio.",
                         hint="Update BulkFormer Studio to load it.")
    try:
        predictor = Predictor(
            kind=meta["kind"], column=meta["column"], event_column=meta.get("event_column"),
            features=meta["features"], classes=tuple(meta.get("classes", ())),
            model_checksum=meta["model_checksum"], model_genes=meta["model_genes"],
            genes=tuple(meta.get("genes", ())), n_embedding=int(meta.get("n_embedding", 0)),
            settings=dict(meta.get("settings", {})), description=str(meta.get("description", "")),
            risk_threshold=float("nan") if meta.get("risk_threshold") is None else float(meta["risk_threshold"]),
            cv_scores=dict(meta.get("cv_scores", {})), options=dict(meta.get("options", {})), arrays=arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"The predictor's description is incomplete ({err}).",
                         hint="Save the predictor again.") from None
    _check_shapes(predictor)
    return predictor


def _read_files(source: str | os.PathLike[str] | bytes) -> dict[str, bytes]:
    hint = "Give the folder or .zip that `bulkformer predict --save-predictor` or the Predict page saved."
    if isinstance(source, (bytes, bytearray)):
        return _unzip(bytes(source), hint)
    path = Path(source)
    if path.is_dir():
        missing = [n for n in (JSON_NAME, ARRAYS_NAME) if not (path / n).is_file()]
        if missing:
            raise InputError(f"{path} is not a saved predictor: it has no {' or '.join(missing)}.", hint=hint)
        return {n: (path / n).read_bytes() for n in (JSON_NAME, ARRAYS_NAME)}
    if not path.is_file():
        raise InputError(f"There is no predictor at {path}.", hint=hint)
    return _unzip(path.read_bytes(), hint)


def _unzip(data: bytes, hint: str) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = {Path(n).name: n for n in zf.namelist() if not n.endswith("/")}
            if not all(n in names for n in (JSON_NAME, ARRAYS_NAME)):
                raise InputError(f"The .zip does not hold {JSON_NAME} and {ARRAYS_NAME}.", hint=hint)
            return {n: zf.read(names[n]) for n in (JSON_NAME, ARRAYS_NAME)}
    except zipfile.BadZipFile:
        raise InputError("This file is neither a predictor folder nor its .zip.", hint=hint) from None


def _check_shapes(p: Predictor) -> None:
    """The arrays fit each other and the description (a hand-edited file fails here, not later)."""
    a = p.arrays
    try:
        width = 0
        if p.uses_embeddings:
            assert a["emb_mean"].shape == a["emb_scale"].shape == (p.n_embedding,)
            width += p.n_embedding
        if p.uses_expression:
            k = a["pca_components"].shape[0]
            assert a["pca_components"].shape == (k, len(p.genes)) and a["pca_mean"].shape == (len(p.genes),)
            assert a["pc_mean"].shape == a["pc_scale"].shape == (k,)
            width += k
        assert a["coef"].ndim == 2 and a["coef"].shape[1] == width
        assert p.kind in ("classification", "regression", "survival") and p.features in FEATURE_SETS
        if p.kind == "classification":
            assert a["coef"].shape[0] == (1 if len(p.classes) == 2 else len(p.classes))
    except (AssertionError, KeyError) as err:
        raise InputError(f"The predictor's numbers do not fit together ({err or 'shapes differ'}).",
                         hint="Save the predictor again; do not edit its files.") from None
