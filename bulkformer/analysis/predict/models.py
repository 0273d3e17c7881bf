"""Features, pipelines and folds: PCA and scaling are pipeline steps, so they are fitted on each
training fold only; hyperparameters are chosen by an inner cross-validation of the training fold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bulkformer.analysis.predict.targets import Kind, Target

FEATURE_SETS = ("embeddings", "pca", "both")
FEATURE_LABELS = {"embeddings": "BulkFormer embeddings", "pca": "PCA of log1p TPM", "both": "both together"}
N_FOLDS = 5
REPEATS_BELOW = 100
"""Fewer labelled samples than this: the k-fold split is repeated (:data:`N_REPEATS` times) to steady the estimate."""
N_REPEATS = 5
INNER_FOLDS = 3
C_GRID = (0.01, 0.1, 1.0, 10.0)
"""Logistic regression: inverse L2 penalty, strongest penalty first (ties go to the simplest model)."""
RIDGE_GRID = (1000.0, 100.0, 10.0, 1.0, 0.1)
COX_GRID = (100.0, 10.0, 1.0, 0.1)
PCA_GRID = (2, 5, 10, 20, 50)
"""Numbers of principal components tried (capped by the training samples)."""


def expression_features(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """log1p TPM of the measured genes ``[n_samples, n_observed]`` from an aligned matrix."""
    return np.asarray(values, dtype=np.float64)[:, np.asarray(observed, dtype=bool)]


def sample_space(expression: np.ndarray) -> np.ndarray:
    """The samples ``[n, g]`` written in an orthonormal basis of their own span: ``[n, r]``, r ≤ n.

    A rotation, not a fit: distances and inner products between samples are unchanged, so a PCA
    fitted on any subset of rows and applied to any other rows gives exactly the scores it gives
    on the genes themselves (no label is used, nothing is lost). It makes the in-fold PCAs cost
    ``n × n`` instead of ``n × 20,000``.
    """
    x = np.asarray(expression, dtype=np.float64)
    if x.shape[1] <= x.shape[0]:
        return x
    with threadpool_limits(1):
        u, s, _ = np.linalg.svd(x, full_matrices=False)
    keep = s > (s[0] * 1e-10 if s.size else 0)
    return u[:, keep] * s[keep]


def designs(embedding: np.ndarray, expression: np.ndarray) -> dict[str, np.ndarray]:
    emb = np.asarray(embedding, dtype=np.float64)
    space = sample_space(expression)
    return {"embeddings": emb, "pca": space, "both": np.hstack([emb, space])}


def make_pipeline(kind: Kind, features: str, *, n_embedding: int = 0) -> Pipeline:
    """The untrained model for one feature set: PCA and scaling are steps, fitted per training fold."""
    model: Any
    if kind == "classification":
        model = LogisticRegression(max_iter=2000)
    elif kind == "regression":
        model = Ridge()
    else:
        from sksurv.linear_model import CoxPHSurvivalAnalysis

        model = CoxPHSurvivalAnalysis()
    if features == "embeddings":
        steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    elif features == "pca":
        steps = [("pca", PCA(svd_solver="full")), ("scale", StandardScaler())]
    elif features == "both":
        expression = Pipeline([("pca", PCA(svd_solver="full")), ("scale", StandardScaler())])
        steps = [("features", ColumnTransformer([
            ("embeddings", StandardScaler(), slice(0, n_embedding)),
            ("expression", expression, slice(n_embedding, None)),
        ]))]
    else:
        raise ValueError(f"unknown feature set {features!r}")
    return Pipeline([*steps, ("model", model)])


def param_grid(kind: Kind, features: str, *, n_train: int, n_expression: int) -> dict[str, list[Any]]:
    """Hyperparameters searched by the inner CV; PCA sizes capped by ``n_train - 1`` training samples."""
    penalty = {"classification": ("model__C", C_GRID), "regression": ("model__alpha", RIDGE_GRID),
               "survival": ("model__alpha", COX_GRID)}[kind]
    grid: dict[str, list[Any]] = {penalty[0]: list(penalty[1])}
    cap = max(1, min(n_train - 1, n_expression))
    sizes = sorted({min(k, cap) for k in PCA_GRID})
    if features == "pca":
        grid["pca__n_components"] = sizes
    elif features == "both":
        grid["features__expression__pca__n_components"] = sizes
    return grid


@dataclass(frozen=True, eq=False)
class CVPlan:
    """Outer folds (indices into the labelled samples) and how they were chosen."""

    description: str
    splits: tuple[tuple[np.ndarray, np.ndarray], ...]
    repeats: tuple[int, ...]
    inner_folds: int


def strata(target: Target, rows: np.ndarray | None = None) -> np.ndarray:
    """Groups the folds of labelled ``rows`` (default all) are balanced over: classes,
    events, or quintiles of a number (computed from those rows' labels only)."""
    rows = np.arange(target.n_labelled) if rows is None else rows
    if target.kind == "classification":
        return target.values[rows]
    if target.kind == "survival":
        return target.events[rows].astype(int)
    bins = min(5, max(1, len(rows) // (2 * N_FOLDS)))
    return pd.qcut(pd.Series(target.values[rows]).rank(method="first"), bins, labels=False).to_numpy()


def plan_cv(target: Target, *, seed: int = 0) -> CVPlan:
    """Stratified k-fold (k ≤ the smallest class), repeated under :data:`REPEATS_BELOW` samples.

    Not leave-one-out, even on small cohorts: leaving out one sample shifts the training fold's
    class balance against it, so a model that learns little scores far below chance (balanced
    accuracy 0.10 on 29 samples with random labels, when we tried); and one test sample per
    fold gives no spread.
    """
    n = target.n_labelled
    groups = strata(target)
    k = int(max(2, min(N_FOLDS, min(Counter(groups).values()))))  # a lone censored sample: still 2 folds
    r = N_REPEATS if n < REPEATS_BELOW else 1
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=r, random_state=seed)
    splits = tuple(splitter.split(np.zeros(n), groups))
    desc = (f"stratified {k}-fold" + (f", repeated {r} times" if r > 1 else "") +
            f" over {n} samples (spread: standard deviation over the {len(splits)} test folds)")
    repeats = tuple(i // k for i in range(len(splits)))
    smallest = min(min(Counter(groups[train]).values()) for train, _ in splits)
    inner = int(max(2, min(INNER_FOLDS, smallest)))
    return CVPlan(desc, splits, repeats, inner)


def inner_splits(strata: np.ndarray, *, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The inner CV of one training fold (indices local to it), balanced over ``strata``."""
    folds = int(max(2, min(folds, min(Counter(strata).values()))))
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(strata)), strata))


@dataclass(frozen=True, eq=False)
class FoldFit:
    """One outer fold of one feature set: the chosen hyperparameters and the test predictions.

    ``output``: class probabilities ``[n_test, n_classes]``, predicted numbers ``[n_test]`` or
    risk scores ``[n_test]``; ``threshold``: the training samples' median risk (survival).
    """

    params: dict[str, Any]
    output: np.ndarray
    threshold: float


def fit_fold(target: Target, design: np.ndarray, features: str, train: np.ndarray, test: np.ndarray, *,
             inner_folds: int, n_embedding: int, seed: int = 0) -> FoldFit:
    """Tune on ``train`` by inner CV, refit on all of ``train``, predict ``test``. Only
    ``train`` rows of the labels are ever read."""
    y = target.y()
    search = tune(target, design, features, train, y[train], strata(target, train),
                     inner_folds=inner_folds, n_embedding=n_embedding, seed=seed)
    return FoldFit(dict(search.best_params_), *fold_outputs(target, search.best_estimator_, design[train], design[test]))


def search_space(kind: Kind, features: str, strata: np.ndarray, *, inner_folds: int, n_expression: int,
                 seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, list[Any]]]:
    """(inner folds, settings grid) of one tuning on rows balanced over ``strata``: what
    :func:`tune` searches, and what :func:`~bulkformer.analysis.predict.work.planned_work` counts
    (one home, so the planned number of fits is the number made). ``n_expression``: columns of
    the expression design (PCA sizes are capped by it)."""
    cv = inner_splits(strata, folds=inner_folds, seed=seed)
    n_inner_train = min(len(a) for a, _ in cv)
    return cv, param_grid(kind, features, n_train=n_inner_train, n_expression=n_expression)


def tune(target: Target, design: np.ndarray, features: str, rows: np.ndarray, y: np.ndarray,
            strata: np.ndarray, *, inner_folds: int, n_embedding: int, seed: int) -> GridSearchCV:
    n_expression = design.shape[1] - n_embedding if features == "both" else design.shape[1]
    cv, grid = search_space(target.kind, features, strata, inner_folds=inner_folds, n_expression=n_expression,
                            seed=seed)
    scoring = {"classification": "balanced_accuracy", "regression": "r2", "survival": None}[target.kind]
    search = GridSearchCV(make_pipeline(target.kind, features, n_embedding=n_embedding), grid, cv=cv,
                          scoring=scoring, error_score=np.nan)
    return search.fit(design[rows], y)


def fold_outputs(target: Target, model: Any, train_x: np.ndarray, test_x: np.ndarray) -> tuple[np.ndarray, float]:
    if target.kind == "classification":
        return class_probabilities(model, test_x, target.classes), np.nan
    if target.kind == "regression":
        return np.asarray(model.predict(test_x), dtype=np.float64), np.nan
    return np.asarray(model.predict(test_x), dtype=np.float64), float(np.median(model.predict(train_x)))


def class_probabilities(model: Any, x: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``predict_proba`` with a column for every class (0 for a class missing from training)."""
    proba = model.predict_proba(x)
    full = np.zeros((x.shape[0], len(classes)))
    index = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model.classes_):
        full[:, index[c]] = proba[:, j]
    return full


def describe_params(params: dict[str, Any]) -> str:
    words = []
    for key, value in sorted(params.items()):
        if key.endswith("n_components"):
            words.append(f"{value} principal components")
        elif key == "model__C":
            words.append(f"C = {value:g}")
        elif key == "model__alpha":
            words.append(f"penalty α = {value:g}")
        else:
            words.append(f"{key} = {value}")
    return ", ".join(words)
