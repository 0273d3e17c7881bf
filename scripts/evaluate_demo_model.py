"""Measure the demo model on the demo cohort and record the numbers in assets/demo/metrics.json.

    .venv/bin/python scripts/evaluate_demo_model.py

Imputation: 15 % of the measured genes of the held-out samples (those the training run set
aside, listed in the model's config.json) are hidden and imputed by the model, by each gene's
mean over the other samples, and by scikit-learn's KNNImputer. Panel: the app's hold-out check
(10 % of the measured genes hidden) on the 1,000-gene panel cohort, against each gene's mean
in the main cohort. Separation: silhouette of the simulated tissues in the model's sample
embeddings ("all" aggregation) and in PCA of the data, in each space and on UMAP maps.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bulkformer import paths
from bulkformer.analysis._benchmark import benchmark_imputation, benchmark_separation  # noqa: E402
from bulkformer.analysis._holdout import hide_measured, score_imputation  # noqa: E402
from bulkformer.model._training import pearson  # noqa: E402
from bulkformer.model._bulkformer_model import BulkFormerModel  # noqa: E402


def main() -> None:
    demo = paths.demo_dir()
    model = BulkFormerModel.load("demo", device="cpu")
    prepared = model.prepare(demo / "demo_counts.csv.gz")
    samples = list(prepared.aligned.sample_ids)
    held_out = [samples.index(s) for s in model.training["validation_samples"]]
    imputation = benchmark_imputation(model, prepared.aligned.values, test_rows=held_out)
    tissues = pd.read_csv(demo / "demo_samples.csv", index_col="sample_id").loc[samples, "tissue"]
    separation = benchmark_separation(model, prepared.aligned.values, tissues.tolist(), aggregate="all")

    panel = model.prepare(demo / "demo_panel_counts.csv.gz").aligned
    holdout = hide_measured(panel.values, panel.observed, fraction=0.1, seed=0)
    imputed = model.run(holdout.values, panel.sample_ids, embed=False).imputed
    panel_score = score_imputation(panel.values, imputed, holdout.hidden, sample_ids=panel.sample_ids)
    gene_mean = np.broadcast_to(prepared.aligned.values.mean(axis=0), panel.values.shape)
    panel_metrics = {"model_pcc": panel_score.pearson, "model_spearman": panel_score.spearman,
                     "gene_mean_pcc": pearson(panel.values[holdout.hidden], gene_mean[holdout.hidden]),
                     "n_hidden": panel_score.n}
    metrics = {"imputation": dataclasses.asdict(imputation), "panel_holdout": panel_metrics,
               "separation": dataclasses.asdict(separation), "model_checksum": model.checksum}
    (demo / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
