"""The prediction task: which column, which kind (classes, numbers, survival), which samples are
labelled, and the refusals of a task that cannot be evaluated honestly."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from bulkformer.errors import InputError

Kind = Literal["classification", "regression", "survival"]
KINDS: tuple[Kind, ...] = ("classification", "regression", "survival")
MIN_PER_CLASS = 3
"""Fewest samples of a class (or events, for survival) that cross-validation can use."""
MIN_LABELLED = 10
"""Fewest labelled samples to train and test a model at all."""
MAX_NUMBER_CLASSES = 10
"""A numeric column with at most this many distinct values is read as categories (e.g. 0/1, stage 1–4)."""
_EVENT_WORDS = {
    True: {"1", "true", "yes", "y", "dead", "deceased", "died", "death", "event", "relapse", "progressed"},
    False: {"0", "false", "no", "n", "alive", "living", "censored", "none"},
}


@dataclass(frozen=True, eq=False)
class Target:
    """What to predict, for every sample of the table (rows in ``sample_ids`` order).

    ``labelled``: bool ``[n_samples]``; ``values``: ``[n_labelled]`` class names (str),
    numbers, or survival times; ``events``: bool ``[n_labelled]`` for survival, else ``None``.
    """

    kind: Kind
    column: str
    event_column: str | None
    sample_ids: tuple[str, ...]
    labelled: np.ndarray
    values: np.ndarray
    events: np.ndarray | None
    classes: tuple[str, ...]
    reason: str

    @property
    def n_labelled(self) -> int:
        return int(self.labelled.sum())

    @property
    def name(self) -> str:
        return f"{self.column} + {self.event_column}" if self.event_column else self.column

    def y(self) -> np.ndarray:
        """The labels as scikit-learn (or scikit-survival) estimators take them."""
        if self.kind == "survival":
            from sksurv.util import Surv

            return Surv.from_arrays(event=self.events, time=self.values)
        return self.values


def make_target(
    metadata: pd.DataFrame | None,
    column: str,
    *,
    event_column: str | None = None,
    kind: Literal["auto", "classification", "regression"] = "auto",
) -> Target:
    """The prediction task for ``column`` of a sample sheet (indexed by sample ID, one row per
    table sample, as :class:`~bulkformer.inputs._pipeline.PreparedInput` holds it).

    With ``event_column`` the task is survival (``column`` the time). Otherwise a numeric column
    with more than :data:`MAX_NUMBER_CLASSES` distinct values is a regression, anything else a
    classification (``kind`` overrides). Raises :class:`InputError` for a task that cannot be
    evaluated honestly: too few labelled samples, a constant column, a rare class.
    """
    sheet = _checked_sheet(metadata, column, event_column)
    ids = tuple(str(s) for s in sheet.index)
    raw = _blank_to_missing(sheet[column])
    if event_column is not None:
        return _survival_target(raw, _blank_to_missing(sheet[event_column]), column, event_column, ids)
    numeric = pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw)
    labelled = raw.notna().to_numpy()
    chosen, reason = _choose_kind(raw, column, kind=kind, numeric=numeric)
    _check_count(int(labelled.sum()), column)
    if chosen == "regression":
        values = raw[labelled].to_numpy(dtype=np.float64)
        if np.ptp(values) == 0:
            _refuse_constant(column, values[0])
        return Target("regression", column, None, ids, labelled, values, None, (), reason)
    return _classification_target(raw, labelled, column, ids, reason=reason, numeric=numeric)


def _checked_sheet(metadata: pd.DataFrame | None, column: str, event_column: str | None) -> pd.DataFrame:
    """``metadata``, after checking that it is a sample sheet with ``column`` (and ``event_column``)."""
    if metadata is None or metadata.shape[1] == 0:
        raise InputError("There is no sample sheet, so there is nothing to predict.",
                         hint="Add a sample sheet with a column of labels (e.g. tissue or disease).")
    for name in (column, event_column):
        if name is not None and name not in metadata.columns:
            raise InputError(f"The sample sheet has no column {name!r}.",
                             hint=f"Choose one of: {', '.join(map(str, metadata.columns))}.")
    return metadata


def _choose_kind(raw: pd.Series, column: str, *, kind: str, numeric: bool) -> tuple[Kind, str]:
    """(classification or regression, why): ``auto`` by the column's values, else as asked,
    refusing a regression of a column without numbers."""
    if kind == "auto":
        if numeric and raw.nunique(dropna=True) > MAX_NUMBER_CLASSES:
            return "regression", f"numbers with {raw.nunique()} distinct values → regression"
        return "classification", f"{'few distinct numbers' if numeric else 'categories'} → classification"
    if kind == "regression":
        if not numeric:
            raise InputError(f"The column {column!r} does not hold numbers, so it cannot be a regression target.",
                             hint="Predict it as categories (classification) instead.")
        return "regression", "regression (chosen by you)"
    if kind == "classification":
        return "classification", "classification (chosen by you)"
    raise InputError(f"Unknown kind of task {kind!r}.", hint="Use auto, classification or regression.")


def _classification_target(raw: pd.Series, labelled: np.ndarray, column: str, ids: tuple[str, ...], *,
                           reason: str, numeric: bool) -> Target:
    """Classes as text, refusing a single class or any class with fewer than
    :data:`MIN_PER_CLASS` samples."""
    values = np.array([_label_text(v) for v in raw[labelled]], dtype=object)
    counts = Counter(values)
    if len(counts) < 2:
        _refuse_constant(column, values[0])
    rare = {c: n for c, n in counts.items() if n < MIN_PER_CLASS}
    if rare:
        listed = ", ".join(f"{c!r} ({n})" for c, n in sorted(rare.items(), key=lambda kv: kv[1])[:8])
        raise InputError(
            f"{len(rare)} class(es) of {column!r} have fewer than {MIN_PER_CLASS} samples: {listed}"
            f"{' …' if len(rare) > 8 else ''}.",
            hint=f"Cross-validation needs at least {MIN_PER_CLASS} samples of every class. Merge rare classes "
                 "into larger ones, or clear their labels in the sample sheet (those samples are then predicted)."
                 + (" A column of numbers with many values can be predicted as a regression instead."
                    if numeric else ""))
    classes = tuple(sorted(counts, key=_natural_key))
    return Target("classification", column, None, ids, labelled, values, None, classes, reason)


def _survival_target(time_raw: pd.Series, event_raw: pd.Series, column: str, event_column: str,
                     ids: tuple[str, ...]) -> Target:
    times = pd.to_numeric(time_raw, errors="coerce")
    bad = time_raw.notna() & times.isna()
    if bad.any() or (times < 0).any():
        example = time_raw[bad].iloc[0] if bad.any() else times[times < 0].iloc[0]
        raise InputError(f"The time column {column!r} must hold non-negative numbers; it has {example!r}.",
                         hint="Give the follow-up time in days, months or years, one number per sample.")
    events = event_raw.map(_event_value)
    unknown = event_raw.notna() & events.isna()
    if unknown.any():
        raise InputError(f"The event column {event_column!r} has values that are neither event nor "
                         f"censored: {', '.join(map(repr, event_raw[unknown].unique()[:5]))}.",
                         hint="Use 1/0, true/false, yes/no or dead/alive (1 = the event happened).")
    labelled = (times.notna() & events.notna()).to_numpy()
    _check_count(int(labelled.sum()), f"{column} and {event_column}")
    event_values = events[labelled].to_numpy(dtype=bool)
    if event_values.sum() < MIN_PER_CLASS:
        raise InputError(f"Only {int(event_values.sum())} labelled samples had the event ({event_column!r}); "
                         f"a survival model needs at least {MIN_PER_CLASS}.",
                         hint="Check which value means 'event' (1, true, dead) or choose another outcome.")
    return Target("survival", column, event_column, ids, labelled, times[labelled].to_numpy(dtype=np.float64),
                  event_values, (), "time + event → survival (penalised Cox model)")


def _blank_to_missing(series: pd.Series) -> pd.Series:
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):  # pandas 3 reads text as str
        return series.map(lambda v: np.nan if isinstance(v, str) and not v.strip() else v)
    return series


def _event_value(value: Any) -> bool | float:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    text = str(value).strip().lower()
    text = text.removesuffix(".0")
    for flag, words in _EVENT_WORDS.items():
        if text in words:
            return flag
    return np.nan


def _check_count(n: int, column: str) -> None:
    if n < MIN_LABELLED:
        raise InputError(f"Only {n} samples have a value in {column!r}; at least {MIN_LABELLED} are needed "
                         "to train and test a model.",
                         hint="Fill in more labels in the sample sheet, or choose another column.")


def _refuse_constant(column: str, value: Any) -> None:
    raise InputError(f"Every labelled sample has the same {column!r} ({value!r}): there is nothing to predict.",
                     hint="Choose a column whose values differ between samples.")


def _label_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _natural_key(text: str) -> tuple[Any, ...]:
    import re

    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))
