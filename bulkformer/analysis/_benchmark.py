"""How good is a model on a cohort? Masked-gene imputation and tissue separation, with baselines.

Used to measure the demo model (numbers recorded in ``assets/demo/README.md``) and by users
who fine-tune on their own cohort. Baselines are computed on exactly the same hidden entries:
each gene's mean over the training samples, and scikit-learn's ``KNNImputer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.impute import KNNImputer
from sklearn.metrics import silhouette_score

from bulkformer.analysis._projection import project
from bulkformer.analysis._separation import (
    NotGroups,
    expression_baseline,
    group_separation,
)
from bulkformer.analysis.predict import expression_features
from bulkformer.errors import InputError
from bulkformer.model import MISSING
from bulkformer.model._bulkformer_model import BulkFormerModel
from bulkformer.model._training import mask_measured, pearson


@dataclass(frozen=True)
class ImputationBenchmark:
    """Pooled Pearson r between hidden true values and each method's guess."""

    model_pcc: float
    gene_mean_pcc: float
    knn_pcc: float
    n_hidden: int
    n_samples: int


@dataclass(frozen=True)
class SeparationBenchmark:
    """Silhouette of known groups (e.g. tissues): the model's sample embeddings against PCA of
    the data, each in its own space and on its 2-D UMAP map (as the app shows them)."""

    model_silhouette: float
    model_umap_silhouette: float
    pca_silhouette: float
    pca_umap_silhouette: float


def benchmark_imputation(
    model: BulkFormerModel,
    values: np.ndarray,
    *,
    test_rows: Sequence[int],
    fraction: float = 0.15,
    seed: int = 1,
    batch_size: int | None = None,
) -> ImputationBenchmark:
    """Hide ``fraction`` of the measured genes of the test samples and score three imputers.

    The other rows are the reference cohort for the baselines. Only genes measured in every
    reference sample are scored, so that all three methods see the same entries.

    Shapes:
        values: ``[samples, genes]`` aligned to ``model.gene_ids`` (``-10`` where not measured).
    """
    values = np.asarray(values, dtype=np.float32)
    test = np.asarray(sorted(test_rows))
    reference = np.setdiff1d(np.arange(values.shape[0]), test)
    masked, hidden = mask_measured(torch.from_numpy(values[test]), fraction, torch.Generator().manual_seed(seed))
    masked_np, hidden_np = masked.numpy(), hidden.numpy()
    truth = values[test]

    imputed = model.run(masked_np, [str(i) for i in test], embed=False, batch_size=batch_size).imputed
    ref = values[reference]
    measured_everywhere = (ref != MISSING).all(axis=0)
    score = hidden_np & measured_everywhere
    gene_mean = np.broadcast_to(ref.mean(axis=0), truth.shape)

    knn_input = np.where(masked_np == MISSING, np.nan, masked_np)[:, measured_everywhere]
    knn = KNNImputer(n_neighbors=5).fit(ref[:, measured_everywhere])
    knn_guess = np.full_like(truth, np.nan)
    knn_guess[:, measured_everywhere] = knn.transform(knn_input)

    return ImputationBenchmark(
        model_pcc=pearson(truth[score], imputed[score]),
        gene_mean_pcc=pearson(truth[score], gene_mean[score]),
        knn_pcc=pearson(truth[score], knn_guess[score]),
        n_hidden=int(score.sum()),
        n_samples=len(test),
    )


def benchmark_separation(
    model: BulkFormerModel, values: np.ndarray, labels: Sequence[str], *, aggregate: str = "mean",
    batch_size: int | None = None,
) -> SeparationBenchmark:
    """Silhouette of ``labels`` in the model's sample embeddings and in PCA(20) of the measured
    genes, in each space (:func:`bulkformer.analysis._separation.group_separation`, as the app scores them)
    and on UMAP maps of each."""
    emb = model.run(values, [str(i) for i in range(len(values))], impute=False, aggregate=aggregate,
                    batch_size=batch_size).sample_embedding
    baseline = expression_baseline(expression_features(values, (values != MISSING).all(axis=0)))
    separation = group_separation(emb, baseline, labels)
    if isinstance(separation, NotGroups):
        raise InputError(f"The labels cannot be scored as groups: {separation.reason}")
    labels = np.asarray(labels)
    return SeparationBenchmark(
        model_silhouette=separation.model_silhouette,
        model_umap_silhouette=float(silhouette_score(project(emb, seed=0).coords, labels)),
        pca_silhouette=separation.expression_silhouette,
        pca_umap_silhouette=float(silhouette_score(project(baseline.scores, seed=0).coords, labels)),
    )
