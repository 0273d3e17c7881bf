"""A table's gene labels → Ensembl IDs without version: Ensembl IDs (± version, former ones),
symbols and aliases, NCBI (Entrez) IDs; other species and wrong kinds of ID refused with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer.choices import ID_TYPE
from bulkformer.errors import InputError
from bulkformer.genes._annotation import (
    _HUMAN_ENSEMBL,
    _OTHER_ENSEMBL,
    GeneAnnotation,
    load_annotation,
)
from bulkformer.io import Guess

ID_TYPES = ID_TYPE.names

_SPECIES = {
    "MUS": "mouse", "RNO": "rat", "DAR": "zebrafish", "GAL": "chicken", "SSC": "pig",
    "BTA": "cattle", "MMU": "rhesus macaque", "MFA": "crab-eating macaque", "CAF": "dog",
    "PTR": "chimpanzee", "XET": "Xenopus", "OAR": "sheep", "ECA": "horse", "OCU": "rabbit",
    "CJA": "marmoset", "FCA": "cat", "CPO": "guinea pig", "MOD": "opossum", "ORL": "medaka",
}
_OTHER_DATABASES = (  # non-human gene IDs outside Ensembl, and what they are
    (re.compile(r"^FBgn\d{7}$"), "Drosophila (FlyBase) gene IDs"),
    (re.compile(r"^WBGene\d{8}$"), "C. elegans (WormBase) gene IDs"),
    (re.compile(r"^Y[A-P][LR]\d{3}[WC](-[A-Z])?$"), "yeast ORF names"),
)
_WRONG_KINDS = (  # human IDs of the wrong kind, and what to do about them
    (re.compile(r"^ENST\d{11}"), "Ensembl transcript IDs (ENST…)",
     "Sum transcripts to genes first (for example tximport, or salmon's quant.genes.sf)."),
    (re.compile(r"^ENSP\d{11}"), "Ensembl protein IDs (ENSP…)", "Use gene-level RNA-seq values."),
    (re.compile(r"^[NX][MR]_\d+"), "RefSeq transcript IDs (NM_/NR_…)",
     "Sum transcripts to genes, or export the table with gene symbols or Ensembl gene IDs."),
    (re.compile(r"^\d+$"), "numbers, perhaps NCBI Entrez gene IDs",
     ("If they are NCBI (Entrez) gene IDs, choose those as the kind of gene name (Upload page, "
      "or id_type='entrez'); numbers running 1, 2, 3, … are row numbers, not genes.")),
    (re.compile(r"^(\d+(_[a-z]+)?_at|ILMN_\d+|A_\d+_P\d+)$"), "microarray probe IDs",
     "BulkFormer models RNA-seq: use gene-level RNA-seq values, not array probes."),
)
#: Mouse/rat style symbols: capital then lower case ("Actb", "Gapdh", "Trp53"), or RIKEN names.
_TITLE_CASE = r"[A-Z][a-z][a-z0-9]*(?:-[a-z0-9]+)*|\d{7}[A-Z]\d{2}Rik"


@dataclass(frozen=True, eq=False)
class GeneMapping:
    """Per gene label of the table, its Ensembl ID without version (``None``: unmapped)."""

    labels: tuple[str, ...]
    ensg_ids: tuple[str | None, ...]
    id_type: Guess
    #: Labels that are former (GRCh37-era) Ensembl IDs, mapped to their current genes.
    n_former_ids: int = 0

    @property
    def n_mapped(self) -> int:
        return len(self.ensg_ids) - self.ensg_ids.count(None)

    @property
    def unmapped_labels(self) -> tuple[str, ...]:
        return tuple(label for label, x in zip(self.labels, self.ensg_ids) if x is None)


def map_genes(labels: Sequence[str], *, annotation: GeneAnnotation | None = None,
              id_type: str = "auto") -> GeneMapping:
    """Map gene labels to Ensembl IDs.

    Ensembl IDs keep their gene part (version and ``_PAR_Y`` dropped, also when embedded as
    in ``ENSG00000141510.17|TP53``); other labels are looked up as symbols, then previous
    symbols and aliases, ignoring case. ``id_type`` ``ensembl``/``symbol`` restricts to one
    kind (``symbol`` also skips the mouse-symbol check). Raises
    :class:`~bulkformer.errors.InputError` for other species or when nothing maps.
    """
    ID_TYPE.check(id_type, error=InputError)
    annotation = annotation or load_annotation()
    text = _as_categories(labels)
    if id_type == "entrez":
        return _map_entrez(labels, text, annotation, chosen=True)
    ensembl = text.str.extract(_HUMAN_ENSEMBL, expand=False) if id_type != "symbol" \
        else pd.Series(np.nan, index=text.index, dtype=object)
    is_ensembl = ensembl.notna()
    current = ensembl.map(annotation.former_ids)  # a former ID → the gene it is now
    n_former = int(current.notna().sum())
    ensembl = current.where(current.notna(), ensembl)
    if id_type == "auto":
        _refuse_other_species(text, n_human=int(is_ensembl.sum()))
    by_symbol = pd.Series(np.nan, index=text.index, dtype=object)
    if id_type != "ensembl":
        unique = pd.Series(text.cat.categories, dtype=object)
        keys = unique.str.upper().str.split("|", n=1).str[0].str.strip()
        found = keys.map(annotation.symbol_index).to_numpy(dtype=object)[text.cat.codes.to_numpy()]
        by_symbol[~is_ensembl] = found[~is_ensembl.to_numpy()]
        if id_type == "auto":
            _refuse_mouse_symbols(text[by_symbol.notna()])
    ensg = ensembl.where(is_ensembl, by_symbol)
    n_ensembl, n_symbol = int(is_ensembl.sum()), int(by_symbol.notna().sum())
    if n_ensembl + n_symbol == 0:
        if id_type == "auto" and _are_entrez_ids(text, annotation):
            return _map_entrez(labels, text, annotation, chosen=False)
        raise _nothing_recognised(text, id_type)
    versioned = int(text[is_ensembl].str.contains(r"ENSG\d{11}\.\d").sum())
    parts = []
    if n_ensembl:
        details = ([f"{versioned} with a version suffix"] if versioned else []) \
            + ([f"{n_former} former IDs, matched to current genes"] if n_former else [])
        parts.append(f"{n_ensembl} Ensembl gene IDs" + (f" ({'; '.join(details)})" if details else ""))
    if n_symbol:
        parts.append(f"{n_symbol} gene symbols or aliases")
    kind = "ensembl" if not n_symbol else "symbol" if not n_ensembl else "mixed"
    reason = ("chosen by you; " if id_type != "auto" else "") + " and ".join(parts) \
        + f" among {len(text)} labels"
    return GeneMapping(tuple(map(str, labels)), tuple(ensg.astype(object).where(ensg.notna(), None)),
                       Guess(kind, reason), n_former)


def _are_entrez_ids(text: pd.Series, annotation: GeneAnnotation) -> bool:
    """Whole numbers, most of them NCBI gene IDs, and not row numbers: 1, 2, 3, … (NCBI's own
    IDs are dense at the low end too, but only about half of them follow one another)."""
    whole = text.str.fullmatch(r"\d{1,12}").astype(bool)  # NCBI gene IDs have at most 9 digits
    if not len(text) or whole.mean() < 0.9:
        return False
    numbers = np.unique(text[whole].astype(str).astype(np.int64))
    if len(numbers) > 1 and (np.diff(numbers) == 1).mean() > 0.9:
        return False
    return bool(text[whole].astype(str).isin(annotation.entrez_ids.index).mean() >= 0.5)


def _map_entrez(labels: Sequence[str], text: pd.Series, annotation: GeneAnnotation, *,
                chosen: bool) -> GeneMapping:
    """Labels read as NCBI (Entrez) gene IDs (TCGA, many R workflows)."""
    found = text.astype(str).map(annotation.entrez_ids)
    n_found = int(found.notna().sum())
    if n_found == 0:
        raise InputError(f"None of the gene labels is an NCBI (Entrez) gene ID known here (e.g. "
                         f"{', '.join(repr(x) for x in text[:5])}).",
                         hint="Choose another kind of gene name on the Upload page (or --id-type).")
    reason = ("chosen by you; " if chosen else "") + f"{n_found} NCBI (Entrez) gene IDs among {len(text)} labels"
    return GeneMapping(tuple(map(str, labels)), tuple(found.astype(object).where(found.notna(), None)),
                       Guess("entrez", reason))


def _as_categories(labels: Sequence[str]) -> pd.Series:
    """Labels as text without surrounding spaces, as a categorical Series: pandas applies string
    methods to each distinct label once (a table of millions of rows repeats most of them)."""
    codes, unique = pd.factorize(pd.Series(labels, dtype=object), use_na_sentinel=False)
    stripped = pd.Index([str(x).strip() for x in unique], dtype=object)
    merged, categories = pd.factorize(stripped)
    return pd.Series(pd.Categorical.from_codes(merged[codes], categories=categories))


def _refuse_other_species(text: pd.Series, *, n_human: int) -> None:
    codes = text.str.extract(_OTHER_ENSEMBL, expand=False).dropna()
    if len(codes) > n_human and len(codes) >= len(text) / 2:
        code = codes.value_counts().index[0]
        species = _SPECIES.get(code, f"a non-human species (Ensembl prefix ENS{code})")
        raise InputError(
            f"The gene IDs are from {species}, not human (e.g. {', '.join(text[codes.index[:3]])}).",
            hint="BulkFormer is a model of human RNA-seq; map the genes to human orthologues "
                 "first, or use human data.")
    for pattern, what in _OTHER_DATABASES:
        if text.str.match(pattern).mean() >= 0.5:
            raise InputError(f"The gene IDs look like {what}, not human genes "
                             f"(e.g. {', '.join(text[:3])}).",
                             hint="BulkFormer is a model of human RNA-seq.")


def _refuse_mouse_symbols(matched: pd.Series) -> None:
    """Mouse/rat symbols are Title-case ("Actb"); upper-casing would wrongly map them to the
    human genes, so a table whose matched symbols are mostly Title-case is refused."""
    title = int(matched.str.fullmatch(_TITLE_CASE).sum())
    upper = int((matched == matched.str.upper()).sum())
    if title and title > upper:
        examples = ", ".join(matched[matched.str.fullmatch(_TITLE_CASE)][:3])
        raise InputError(
            f"The gene symbols look like mouse or rat symbols (e.g. {examples}): {title} of "
            f"{len(matched)} are written like 'Actb' rather than 'ACTB'.",
            hint="BulkFormer is a model of human RNA-seq; use human data, or map the genes to "
                 "human orthologues. If these really are human genes, set the gene ID type to "
                 "'symbol'.")


def _nothing_recognised(text: pd.Series, id_type: str) -> InputError:
    found = ", ".join(repr(x) for x in text[:5])
    for pattern, what, hint in _WRONG_KINDS:
        if text.str.match(pattern).mean() >= 0.5:
            return InputError(f"No human gene IDs found: the labels are {what} (e.g. {found}).",
                              hint=hint)
    restricted = "" if id_type == "auto" else f" (looking only for {id_type} IDs)"
    return InputError(
        f"No recognisable human gene IDs found{restricted}; the gene labels are e.g. {found}.",
        hint="Expected Ensembl gene IDs such as ENSG00000141510 (a version suffix like .17 is "
             "fine) or HGNC symbols such as TP53, in the first column or in the header. "
             "Check the orientation if genes and samples are swapped.")
