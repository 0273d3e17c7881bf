"""2-D maps and clusters of sample embeddings, for looking at a cohort.

Embedding dimensions have very different scales, so every map and clustering starts by
standardising each dimension. UMAP needs a neighbourhood of several samples to mean anything:
below :data:`MIN_UMAP_SAMPLES` samples the map is a PCA instead, and :attr:`Projection.note`
says so in plain words for the person looking at it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bulkformer.errors import BulkFormerError

MIN_UMAP_SAMPLES = 10
"""Fewer samples than this get a PCA map: UMAP's neighbourhood graph is unreliable on so few."""
UMAP_INPUT_DIMS = 50
"""Principal components fed to UMAP: denoises and keeps 5,000 × 640 embeddings fast on 2 cores."""
MAX_CLUSTERS = 10
SILHOUETTE_SAMPLE = 2000
"""Samples the silhouette is computed on when choosing k (it costs n² otherwise)."""

Method = Literal["umap", "pca"]

# We hand UMAP precomputed neighbours and never map new points, so its warning that
# ``transform`` is unavailable without a search index means nothing here.
warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)


@dataclass(frozen=True)
class Projection:
    """Map coordinates ``[n_samples, 2]``, how they were made, and why if not as asked."""

    coords: np.ndarray
    method: Method
    note: str


def project(
    embedding: np.ndarray, *, method: Method = "umap", seed: int = 0, n_neighbors: int = 15
) -> Projection:
    """A 2-D map of sample embeddings ``[n_samples, d]``: UMAP, or PCA when asked or too few samples."""
    if method not in ("umap", "pca"):
        raise BulkFormerError(f"Unknown map method {method!r}.", hint="Use 'umap' or 'pca'.")
    x = _standardise(embedding)
    n = x.shape[0]
    if n <= 2:
        note = ("A single sample cannot be mapped: it is drawn at the centre." if n == 1 else
                "With two samples the map only shows how far apart they are (PCA).") if n else ""
        return Projection(_pca(x, 2), "pca", note)
    if method == "pca":
        return Projection(_pca(x, 2), "pca", "")
    if n < MIN_UMAP_SAMPLES:
        note = (f"UMAP needs at least {MIN_UMAP_SAMPLES} samples to give a meaningful map; with "
                f"{n} samples this is a PCA map (the two main axes of variation) instead.")
        return Projection(_pca(x, 2), "pca", note)
    from sklearn.neighbors import NearestNeighbors
    from umap import UMAP  # imported here: it takes seconds and is only needed for maps

    reduced = _pca(x, min(UMAP_INPUT_DIMS, n - 1, x.shape[1]))
    k = max(2, min(n_neighbors, n - 1))
    # Exact neighbours from scikit-learn: as good as UMAP's own search at these sizes, and it
    # spares compiling pynndescent (over a minute on 2 cores the first time).
    distances, indices = NearestNeighbors(n_neighbors=k).fit(reduced).kneighbors(reduced)
    reducer = UMAP(n_neighbors=k, n_components=2, random_state=seed, n_jobs=1,
                   precomputed_knn=(indices, distances.astype(np.float32), None))
    coords = reducer.fit_transform(reduced)
    return Projection(np.asarray(coords, dtype=np.float32), "umap", "")


def cluster(embedding: np.ndarray, *, n_clusters: int | None = None, seed: int = 0) -> np.ndarray:
    """KMeans labels (ints from 0) of sample embeddings; ``k`` by best silhouette when not given."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = _standardise(embedding)
    n = x.shape[0]
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    reduced = _pca(x, min(UMAP_INPUT_DIMS, n - 1, x.shape[1]))
    if n_clusters is not None:
        if not 1 <= n_clusters <= n:
            raise BulkFormerError(f"Cannot make {n_clusters} clusters from {n} samples.",
                                  hint=f"Choose between 1 and {n} clusters.")
        return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(reduced).astype(np.int64)
    if np.allclose(reduced, 0):  # identical samples: nothing to split
        return np.zeros(n, dtype=np.int64)
    best_labels, best_score = np.zeros(n, dtype=np.int64), -np.inf
    for k in range(2, min(MAX_CLUSTERS, n - 1) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(reduced)
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(reduced, labels, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=seed)
        if score > best_score:
            best_labels, best_score = labels.astype(np.int64), score
    return best_labels


def _standardise(embedding: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension; constant dimensions become 0 (not NaN)."""
    x = np.asarray(embedding, dtype=np.float64)
    if x.ndim != 2:
        raise BulkFormerError(f"Sample embeddings must be a table [samples, dimensions]; got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise BulkFormerError("The sample embeddings contain missing or infinite values.",
                              hint="Run the model again (with fp32 precision).")
    if x.shape[0] == 0:
        return x
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    return x / np.where(sd > 0, sd, 1.0)


def _pca(x: np.ndarray, n_components: int) -> np.ndarray:
    """The first principal-component scores of centred ``x`` (zero-padded; signs made stable)."""
    out = np.zeros((x.shape[0], n_components), dtype=np.float32)
    if x.shape[0] < 2:
        return out
    u, s, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    k = min(n_components, int((s > s[0] * 1e-9).sum()))  # no-variance components stay 0
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    out[:, :k] = u[:, :k] * s[:k] * np.where(signs == 0, 1.0, signs)
    return out
