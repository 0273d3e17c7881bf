"""2-D maps and clusters of sample embeddings, for looking at a cohort.

Embedding dimensions have very different scales, so every map and clustering starts by
standardising each dimension. UMAP needs a neighbourhood of several samples to mean anything:
below :data:`MIN_UMAP_SAMPLES` samples the map is a PCA instead, and :attr:`Projection.note`
says so in plain words for the person looking at it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bulkformer import paths
from bulkformer.errors import BulkFormerError, check_choice

MIN_UMAP_SAMPLES = 10
"""Fewer samples than this get a PCA map: UMAP's neighbourhood graph is unreliable on so few."""
UMAP_INPUT_DIMS = 50
"""Principal components fed to UMAP: denoises and keeps 5,000 × 640 embeddings fast on 2 cores."""
MAX_CLUSTERS = 10
SILHOUETTE_SAMPLE = 2000
"""Samples the silhouette is computed on when choosing k (it costs n² otherwise)."""

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"
"""numba's setting for the folder its compiled functions are kept in (set for UMAP unless given)."""

Method = Literal["umap", "pca"]

_log = logging.getLogger(__name__)

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
    check_choice(method, ("umap", "pca"), what="map method")
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

    umap_class = _umap_class()  # imported here: it takes seconds and is only needed for maps
    reduced = _pca(x, min(UMAP_INPUT_DIMS, n - 1, x.shape[1]))
    k = max(2, min(n_neighbors, n - 1))
    # Exact neighbours from scikit-learn: as good as UMAP's own search at these sizes, and it
    # spares compiling pynndescent (over a minute on 2 cores the first time).
    distances, indices = NearestNeighbors(n_neighbors=k).fit(reduced).kneighbors(reduced)
    reducer = umap_class(n_neighbors=k, n_components=2, random_state=seed, n_jobs=1,
                         precomputed_knn=(indices, distances.astype(np.float32), None))
    coords = reducer.fit_transform(reduced)
    return Projection(np.asarray(coords, dtype=np.float32), "umap", "")


def numba_cache_dir() -> Path:
    """Where numba keeps UMAP's compiled functions between runs: ``NUMBA_CACHE_DIR`` when set,
    else ``numba`` in the per-user cache folder (:func:`bulkformer.paths.cache_dir`)."""
    return Path(os.environ.get(NUMBA_CACHE_ENV) or paths.cache_dir() / "numba")


def use_numba_cache() -> Path:
    """Point numba's on-disk cache at :func:`numba_cache_dir` (setting ``NUMBA_CACHE_DIR``, which
    numba reads when it is imported and again before it compiles); returns the folder."""
    folder = numba_cache_dir()
    os.environ[NUMBA_CACHE_ENV] = str(folder)
    return folder


def _umap_class() -> Any:
    """umap-learn's ``UMAP``, its compiled functions kept on disk (:func:`_cache_compiled_umap`)."""
    _point_numba_at_cache()
    try:
        from umap import UMAP
    except ImportError as err:  # an optional dependency: the package's [app] extra
        raise BulkFormerError("UMAP maps need the umap-learn package, which is not installed.",
                              hint="Install it (pip install umap-learn, or bulkformer-studio[app]), "
                                   "or ask for a PCA map (method='pca').") from err
    _cache_compiled_umap()
    return UMAP


@functools.cache
def _point_numba_at_cache() -> None:
    """Once per process, before umap is first imported: :func:`use_numba_cache`, and numba reads
    its settings again (it may be imported already: torch_geometric imports it), so that umap's
    functions choose that folder as they are defined."""
    use_numba_cache()
    with contextlib.suppress(ImportError):  # without numba there is no umap: said where umap is imported
        from numba.core import config

        config.reload_config()


@functools.cache
def _cache_compiled_umap() -> None:
    """Once per process: keep every numba function of umap-learn on disk once compiled.

    The first map of a process compiles ~100 numba functions (15 s to over a minute on 2 busy
    cores); umap-learn asks numba to keep only one of them (``cache=True``), so every new
    process compiled again. Turning numba's cache on for the others, as ``cache=True`` would,
    makes only the first map in a cache folder compile: later processes read the compiled code.
    """
    from numba.core import config
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    modules = [module for name, module in list(sys.modules.items()) if name == "umap" or name.startswith("umap.")]
    try:
        for module in modules:
            for value in list(vars(module).values()):
                if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache):
                    value.enable_caching()
    except RuntimeError:  # no writable folder for numba's cache: maps still work, compiled each time
        _log.warning("numba's cache folder %s is not writable: UMAP compiles anew in every process",
                     config.CACHE_DIR, exc_info=True)


@dataclass(frozen=True)
class Clusters:
    """Groups of similar samples: ``labels`` ``[n_samples]`` (ints from 0), their number, and
    how they were found and their number chosen, in words for the page that shows them."""

    labels: np.ndarray
    n_clusters: int
    method: str
    criterion: str


def cluster(embedding: np.ndarray, *, n_clusters: int | None = None, seed: int = 0,
            n_neighbors: int = 15) -> Clusters:
    """Groups of similar samples in embeddings ``[n_samples, d]``; their number chosen when not given.

    From :data:`MIN_UMAP_SAMPLES` samples on: spectral clustering of the samples'
    ``n_neighbors``-nearest-neighbour graph (the neighbourhoods the UMAP map is drawn from;
    edges weighted by distance relative to each sample's neighbourhood), with
    the number of groups at the largest gap in the graph's spectrum (eigengap) over 2 to
    :data:`MAX_CLUSTERS`. A few far-off samples then join their nearest group instead of taking a
    cluster of their own, as they do for k-means with the best silhouette. Below that, k-means
    with the number of groups of the best silhouette.
    """
    x = _standardise(embedding)
    n = x.shape[0]
    if n_clusters is not None and not 1 <= n_clusters <= max(n, 1):
        raise BulkFormerError(f"Cannot make {n_clusters} clusters from {n} samples.",
                              hint=f"Choose between 1 and {n} clusters.")
    reduced = _pca(x, min(UMAP_INPUT_DIMS, max(n - 1, 1), x.shape[1]))
    if n < 3 or n_clusters == 1 or np.allclose(reduced, 0):
        why = ("you asked for one group" if n_clusters == 1 else
               "fewer than 3 samples" if n < 3 else "the samples' embeddings are identical")
        return Clusters(np.zeros(n, dtype=np.int64), 1, "one group", why)
    if n < MIN_UMAP_SAMPLES:
        return _kmeans_by_silhouette(reduced, n_clusters, seed)
    k_nn = max(2, min(n_neighbors, n - 1))
    spectrum, vectors = _graph_spectrum(reduced, k_nn, min(MAX_CLUSTERS, n - 1) + 1)
    method = f"spectral clustering of each sample's {k_nn} nearest neighbours"
    if n_clusters is None:
        gaps = np.diff(spectrum)[1:]  # gaps[i]: between eigenvalues i + 1 and i + 2, i.e. after k = i + 2
        n_clusters = int(np.argmax(gaps)) + 2
        criterion = (f"{n_clusters} groups: the largest gap in the neighbour graph's spectrum "
                     f"(eigengap), among 2 to {len(spectrum) - 1} groups")
    else:
        criterion = f"{n_clusters} groups, as you chose"
    if n_clusters > vectors.shape[1]:
        spectrum, vectors = _graph_spectrum(reduced, k_nn, n_clusters)
    rows = vectors[:, :n_clusters]
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(rows)
    return Clusters(_relabel_by_size(labels), n_clusters, method, criterion)


def _graph_spectrum(x: np.ndarray, k_nn: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues (ascending) of the normalised Laplacian of the
    symmetrised ``k_nn``-nearest-neighbour graph of ``x``, and their eigenvectors ``[n, count]``."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import eigsh
    from sklearn.neighbors import kneighbors_graph

    graph = kneighbors_graph(x, k_nn, mode="distance", include_self=False).tocsr()
    # self-tuning weights (Zelnik-Manor & Perona 2004): exp(-d² / (σ_i σ_j)), σ = distance to the
    # 7th neighbour; a far-off sample's long edges then weigh little and bridge no groups
    scale = np.sort(graph.data.reshape(x.shape[0], k_nn), axis=1)[:, min(6, k_nn - 1)]
    rows = np.repeat(np.arange(x.shape[0]), np.diff(graph.indptr))
    graph.data = np.exp(-graph.data**2 / np.maximum(scale[rows] * scale[graph.indices], 1e-12))
    graph = graph.maximum(graph.T)
    d = 1.0 / np.sqrt(np.maximum(np.asarray(graph.sum(axis=1)).ravel(), 1e-12))
    affinity = diags(d) @ graph @ diags(d)  # eigenvalues 1 - λ of the normalised Laplacian
    count = min(count, x.shape[0])
    if count >= x.shape[0] - 1:
        values, vectors = np.linalg.eigh(affinity.toarray())
    else:
        v0 = np.random.default_rng(0).uniform(size=x.shape[0])  # eigsh's start vector: repeatable
        values, vectors = eigsh(affinity, k=count, which="LA", v0=v0)
    order = np.argsort(-values)[:count]
    return 1.0 - values[order], vectors[:, order]


def _kmeans_by_silhouette(x: np.ndarray, n_clusters: int | None, seed: int) -> Clusters:
    """K-means on a few samples; the number of groups with the best silhouette when not given."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = x.shape[0]
    if n_clusters is not None:
        labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(x)
        return Clusters(_relabel_by_size(labels), n_clusters, "k-means", f"{n_clusters} groups, as you chose")
    best_labels, best_k, best_score = np.zeros(n, dtype=np.int64), 1, -np.inf
    for k in range(2, min(MAX_CLUSTERS, n - 1) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(x, labels, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=seed)
        if score > best_score:
            best_labels, best_k, best_score = labels, k, score
    return Clusters(_relabel_by_size(best_labels), best_k, "k-means",
                    f"{best_k} groups: the best silhouette among 2 to {min(MAX_CLUSTERS, n - 1)} groups")


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered from the largest group (0) down, so that "cluster 1" is the largest."""
    sizes = np.bincount(labels)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels].astype(np.int64)


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
