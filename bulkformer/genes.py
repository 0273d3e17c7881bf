"""The shipped human gene annotation, and turning a table's gene labels into Ensembl IDs.

BulkFormer knows genes by Ensembl ID without version. Tables name them in many ways: Ensembl
IDs with or without a version (``ENSG00000141510.17``), GENCODE's ``_PAR_Y`` copies, HGNC
symbols in any case, older symbols and aliases, or a mix. This module resolves all of those,
decides which axis of a table holds the genes, and refuses, with a reason, tables from other
species or with no gene IDs at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from bulkformer import paths
from bulkformer.errors import InputError, check_choice
from bulkformer.io import Guess, RawTable

ANNOTATION_FILE = paths.ANNOTATION_DIR / "human_genes.tsv.gz"
#: Former (GRCh37-era) Ensembl gene IDs and the current gene each became; see the README there.
FORMER_IDS_FILE = paths.ANNOTATION_DIR / "former_ensembl_ids.tsv.gz"
#: NCBI (Entrez) gene IDs and the one current Ensembl gene each is linked to.
ENTREZ_IDS_FILE = paths.ANNOTATION_DIR / "entrez_ids.tsv.gz"
ANNOTATION_COLUMNS = ("ensg_id", "symbol", "biotype", "length", "aliases")

ORIENTATIONS = ("auto", "genes_in_rows", "genes_in_columns")
ID_TYPES = ("auto", "ensembl", "symbol", "entrez")

_HUMAN_ENSEMBL = r"(?<![A-Za-z0-9])(ENSG\d{11})(?!\d)"
_OTHER_ENSEMBL = re.compile(r"^ENS([A-Z]{3})[GT]\d{11}")
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
_LABEL_SAMPLE = 5000  # labels looked at to decide which axis holds genes


@dataclass(frozen=True, eq=False)
class GeneAnnotation:
    """The human gene annotation: one row per Ensembl gene (``ensg_id`` without version),
    with ``symbol``, ``biotype``, ``length`` (bp, NA where unknown) and ``aliases``
    (``|``-joined previous symbols and synonyms); ``former_ids`` maps former Ensembl gene IDs
    (none of them a current one) to current ones, ``entrez_ids`` NCBI gene IDs (as text) to
    Ensembl IDs. See ``assets/annotation/README.md``."""

    table: pd.DataFrame
    former_ids: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    entrez_ids: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))

    def __post_init__(self) -> None:
        missing = set(ANNOTATION_COLUMNS) - set(self.table.columns)
        if missing:
            raise ValueError(f"annotation table lacks columns {sorted(missing)}")

    @cached_property
    def _by_id(self) -> pd.DataFrame:
        return self.table.set_index("ensg_id")

    @cached_property
    def symbol_index(self) -> pd.Series:
        """Upper-case symbol or alias → Ensembl ID. Current symbols win over aliases; a symbol
        shared by several genes goes to the protein-coding one, then the lowest ID."""
        genes = self.table.assign(
            key=self.table["symbol"].str.upper(),
            coding=self.table["biotype"] != "protein_coding",
        ).sort_values(["coding", "ensg_id"])
        current = genes.drop_duplicates("key").set_index("key")["ensg_id"]
        aliases = genes[["ensg_id", "aliases"]].assign(
            key=genes["aliases"].str.upper().str.split("|")).explode("key")
        aliases = aliases[(aliases["key"] != "") & aliases["key"].notna()
                          & ~aliases["key"].isin(current.index)]
        aliases = aliases.drop_duplicates("key", keep=False).set_index("key")["ensg_id"]
        return pd.concat([current[current.index != ""], aliases])

    @cached_property
    def _current_symbols(self) -> pd.Index:
        return pd.Index(self.table["symbol"].str.upper().unique())

    def protein_coding_ids(self) -> tuple[str, ...]:
        """Ensembl IDs of the protein-coding genes, sorted (the demo model's gene order)."""
        coding = self.table.loc[self.table["biotype"] == "protein_coding", "ensg_id"]
        return tuple(sorted(coding))

    def symbols_of(self, ensg_ids: Sequence[str]) -> dict[str, str]:
        """Ensembl ID → symbol for many genes (IDs without a known symbol are left out)."""
        lookup = self.table.drop_duplicates("ensg_id").set_index("ensg_id")["symbol"]
        found = lookup.reindex(pd.Index(list(ensg_ids), dtype=object))
        return {g: str(sym) for g, sym in found.items() if isinstance(sym, str) and sym}

    def symbol_of(self, ensg_id: str) -> str | None:
        """The gene's symbol (version suffix ignored), or ``None`` if the gene is unknown."""
        row = self._row(ensg_id)
        return None if row is None or not row["symbol"] else str(row["symbol"])

    def length_of(self, ensg_id: str) -> float | None:
        """The gene's length in bp (version suffix ignored), or ``None`` where unknown."""
        row = self._row(ensg_id)
        return None if row is None or pd.isna(row["length"]) else float(row["length"])

    def ensg_of(self, symbol: str) -> str | None:
        """Ensembl ID for a symbol, previous symbol or alias (any case), or ``None``."""
        found = self.symbol_index.get(symbol.strip().upper())
        return None if found is None else str(found)

    def lengths_bp(self, ensg_ids: Sequence[str | None]) -> np.ndarray:
        """Lengths (bp, float64) for many genes at once; NaN where unknown or ``None``."""
        lengths = self._by_id["length"].astype("Float64")
        found = pd.Series(list(ensg_ids), dtype=object).map(lengths)
        return pd.to_numeric(found, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def gene_like_fraction(self, labels: Sequence[str]) -> float:
        """Share of ``labels`` that look like gene IDs of any species (Ensembl IDs or current
        human symbols; aliases left out, since some read like sample names); used to find
        the gene axis of a table."""
        if not len(labels):
            return 0.0
        step = max(1, len(labels) // _LABEL_SAMPLE)
        sample = pd.Series([str(x).strip() for x in labels[::step]], dtype=object)
        ensembl = (sample.str.extract(_HUMAN_ENSEMBL, expand=False).notna()
                   | sample.str.extract(_OTHER_ENSEMBL, expand=False).notna())
        symbol = sample.str.upper().isin(self._current_symbols)
        return float((ensembl | symbol).mean())

    def _row(self, ensg_id: str) -> pd.Series | None:
        match = re.search(_HUMAN_ENSEMBL, ensg_id)
        if match is None or match.group(1) not in self._by_id.index:
            return None
        return self._by_id.loc[match.group(1)]


@functools.cache
def load_annotation(path: Path | None = None) -> GeneAnnotation:
    """The shipped annotation (or another table with the same columns), read once."""
    table = pd.read_csv(
        ANNOTATION_FILE if path is None else path, sep="\t", keep_default_na=False,
        na_values={"length": [""]},
        dtype={"ensg_id": str, "symbol": str, "biotype": str, "aliases": str, "length": "Int64"})
    if path is not None or not FORMER_IDS_FILE.is_file() or not ENTREZ_IDS_FILE.is_file():
        return GeneAnnotation(table)
    former = pd.read_csv(FORMER_IDS_FILE, sep="\t", dtype=str).set_index("former_id")["ensg_id"]
    entrez = pd.read_csv(ENTREZ_IDS_FILE, sep="\t", dtype=str).set_index("entrez")["ensg_id"]
    return GeneAnnotation(table, former, entrez)


def protein_coding_ids() -> tuple[str, ...]:
    """The shipped annotation's protein-coding Ensembl IDs, sorted."""
    return load_annotation().protein_coding_ids()


# --------------------------------------------------------------------------- orientation


@dataclass(frozen=True, eq=False)
class OrientedTable:
    """A table turned so that rows are samples: ``values`` float32 ``[n_samples, n_genes]``,
    gene labels as written in the file, and the file's own gene lengths if it had them."""

    values: np.ndarray
    sample_ids: tuple[str, ...]
    gene_labels: tuple[str, ...]
    gene_lengths: np.ndarray | None
    orientation: Guess


def orient(raw: RawTable, *, orientation: str = "auto",
           annotation: GeneAnnotation | None = None) -> OrientedTable:
    """Decide which axis holds genes (or take ``orientation``), and turn rows into samples.

    ``auto`` trusts formats that fix the layout (featureCounts, RSEM, salmon, AnnData), else
    picks the axis whose labels look more like gene IDs.
    """
    check_choice(orientation, ORIENTATIONS, what="orientation", error=InputError)
    if orientation != "auto":
        guess = Guess(orientation, "chosen by you")
    elif raw.layout is not None:
        guess = raw.layout
    else:
        guess = _guess_orientation(raw, annotation or load_annotation())
    if guess.value == "genes_in_rows":
        values, samples, genes = raw.values.T, raw.column_labels, raw.row_labels
        lengths = raw.row_lengths
    else:
        values, samples, genes = raw.values, raw.row_labels, raw.column_labels
        lengths = None
    _check_sample_ids(samples)
    return OrientedTable(np.ascontiguousarray(values), samples, genes, lengths, guess)


def _guess_orientation(raw: RawTable, annotation: GeneAnnotation) -> Guess:
    rows = annotation.gene_like_fraction(raw.row_labels)
    columns = annotation.gene_like_fraction(raw.column_labels)
    shape = f"{len(raw.row_labels)} rows × {len(raw.column_labels)} columns"
    if rows > columns:
        return Guess("genes_in_rows", f"{rows:.0%} of row labels look like gene IDs, "
                                      f"{columns:.0%} of column names ({shape})")
    if columns > rows:
        return Guess("genes_in_columns", f"{columns:.0%} of column names look like gene IDs, "
                                         f"{rows:.0%} of row labels ({shape})")
    longer = "genes_in_rows" if len(raw.row_labels) >= len(raw.column_labels) else "genes_in_columns"
    return Guess(longer, f"neither axis has recognisable gene IDs; assumed genes run along the "
                         f"longer one ({shape})")


def _check_sample_ids(samples: tuple[str, ...]) -> None:
    index = pd.Index(samples)
    if index.has_duplicates:
        repeated = index[index.duplicated()].unique()[:5]
        raise InputError(f"Sample name(s) {', '.join(map(repr, repeated))} appear more than once.",
                         hint="Give every sample a unique name (or check the orientation).")
    if not index.map(lambda s: isinstance(s, str) and bool(s.strip())).all():
        raise InputError("A sample has no name.", hint="Give every sample a name.")


# --------------------------------------------------------------------------- mapping


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
    check_choice(id_type, ID_TYPES, what="gene ID type", error=InputError)
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


# --------------------------------------------------------------------------- duplicates


@dataclass(frozen=True, eq=False)
class CombinedGenes:
    """log1p TPM with one column per Ensembl gene (samples × genes), and which table rows
    were merged into one gene (``duplicates``: ensg_id, n_rows, labels)."""

    table: pd.DataFrame
    duplicates: pd.DataFrame


def combine_duplicates(values: np.ndarray, *, mapping: GeneMapping, sample_ids: Sequence[str],
                       keep: Sequence[str] | None = None) -> CombinedGenes:
    """Keep mapped genes (only those in ``keep``, if given) and merge rows that map to the
    same gene.

    ``values`` is log1p TPM ``[n_samples, n_labels]``. Merged rows add up on the TPM scale,
    ``log1p(Σ expm1(x))``: a gene's TPM is the sum of its parts' TPM, whatever the input was
    (counts, TPM and FPKM are all turned into TPM before this step). Genes measured once
    pass through untouched. ``duplicates`` lists every merged gene, kept or not.
    """
    ensg = pd.Series(mapping.ensg_ids, dtype=object)
    codes, genes = pd.factorize(ensg)  # unmapped (None) get code -1
    sizes = np.bincount(codes[codes >= 0], minlength=len(genes))
    merged = (codes >= 0) & (sizes[codes] > 1)
    duplicates = pd.DataFrame({"ensg_id": ensg[merged].to_numpy(),
                               "label": np.asarray(mapping.labels, dtype=object)[merged]})
    duplicates = duplicates.groupby("ensg_id", sort=True)["label"].agg(
        n_rows="size", labels="; ".join).reset_index()

    wanted = np.ones(len(genes), dtype=bool) if keep is None else genes.isin(list(keep))
    new_code = np.cumsum(wanted) - 1  # position of each kept gene in the output
    rows = np.flatnonzero((codes >= 0) & wanted[np.maximum(codes, 0)])
    out_codes = new_code[codes[rows]]
    single = sizes[codes[rows]] == 1
    out = np.empty((values.shape[0], int(wanted.sum())), dtype=np.float32)
    out[:, out_codes[single]] = values[:, rows[single]]
    if not single.all():
        groups, local = np.unique(out_codes[~single], return_inverse=True)
        total = np.zeros((len(groups), values.shape[0]), dtype=np.float64)
        np.add.at(total, local, np.expm1(values[:, rows[~single]].astype(np.float64)).T)
        out[:, groups] = np.log1p(total).T
    table = pd.DataFrame(out, index=pd.Index(list(sample_ids), name="sample_id"),
                         columns=pd.Index(np.asarray(genes[wanted], dtype=object), name="ensg_id"))
    return CombinedGenes(table, duplicates)


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
