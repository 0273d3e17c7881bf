"""Sample maps and clusters: PCA for tiny cohorts (with a note), UMAP and KMeans on clear groups."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from bulkformer.errors import BulkFormerError
from bulkformer.projection import cluster, project


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
    assert cluster(np.ones((n, 5))).tolist() == [0] * n


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
    assert adjusted_rand_score(labels, cluster(emb)) >= 0.9  # k chosen by silhouette
    assert adjusted_rand_score(labels, cluster(emb, n_clusters=3)) >= 0.9


def test_bad_input_is_a_user_error() -> None:
    with pytest.raises(BulkFormerError):
        project(np.array([[np.nan, 1.0], [1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(BulkFormerError):
        project(np.zeros((5, 2)), method="tsne")  # type: ignore[arg-type]
    with pytest.raises(BulkFormerError):
        cluster(np.random.default_rng(0).normal(size=(5, 3)), n_clusters=9)
