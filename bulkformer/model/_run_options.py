"""``RunOptions``: what one inference run computes and how, as one frozen value.

:meth:`BulkFormerModel.run <bulkformer.model._bulkformer_model.BulkFormerModel.run>`, ``iter_batches``,
:func:`bulkformer.model._inference.iter_forward`, the workflows in :mod:`bulkformer.workflows`, the app and
the CLI all pass this one object instead of a dozen keyword arguments, so a new option is one
field here. Its :meth:`~RunOptions.key` names the run's numbers in result-cache keys. No torch
is imported here: the app's pages build options cheaply.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bulkformer.choices import (
    AGGREGATION,
    COMPILE,
    PRECISION,
    Aggregate,
    Compile,
    Precision,
)
from bulkformer.errors import BulkFormerError

#: Fields that decide only how fast a run goes, not its numbers: left out of :meth:`RunOptions.key`.
_SPEED_ONLY = ("batch_size", "compile")


@dataclass(frozen=True)
class RunOptions:
    """One run's choices; every field is checked when the options are made.

    Frozen: a run's options are one value, passed from the app or the CLI through the
    workflows to inference, and named in result-cache keys (:meth:`key`).

    Parameters
    ----------
    embed
        Pool the per-gene embeddings into one vector per sample (sample embeddings).
    impute
        Predict log1p TPM for every model gene (the expression head).
    aggregate
        How genes are pooled (:data:`bulkformer.choices.AGGREGATION`): ``"mean"``, ``"max"``,
        ``"median"`` or ``"all"`` (max + mean + median, as upstream defines it).
    aggregate_genes
        Ensembl IDs (model genes) pooled into the sample embedding; ``None``: all genes.
    gene_embedding_genes
        Ensembl IDs whose per-gene embeddings are returned; ``None``: none.
    with_esm2
        Append each returned gene's ESM2 protein embedding (gene embeddings only).
    batch_size
        Samples per forward pass; ``None`` chooses one from free memory (a batch that runs out
        of memory is retried at half the size either way).
    precision
        ``"auto"`` (fp16 on a GPU; on a CPU bf16 where it runs natively, else fp32), ``"fp32"``,
        ``"bf16"`` or ``"fp16"`` (:data:`bulkformer.choices.PRECISION`).
    compile
        ``"auto"`` (``torch.compile`` the Performer layers when the run is long enough to repay
        the one-off compile), ``"on"`` or ``"off"``.

    Raises
    ------
    bulkformer.BulkFormerError
        A choice outside its list, or a batch size that is not a positive whole number.

    Examples
    --------
    >>> from bulkformer import RunOptions
    >>> options = RunOptions(aggregate="max", precision="fp32")
    >>> options.embed, options.aggregate
    (True, 'max')
    >>> RunOptions(aggregate="sum")
    Traceback (most recent call last):
    ...
    bulkformer.errors.BulkFormerError: Unknown aggregation 'sum'.
    → Use one of mean, max, median, all.
    """

    embed: bool = True
    impute: bool = True
    aggregate: Aggregate = "mean"
    aggregate_genes: tuple[str, ...] | None = None
    gene_embedding_genes: tuple[str, ...] | None = None
    with_esm2: bool = False
    batch_size: int | None = None
    precision: Precision = "auto"
    compile: Compile = "auto"

    def __post_init__(self) -> None:
        for name in ("embed", "impute", "with_esm2"):
            if not isinstance(getattr(self, name), bool):
                raise BulkFormerError(f"The run option {name} must be True or False, not {getattr(self, name)!r}.")
        AGGREGATION.check(self.aggregate)
        PRECISION.check(self.precision)
        COMPILE.check(self.compile)
        object.__setattr__(self, "batch_size", _batch_size(self.batch_size))
        for name in ("aggregate_genes", "gene_embedding_genes"):
            object.__setattr__(self, name, _gene_tuple(getattr(self, name), name))

    @classmethod
    def build(cls, options: RunOptions | None = None, **overrides: Any) -> RunOptions:
        """``options`` (default: all defaults) with ``overrides`` replacing fields by name: the
        keyword convenience of ``model.run(values, ids, embed=False)``."""
        base = cls() if options is None else options
        return dataclasses.replace(base, **overrides) if overrides else base

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-able (gene tuples as lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def key(self) -> dict[str, Any]:
        """The fields that decide a run's numbers, JSON-able, for result-cache keys: batch size and
        compiling change only the speed (and the last digits), so equal keys share a result."""
        return {name: value for name, value in self.as_dict().items() if name not in _SPEED_ONLY}


def _batch_size(value: object) -> int | None:
    """``None`` or a positive whole number (numpy integers accepted, ``True`` is not a size)."""
    if value is None:
        return None
    try:
        size = operator.index(value) if not isinstance(value, bool) else 0
    except TypeError:
        size = 0
    if size < 1:
        raise BulkFormerError(f"The batch size must be a whole number of at least 1, not {value!r}.",
                              hint="Leave it out (None) to choose one from the free memory.")
    return int(size)


def _gene_tuple(value: object, name: str) -> tuple[str, ...] | None:
    """A gene list as a tuple of strings (``None`` stays ``None``). One string is refused (it would
    be read letter by letter), and so is a set (its order, the order of the outputs, is arbitrary)."""
    if value is None:
        return None
    if isinstance(value, str | bytes | set | frozenset | Mapping) or not isinstance(value, Iterable):
        raise BulkFormerError(f"The run option {name} must be a list of Ensembl gene IDs, not {value!r:.60}.",
                              hint="Give a list or tuple of IDs, or None.")
    return tuple(str(g) for g in value)


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
