"""Sample maps and clusters: PCA for tiny cohorts (with a note), UMAP and KMeans on clear groups."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from bulkformer.analysis._projection import cluster, project
from bulkformer.errors import BulkFormerError


def _blobs(n_per_group: int = 25, groups: int = 3, dim: int = 32, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=8.0, size=(groups, dim))
    labels = np.repeat(np.arange(groups), n_per_group)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_three_samples_get_pca_with_a_plain_note() -> None:
    emb, _ = _blobs(1, 3)
    projection = project(emb)
    assert projection.method == "pca" and projection.coords.shape == (3, 2)
    assert "UMAP" in projection.note and "3 samples" in projection.note
    assert np.isfinite(projection.coords).all()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_one_or_two_samples_do_not_fail(n: int) -> None:
    projection = project(np.ones((n, 5)) * np.arange(n)[:, None])
    assert projection.coords.shape == (n, 2) and projection.method == "pca"
    assert (projection.note != "") == (n > 0)
    assert cluster(np.ones((n, 5))).labels.tolist() == [0] * n


def test_pca_on_request_has_no_note_and_constant_dimensions_are_harmless() -> None:
    emb, _ = _blobs()
    emb[:, 0] = 3.0  # a constant dimension: standardising must not make NaN
    projection = project(emb, method="pca")
    assert projection.method == "pca" and projection.note == ""
    assert np.isfinite(projection.coords).all()


def test_umap_and_cluster_recover_separated_groups() -> None:
    emb, labels = _blobs()
    projection = project(emb, seed=0, n_neighbors=200)  # n_neighbors is clipped to n - 1
    assert projection.method == "umap" and projection.note == "" and projection.coords.shape == (75, 2)
    on_map = KMeans(3, n_init=10, random_state=0).fit_predict(projection.coords)
    assert adjusted_rand_score(labels, on_map) >= 0.9
    found = cluster(emb)
    assert found.n_clusters == 3 and adjusted_rand_score(labels, found.labels) >= 0.9
    assert "eigengap" in found.criterion
    chosen = cluster(emb, n_clusters=3)
    assert adjusted_rand_score(labels, chosen.labels) >= 0.9 and chosen.criterion == "3 groups, as you chose"


def test_a_few_far_off_samples_do_not_take_the_clusters() -> None:
    """Six groups and three samples far from all of them (the demo cohort's shape): k-means with
    the best silhouette splits off the three (k = 2); the neighbour graph finds the six groups."""
    emb, labels = _blobs(30, 6, seed=1)
    rng = np.random.default_rng(2)
    far = rng.normal(scale=60.0, size=(3, emb.shape[1])).astype(np.float32)
    emb = np.concatenate([emb, far])
    found = cluster(emb)
    assert found.n_clusters == 6
    assert adjusted_rand_score(labels, found.labels[: len(labels)]) >= 0.9
    assert found.labels.max() == 5 and np.bincount(found.labels).min() >= 30  # the far ones joined a group
    # the baseline the issue saw: k-means, k by silhouette, puts the far three apart
    from sklearn.metrics import silhouette_score

    scores = {k: silhouette_score(emb, KMeans(k, n_init=10, random_state=0).fit_predict(emb)) for k in range(2, 11)}
    assert max(scores, key=scores.get) != 6


def test_few_samples_use_kmeans_by_silhouette_and_labels_go_by_size() -> None:
    emb, _ = _blobs(3, 2)
    emb = np.concatenate([emb, emb[:1] + 0.1])  # group 0 has 4 samples, group 1 has 3
    found = cluster(emb)
    assert found.method == "k-means" and found.n_clusters == 2 and "silhouette" in found.criterion
    assert found.labels.tolist() == [0, 0, 0, 1, 1, 1, 0]  # the larger group is "cluster 1"


def test_bad_input_is_a_user_error() -> None:
    with pytest.raises(BulkFormerError):
        project(np.array([[np.nan, 1.0], [1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(BulkFormerError):
        project(np.zeros((5, 2)), method="tsne")  # type: ignore[arg-type]
    with pytest.raises(BulkFormerError):
        cluster(np.random.default_rng(0).normal(size=(5, 3)), n_clusters=9)


def test_umap_missing_is_a_user_error_and_pca_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """umap-learn is optional (the ``[app]`` extra): without it a UMAP map says what to install."""
    monkeypatch.setitem(sys.modules, "umap", None)  # makes ``import umap`` fail as if not installed
    emb, _ = _blobs()
    with pytest.raises(BulkFormerError) as info:
        project(emb)
    assert "umap-learn" in str(info.value) and "pca" in info.value.hint
    assert project(emb, method="pca").coords.shape == (75, 2)


def test_numba_cache_goes_to_the_per_user_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bulkformer import paths
    from bulkformer.analysis._projection import use_numba_cache

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("BULKFORMER_CACHE_DIR", str(tmp_path / "cache"))
    folder = use_numba_cache()
    assert folder == tmp_path / "cache" / "numba" and paths.cache_dir() in folder.parents
    assert os.environ["NUMBA_CACHE_DIR"] == str(folder)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "chosen"))  # an administrator's choice stands
    assert use_numba_cache() == tmp_path / "chosen" and os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "chosen")


def test_every_umap_numba_function_is_kept_in_numba_s_cache_folder() -> None:
    """umap-learn asks numba to keep only one function (``cache=True``); a map turns it on for all."""
    import numba
    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    project(_blobs()[0])
    import umap.layouts  # imported by the map

    assert numba.config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"]
    dispatchers = [v for name, module in sys.modules.items() if name == "umap" or name.startswith("umap.")
                   for v in vars(module).values() if isinstance(v, CPUDispatcher)]
    assert umap.layouts._nb_optimize_layout_euclidean_single_epoch in dispatchers and len(dispatchers) > 50
    for dispatcher in dispatchers:
        assert isinstance(dispatcher._cache, FunctionCache), dispatcher
        assert Path(dispatcher._cache._cache_path).is_relative_to(numba.config.CACHE_DIR), dispatcher
