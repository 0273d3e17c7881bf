"""Do a sample sheet's groups separate in the model's embeddings, and would the expression alone
separate them as well? The baseline beside every map coloured by groups.

Groups that look apart on a map of the embeddings say nothing about the model unless the
plain expression keeps them less apart: a PCA of the measured genes' log1p TPM often separates
tissues or batches as well or better. Both spaces are scored by the silhouette of the groups
(scikit-learn's ``silhouette_score``, Euclidean): for each sample, how much nearer it is to its
own group than to the nearest other group, averaged; −1 to 1, higher = more apart, about 0 =
the groups overlap. Descriptive, not a test: the Predict page cross-validates and permutes.

- the model: the sample embeddings, each number scaled to unit variance (as the maps do);
- the baseline: :class:`ExpressionBaseline`, the first (at most :data:`BASELINE_COMPONENTS`)
  principal components of the measured genes' log1p TPM, unscaled (its first two are the
  baseline map, so that picture and number show the same space).

:func:`bulkformer.analysis._benchmark.benchmark_separation` (the demo's recorded numbers) scores through
:func:`group_separation` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from bulkformer.analysis._projection import Projection
from bulkformer.analysis.predict.targets import MAX_NUMBER_CLASSES
from bulkformer.choices import Tone

BASELINE_COMPONENTS = 20
"""Principal components of the expression the baseline keeps (fewer with fewer samples)."""
MARGIN = 0.05
"""Silhouettes closer than this count as "about as well": smaller gaps are within noise."""
OVERLAP = 0.1
"""Below this silhouette in both spaces the groups overlap in both, and the comparison says little."""
MIN_GROUP_SIZE = 2
"""Samples a group needs to be scored (a group of one has no silhouette); smaller groups are left out."""
SMALL_GROUP = 5
"""A group smaller than this makes both silhouettes rough (a few samples move them a lot): the verdict says so."""

Kind = Literal["model better", "about the same", "expression better", "overlap"]


@dataclass(frozen=True, eq=False)
class ExpressionBaseline:
    """PCA of the measured genes' log1p TPM: ``scores`` ``[n_samples, k]`` (k ≤ 20, fewer with
    fewer samples) and the share of the variance each component explains ``[k]``."""

    scores: np.ndarray
    explained: np.ndarray

    def projection(self) -> Projection:
        """The baseline map: the first two components (a zero axis where there are fewer)."""
        coords = np.zeros((self.scores.shape[0], 2), dtype=np.float32)
        k = min(2, self.scores.shape[1])
        coords[:, :k] = self.scores[:, :k]
        return Projection(coords, "pca", "")

    def axis_titles(self) -> tuple[str, str]:
        """The baseline map's axes, with the share of the variance each shows."""
        shares = [*(f" ({share:.1%} of the variance)" for share in self.explained[:2]), "", ""]
        return f"PC 1{shares[0]}", f"PC 2{shares[1]}"


@dataclass(frozen=True)
class GroupSeparation:
    """How far apart the groups are in the model's embeddings and in the expression baseline.

    ``n_samples``: samples scored (a label, in a group of at least :data:`MIN_GROUP_SIZE`);
    ``n_left_out``: the others; ``smallest_group``: samples in the smallest group scored;
    ``verdict``: the comparison in words, thresholds included.
    """

    model_silhouette: float
    expression_silhouette: float
    n_groups: int
    n_samples: int
    n_left_out: int
    smallest_group: int
    kind: Kind
    verdict: str

    def summary(self) -> str:
        """One line for a report: both numbers, what was scored, the verdict."""
        left = f", {self.n_left_out} left out" if self.n_left_out else ""
        return (f"silhouette {self.model_silhouette:.2f} in the model's embeddings, "
                f"{self.expression_silhouette:.2f} in PCA of the expression ({self.n_samples} samples in "
                f"{self.n_groups} groups{left}). {self.verdict}")


@dataclass(frozen=True)
class NotGroups:
    """Why a column cannot be scored as groups, in words."""

    reason: str


def expression_baseline(expression: np.ndarray) -> ExpressionBaseline:
    """PCA (at most :data:`BASELINE_COMPONENTS` components) of log1p TPM ``[n_samples, n_genes]``
    of the measured genes (:func:`bulkformer.analysis.predict.expression_features`)."""
    from sklearn.decomposition import PCA

    x = np.asarray(expression, dtype=np.float64)
    n_components = min(BASELINE_COMPONENTS, x.shape[0] - 1, x.shape[1])
    if n_components < 1:
        return ExpressionBaseline(np.zeros((x.shape[0], 0)), np.zeros(0))
    pca = PCA(n_components=n_components, random_state=0)
    return ExpressionBaseline(pca.fit_transform(x), pca.explained_variance_ratio_)


def group_labels(labels: Sequence[object] | pd.Series) -> np.ndarray | NotGroups:
    """The groups a column makes ``[n_samples]`` (str; ``""`` for a sample left out: no label, or
    in a group smaller than :data:`MIN_GROUP_SIZE`), or why it makes none: numbers with more than
    ``MAX_NUMBER_CLASSES`` values (as the Predict page reads them), or fewer than two groups."""
    raw = pd.Series(np.asarray(labels, dtype=object))
    raw = raw.map(lambda v: None if isinstance(v, str) and not v.strip() else v)
    present = raw.notna()
    numeric = pd.to_numeric(raw[present], errors="coerce")
    if numeric.notna().all() and numeric.nunique() > MAX_NUMBER_CLASSES:
        return NotGroups(f"it holds numbers with {numeric.nunique()} different values, not groups (at most "
                         f"{MAX_NUMBER_CLASSES} different numbers are read as groups).")
    names = raw.where(present, None).map(lambda v: "" if v is None else str(v))
    sizes = names[present].value_counts()
    kept = sizes[sizes >= MIN_GROUP_SIZE]
    if len(kept) < 2:
        return NotGroups(f"it has {len(kept)} group{'' if len(kept) == 1 else 's'} with at least "
                         f"{MIN_GROUP_SIZE} samples; comparing groups needs at least two.")
    return names.where(names.isin(kept.index), "").to_numpy(dtype=str)


def group_separation(embedding: np.ndarray, baseline: ExpressionBaseline,
                     labels: Sequence[object] | pd.Series) -> GroupSeparation | NotGroups:
    """Silhouette of the groups of ``labels`` (one per sample; see :func:`group_labels`) in the
    sample embeddings ``[n_samples, d]`` and in ``baseline`` (:func:`expression_baseline` of the
    same samples, fitted on all of them), and the verdict; or why the labels make no groups."""
    from sklearn.metrics import silhouette_score

    groups = group_labels(labels)
    if isinstance(groups, NotGroups):
        return groups
    emb = np.asarray(embedding, dtype=np.float64)
    if not (emb.shape[0] == baseline.scores.shape[0] == len(groups)):
        raise ValueError(f"{emb.shape[0]} embeddings, {baseline.scores.shape[0]} baseline rows and "
                         f"{len(groups)} labels: one of each per sample is needed.")
    used = groups != ""
    sd = emb.std(axis=0)
    scaled = (emb - emb.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    model = float(silhouette_score(scaled[used], groups[used]))
    expression = float(silhouette_score(baseline.scores[used], groups[used]))
    kind, verdict = separation_verdict(model, expression)
    sizes = pd.Series(groups[used]).value_counts()
    if sizes.min() < SMALL_GROUP:
        verdict += (f" Rough: the smallest group has {sizes.min()} samples (under {SMALL_GROUP}), so a few "
                    "samples move these numbers a lot.")
    return GroupSeparation(model, expression, len(sizes), int(used.sum()), int((~used).sum()),
                           int(sizes.min()), kind, verdict)


TONES: dict[str, Tone] = {"model better": "good", "about the same": "neutral", "expression better": "bad",
                          "overlap": "neutral"}
"""How each kind of separation verdict reads for the model: good, neutral or bad news."""


def separation_verdict(model: float, expression: float) -> tuple[Kind, str]:
    """The comparison of the two silhouettes in words, with the thresholds it used."""
    if max(model, expression) < OVERLAP:
        return "overlap", (f"The groups overlap in both on this map's measure: neither the model's embeddings "
                           f"nor a PCA of the expression forms separate clusters of them (both silhouettes below "
                           f"{OVERLAP}). That is not the same as unpredictable: a column can follow from the samples "
                           "without forming clusters — the Predict page tests that.")
    if model - expression > MARGIN:
        kind: Kind = "model better"
        words = "better than"
    elif expression - model > MARGIN:
        kind, words = "expression better", "less well than"
    else:
        kind, words = "about the same", "about as well as"
    return kind, (f"The model's embeddings separate these groups {words} a PCA of the expression itself "
                  f"({model:.2f} vs {expression:.2f}; a difference under {MARGIN} counts as about the same).")
