"""How much work an evaluation is, counted in model fits, and how long it takes at a pace
measured on this machine.

The phases of :func:`~bulkformer.analysis.predict.evaluate` are very unequal: an outer fold of
one feature set is a grid search (settings × inner folds fits, then one refit), a label shuffle
is one plain fit per outer fold and feature set, and each final model is one more grid search.
Counting fits, not phases, lets a pace measured on the first folds speak for the rest; the same
count feeds the progress bar and the estimate shown before a run (one home for that fact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bulkformer.analysis.predict.models import (
    FEATURE_SETS,
    CVPlan,
    plan_cv,
    search_space,
    strata,
)
from bulkformer.analysis.predict.targets import Kind, Target

LOAD_FACTOR = 1.5
"""How much faster or slower a run may go than one measured before on the same server: in the walk
of issue #26 the same evaluation (85–90 samples) took 1.5 and 2.3 minutes on one shared server,
a 1.5-fold spread between runs. Time ranges are never narrower than that."""


@dataclass(frozen=True)
class EvaluationWork:
    """The model fits one evaluation makes, phase by phase.

    ``fold_fits[i][j]``: fits of outer fold ``i``, feature set ``FEATURE_SETS[j]`` (settings ×
    inner folds, plus the refit with the chosen settings); ``final_fits[j]``: the same for the
    model fitted on all labelled samples; each of the ``n_permutations`` shuffles fits every
    outer fold of every feature set once, with fixed settings.
    """

    kind: Kind
    folds_per_repeat: int
    n_repeats: int
    inner_folds: int
    settings: tuple[int, ...]
    fold_fits: tuple[tuple[int, ...], ...]
    final_fits: tuple[int, ...]
    n_permutations: int

    @property
    def n_folds(self) -> int:
        return len(self.fold_fits)

    @property
    def tuned_fits(self) -> int:
        """Fits of the grid searches: the nested cross-validation and the final models."""
        return sum(map(sum, self.fold_fits)) + sum(self.final_fits)

    @property
    def permutation_fits(self) -> int:
        return self.n_permutations * self.n_folds * len(FEATURE_SETS)

    @property
    def total(self) -> int:
        return self.tuned_fits + self.permutation_fits

    def words(self) -> str:
        """What the evaluation includes, for people: "5 folds × 3 feature sets, each tuned over
        4 to 20 settings with 3 inner folds, then 99 label shuffles …: 2,295 model fits in all"."""
        folds = f"{self.n_folds} folds"
        if self.n_repeats > 1:
            folds += f" ({self.folds_per_repeat}-fold, repeated {self.n_repeats} times)"
        low, high = min(self.settings), max(self.settings)
        settings = f"{low}" if low == high else f"{low} to {high}"
        shuffles = (f", then {self.n_permutations:,} label shuffles refitting every fold"
                    if self.n_permutations else "")
        return (f"{folds} × {len(FEATURE_SETS)} feature sets, each tuned over {settings} settings with "
                f"{self.inner_folds} inner folds{shuffles}, and {len(FEATURE_SETS)} final models: "
                f"{self.total:,} model fits in all.")


def planned_work(target: Target, *, n_permutations: int, n_expression: int, n_embedding: int, seed: int = 0,
                 plan: CVPlan | None = None) -> EvaluationWork:
    """The fits :func:`~bulkformer.analysis.predict.evaluate` makes on ``target`` (exactly: the
    same folds and grids, from :func:`~bulkformer.analysis.predict.models.search_space`).

    ``n_expression``: the measured genes. The expression is first rotated into at most one column
    per sample (:func:`~bulkformer.analysis.predict.models.sample_space`), so it is capped at the
    number of samples; exact unless samples repeat one another (then PCA sizes may be fewer).
    """
    plan = plan or plan_cv(target, seed=seed)
    width = max(1, min(int(n_expression), len(target.sample_ids)))
    groups = strata(target)

    def fits(rows_strata: np.ndarray, features: str, inner_seed: int) -> tuple[int, int, int]:
        """(fits, settings, inner folds) of one grid search: every setting on every inner fold, then the refit."""
        cv, grid = search_space(target.kind, features, rows_strata, inner_folds=plan.inner_folds,
                                n_expression=width, seed=inner_seed)
        settings = math.prod(len(v) for v in grid.values())
        return settings * len(cv) + 1, settings, len(cv)

    folds = [[fits(strata(target, train), f, seed + i) for f in FEATURE_SETS] for i, (train, _) in
             enumerate(plan.splits)]
    finals = [fits(groups, f, seed) for f in FEATURE_SETS]
    searches = [s for fold in folds for s in fold] + finals
    n_repeats = max(plan.repeats) + 1
    return EvaluationWork(
        kind=target.kind, folds_per_repeat=len(plan.splits) // n_repeats, n_repeats=n_repeats,
        inner_folds=max(s[2] for s in searches),
        settings=tuple(max(s[1] for s in searches[j::len(FEATURE_SETS)]) for j in range(len(FEATURE_SETS))),
        fold_fits=tuple(tuple(s[0] for s in fold) for fold in folds),
        final_fits=tuple(s[0] for s in finals), n_permutations=int(n_permutations))


@dataclass(frozen=True)
class FitPace:
    """Seconds per model fit measured in one evaluation, by kind of fit.

    A tuned fit (grid search: PCA and scaling fitted with the model) may cost more than a
    shuffle's fit (the fold's PCA is reused, only the model is refitted): about the same for the
    demo's 6 tissues (22 vs 20 ms, measured on a loaded 2-core machine), but 9 vs 1 ms for a
    number on 200 simulated samples (ridge regression is quick, the PCA is not). So the two are
    measured apart, and a run with more shuffles is not priced at the tuned fits' pace. The time
    outside the fits (reading the data, writing up) counts in the phase it happens in.
    """

    kind: Kind
    tuned: float
    shuffled: float

    @classmethod
    def measured(cls, work: EvaluationWork, *, tuned_seconds: float, shuffle_seconds: float) -> FitPace:
        """The pace of a run that did ``work`` in ``tuned_seconds`` (nested CV and final models)
        and ``shuffle_seconds`` (the permutation test); without shuffles, they go at the tuned pace."""
        tuned = tuned_seconds / max(1, work.tuned_fits)
        shuffled = shuffle_seconds / work.permutation_fits if work.permutation_fits else tuned
        return cls(work.kind, tuned, shuffled)

    def seconds(self, work: EvaluationWork) -> float:
        """How long ``work`` takes at this pace."""
        return self.tuned * work.tuned_fits + self.shuffled * work.permutation_fits


def time_range(work: EvaluationWork, paces: Sequence[FitPace]) -> tuple[float, float] | None:
    """(shortest, longest) plausible seconds for ``work`` at the paces measured before on the same
    table (those of another kind of task are left out: a ridge fit is far quicker than a logistic
    one); ``None`` without one.

    The range spans the estimates of every pace, and is at least the median estimate divided and
    multiplied by :data:`LOAD_FACTOR` (the spread between runs measured on a shared server): one
    measurement says nothing of how much the next run may differ.
    """
    estimates = [p.seconds(work) for p in paces if p.kind == work.kind]
    if not estimates:
        return None
    middle = float(np.median(estimates))
    return min(min(estimates), middle / LOAD_FACTOR), max(max(estimates), middle * LOAD_FACTOR)
