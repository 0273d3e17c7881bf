"""The shipped human gene annotation (``assets/annotation``): genes, symbols, aliases, lengths,
former Ensembl IDs and NCBI (Entrez) IDs, read once.
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

ANNOTATION_FILE = paths.ANNOTATION_DIR / "human_genes.tsv.gz"
#: Former (GRCh37-era) Ensembl gene IDs and the current gene each became; see the README there.
FORMER_IDS_FILE = paths.ANNOTATION_DIR / "former_ensembl_ids.tsv.gz"
#: NCBI (Entrez) gene IDs and the one current Ensembl gene each is linked to.
ENTREZ_IDS_FILE = paths.ANNOTATION_DIR / "entrez_ids.tsv.gz"
ANNOTATION_COLUMNS = ("ensg_id", "symbol", "biotype", "length", "aliases")

_HUMAN_ENSEMBL = r"(?<![A-Za-z0-9])(ENSG\d{11})(?!\d)"
_OTHER_ENSEMBL = re.compile(r"^ENS([A-Z]{3})[GT]\d{11}")
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
