"""Build ``assets/annotation/human_genes.tsv.gz``, the shipped human gene annotation.

Sources (Debian 12 "bookworm" packages, fetched with ``apt-get download`` and unpacked with
``dpkg-deb -x``, so R itself is not needed; an ``apt-get install``-ed copy under
``/usr/lib/R/site-library`` is used instead when present):

==============================  ===============  =================================================
apt package                     version          what it gives
==============================  ===============  =================================================
r-bioc-tcgabiolinksgui.data     1.18.0+dfsg-1    GENCODE v36 genes: gene_id, gene_name, gene_type
r-bioc-genelendatabase          1.34.0-1         hg19 Ensembl transcript lengths (``hg19.ensGene``)
r-bioc-org.hs.eg.db             3.16.0-1         NCBI gene aliases (2022-09-12) linked to Ensembl
==============================  ===============  =================================================

Also used: the Ensembl gene symbols of ``gene.location.hg19`` / ``gene.location.hg38`` in
r-bioc-tcgabiolinksgui.data, as previous symbols.

Output columns: ``ensg_id`` (no version; ``_PAR_Y`` copies dropped), ``symbol``, ``biotype``,
``length`` (bp: geometric mean of the gene's longest hg19 Ensembl transcript and the sum of its
transcripts, an estimate of the exon-union length; empty where the gene has no transcript there),
``aliases`` (``|``-joined, upper-case-unique, never equal to the gene's own symbol).

Run: ``python scripts/build_annotation.py [--site-library DIR]``. The output is byte-identical
between runs (sorted rows, gzip with a fixed timestamp).
"""

from __future__ import annotations

import argparse
import gzip
import sqlite3
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rdata

PACKAGES: dict[str, tuple[str, str]] = {
    # R package name: (apt package, pinned version)
    "TCGAbiolinksGUI.data": ("r-bioc-tcgabiolinksgui.data", "1.18.0+dfsg-1"),
    "geneLenDataBase": ("r-bioc-genelendatabase", "1.34.0-1"),
    "org.Hs.eg.db": ("r-bioc-org.hs.eg.db", "3.16.0-1"),
}
SYSTEM_SITE_LIBRARY = Path("/usr/lib/R/site-library")
OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "annotation" / "human_genes.tsv.gz"
FORMER_IDS_FILE = "former_ensembl_ids.tsv.gz"  # beside OUTPUT
ENTREZ_IDS_FILE = "entrez_ids.tsv.gz"  # beside OUTPUT


def fetch_site_library(workdir: Path) -> Path:
    """Download the pinned .deb files and unpack them; returns the R site-library inside."""
    workdir.chmod(0o755)  # apt drops to the _apt user to write the files
    specs = [f"{apt}={version}" for apt, version in PACKAGES.values()]
    subprocess.run(["apt-get", "download", *specs], cwd=workdir, check=True)
    root = workdir / "root"
    for deb in sorted(workdir.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root / "usr" / "lib" / "R" / "site-library"


def check_versions(site_library: Path) -> None:
    """Refuse to build from package versions other than the pinned ones."""
    for r_name, (apt, version) in PACKAGES.items():
        description = (site_library / r_name / "DESCRIPTION").read_text()
        found = next(line.split(":", 1)[1].strip() for line in description.splitlines()
                     if line.startswith("Version:"))
        if not version.startswith(found):
            raise SystemExit(f"{apt}: found R package version {found}, expected {version}")


def read_rda(path: Path) -> dict:
    """Read an .rda/.RData file; S4 classes without a converter come back as namespaces."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdata.read_rda(str(path))


def gencode_genes(site_library: Path) -> pd.DataFrame:
    """GENCODE v36 genes as ensg_id, symbol, biotype (``_PAR_Y`` copies dropped)."""
    ranges = read_rda(site_library / "TCGAbiolinksGUI.data" / "data"
                      / "gencode.v36.annotation.genes.rda")["gencode.v36.annotation.genes"]
    columns = ranges.elementMetadata.listData
    genes = pd.DataFrame({
        "gene_id": np.asarray(columns["gene_id"], dtype=str),
        "symbol": np.asarray(columns["gene_name"], dtype=str),
        "biotype": np.asarray(columns["gene_type"], dtype=str),
    })
    genes = genes[~genes["gene_id"].str.endswith("_PAR_Y")]
    genes.insert(0, "ensg_id", genes.pop("gene_id").str.split(".").str[0])
    assert genes["ensg_id"].is_unique
    return genes


def transcript_lengths(site_library: Path) -> pd.Series:
    """Per gene, an estimate of the exon-union length that upstream uses.

    The source lists transcript lengths only. A gene's exon union is at least its longest
    transcript and at most the sum of all of them; the geometric mean of these two bounds
    agrees best with upstream's lengths (see assets/annotation/README.md for the comparison).
    """
    table = read_rda(site_library / "geneLenDataBase" / "data"
                     / "hg19.ensGene.LENGTH.RData")["hg19.ensGene.LENGTH"]
    per_gene = table.astype({"Length": "float64"}).groupby("Gene")["Length"]
    return np.sqrt(per_gene.max() * per_gene.sum()).round().astype("int64")


def previous_symbols(site_library: Path) -> pd.DataFrame:
    """(ensg_id, alias) pairs: Ensembl's GRCh37 and GRCh38 gene names."""
    frames = []
    for build in ("hg19", "hg38"):
        name = f"gene.location.{build}"
        table = read_rda(site_library / "TCGAbiolinksGUI.data" / "data" / f"{name}.rda")[name]
        frames.append(table[["ensembl_gene_id", "external_gene_name"]].set_axis(
            ["ensg_id", "alias"], axis=1))
    return pd.concat(frames)


def ncbi_aliases(site_library: Path) -> pd.DataFrame:
    """(ensg_id, alias) pairs: NCBI gene symbols and synonyms, linked through Entrez IDs."""
    db = site_library / "org.Hs.eg.db" / "extdata" / "org.Hs.eg.sqlite"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return pd.read_sql(
            "SELECT e.ensembl_id AS ensg_id, a.alias_symbol AS alias FROM ensembl e "
            "JOIN alias a ON a._id = e._id UNION "
            "SELECT e.ensembl_id, g.symbol FROM ensembl e JOIN gene_info g ON g._id = e._id",
            connection)


def alias_column(genes: pd.DataFrame, previous: pd.DataFrame, synonyms: pd.DataFrame) -> pd.Series:
    """'|'-joined aliases per gene, keeping only names that cannot mislead a look-up: an alias
    is dropped when it is any gene's current symbol, points to more than one gene, or is
    shorter than 3 characters (such as "S1" or "KO", which name samples more often than genes).

    A previous official symbol outranks a synonym: SEPT2 was SEPTIN2's symbol in Ensembl and is
    also an NCBI synonym of SEPTIN6, so it goes to SEPTIN2 (tables from before the renaming
    say SEPT2 for SEPTIN2); a name is dropped only when it is ambiguous at its best rank."""
    pairs = pd.concat([previous.assign(rank=0), synonyms.assign(rank=1)]).dropna()
    pairs = pairs.astype({"ensg_id": str, "alias": str})
    pairs = pairs.assign(key=pairs["alias"].str.upper())
    pairs = pairs[pairs["ensg_id"].isin(genes["ensg_id"])
                  & pairs["alias"].str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@\-]{2,}")
                  & ~pairs["key"].isin(genes["symbol"].str.upper())]
    pairs = pairs.sort_values("rank", kind="stable").drop_duplicates(["ensg_id", "key"])
    pairs = pairs[pairs["rank"] == pairs.groupby("key")["rank"].transform("min")]
    pairs = pairs[~pairs["key"].duplicated(keep=False)]
    joined = pairs.sort_values("alias").groupby("ensg_id")["alias"].agg("|".join)
    return genes["ensg_id"].map(joined).fillna("")


def entrez_links(site_library: Path, genes: pd.DataFrame) -> pd.DataFrame:
    """(entrez, ensg_id): NCBI (Entrez) gene IDs linked by org.Hs.eg.db to exactly one gene of
    ``genes``, sorted by Entrez ID."""
    db = site_library / "org.Hs.eg.db" / "extdata" / "org.Hs.eg.sqlite"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        links = pd.read_sql("SELECT g.gene_id AS entrez, e.ensembl_id AS ensg_id FROM genes g "
                            "JOIN ensembl e ON e._id = g._id", connection)
    links = links[links["ensg_id"].isin(genes["ensg_id"])].drop_duplicates()
    links = links[~links["entrez"].duplicated(keep=False)]
    links = links.assign(entrez=links["entrez"].astype("int64"))
    return links.sort_values("entrez").reset_index(drop=True)


def former_ensembl_ids(site_library: Path, genes: pd.DataFrame) -> pd.DataFrame:
    """(former_id, ensg_id): GRCh37-era Ensembl gene IDs (``gene.location.hg19``) that are no
    current gene's, each with the one current gene of the same NCBI gene (through org.Hs.eg.db's
    Entrez ↔ Ensembl links), else of the same symbol; IDs with two candidates are left out."""
    hg19 = read_rda(site_library / "TCGAbiolinksGUI.data" / "data" / "gene.location.hg19.rda")["gene.location.hg19"]
    hg19 = pd.DataFrame({"former_id": np.asarray(hg19["ensembl_gene_id"], dtype=str),
                         "symbol": np.asarray(hg19["external_gene_name"], dtype=str),
                         "entrez": pd.to_numeric(hg19["entrezgene_id"], errors="coerce")})
    hg19 = hg19[~hg19["former_id"].isin(genes["ensg_id"])]
    links = entrez_links(site_library, genes).astype({"entrez": "float64"})
    by_entrez = hg19["entrez"].map(links.set_index("entrez")["ensg_id"])
    symbols = genes.assign(key=genes["symbol"].str.upper())
    symbols = symbols[~symbols["key"].duplicated(keep=False)].set_index("key")["ensg_id"]
    by_symbol = hg19["symbol"].str.upper().map(symbols)
    pairs = hg19.assign(ensg_id=by_entrez.fillna(by_symbol)).dropna(subset=["ensg_id"])
    pairs = pairs[["former_id", "ensg_id"]].drop_duplicates()
    pairs = pairs[~pairs["former_id"].duplicated(keep=False)]
    return pairs.sort_values("former_id").reset_index(drop=True)


def build(site_library: Path) -> pd.DataFrame:
    """The annotation table, sorted by ensg_id."""
    check_versions(site_library)
    genes = gencode_genes(site_library)
    genes["length"] = genes["ensg_id"].map(transcript_lengths(site_library)).astype("Int64")
    genes["aliases"] = alias_column(genes, previous_symbols(site_library), ncbi_aliases(site_library))
    return genes.sort_values("ensg_id").reset_index(drop=True)


def write(table: pd.DataFrame, path: Path) -> None:
    """Gzip TSV with a fixed timestamp, written to a temporary name first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = table.to_csv(sep="\t", index=False, lineterminator="\n")
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                               mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-library", type=Path, default=None,
                        help="R site-library holding the three packages (default: the system "
                             "one if they are installed there, else download the .debs)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        site_library = args.site_library
        if site_library is None:
            installed = all((SYSTEM_SITE_LIBRARY / name).is_dir() for name in PACKAGES)
            site_library = SYSTEM_SITE_LIBRARY if installed else fetch_site_library(Path(workdir))
        table = build(site_library)
        former = former_ensembl_ids(site_library, table)
        entrez = entrez_links(site_library, table)
    write(table, args.output)
    write(former, args.output.parent / FORMER_IDS_FILE)
    write(entrez, args.output.parent / ENTREZ_IDS_FILE)
    coding = table[table["biotype"] == "protein_coding"]
    print(f"{args.output}: {len(table)} genes, {len(coding)} protein-coding, "
          f"{coding['length'].notna().mean():.1%} of them with a length, "
          f"{(table['aliases'] != '').sum()} genes with aliases; {len(former)} former Ensembl IDs "
          f"of {former['ensg_id'].nunique()} current genes; {len(entrez)} Entrez gene IDs")


if __name__ == "__main__":
    main()
