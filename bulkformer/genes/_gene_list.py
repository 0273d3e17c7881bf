"""The one rule for gene lists a person types or uploads."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bulkformer.errors import InputError
from bulkformer.genes._annotation import GeneAnnotation
from bulkformer.genes._mapping import map_genes


@dataclass(frozen=True)
class GeneList:
    """A list of genes a person typed or uploaded, resolved against a model's genes.

    ``genes``: the model's Ensembl IDs, in the order given, each once; ``unknown``: names that
    are no known human gene; ``outside``: known genes the model does not have.
    """

    genes: tuple[str, ...]
    unknown: tuple[str, ...]
    outside: tuple[str, ...]


def parse_gene_list(text: str, model_genes: Sequence[str], *,
                    annotation: GeneAnnotation | None = None) -> GeneList:
    """The one rule for gene lists (the app's text boxes, the CLI's ``--genes`` files): names
    separated by lines, commas, semicolons or spaces, ``#`` starting a comment; each an Ensembl
    ID (any version, also a former one), a symbol, a previous symbol or an alias, as
    :func:`map_genes` reads them."""
    tokens = [t for line in text.splitlines() for t in re.split(r"[\s,;]+", line.split("#", 1)[0]) if t]
    if not tokens:
        return GeneList((), (), ())
    try:
        ids: Sequence[str | None] = map_genes(tokens, annotation=annotation).ensg_ids
    except InputError:  # not one recognisable human gene among them
        ids = [None] * len(tokens)
    in_model = set(model_genes)
    unknown = tuple(t for t, g in zip(tokens, ids, strict=True) if g is None)
    outside = tuple(t for t, g in zip(tokens, ids, strict=True) if g is not None and g not in in_model)
    genes = tuple(dict.fromkeys(g for g in ids if g is not None and g in in_model))
    return GeneList(genes, unknown, outside)
