"""How many model genes a GRCh37-era table gains from the former-Ensembl-ID map.

The table is every gene ID of Ensembl's GRCh37 gene list (``gene.location.hg19`` in Debian's
r-bioc-tcgabiolinksgui.data, the list ``scripts/build_annotation.py`` reads): the model genes it
measures are counted with the shipped annotation as is, and without its former-ID map.

    python benchmarks/count_former_ids.py [--site-library DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import build_annotation

from bulkformer.genes import GeneAnnotation, load_annotation, map_genes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-library", type=Path, default=None,
                        help="R site-library with r-bioc-tcgabiolinksgui.data (default: download it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        site_library = args.site_library or build_annotation.fetch_site_library(Path(workdir))
        name = "gene.location.hg19"
        table = build_annotation.read_rda(site_library / "TCGAbiolinksGUI.data" / "data" / f"{name}.rda")[name]
    ids = list(dict.fromkeys(np.asarray(table["ensembl_gene_id"], dtype=str)))
    annotation = load_annotation()
    model = set(annotation.protein_coding_ids())
    with_map = map_genes(ids, annotation=annotation)
    without = map_genes(ids, annotation=GeneAnnotation(annotation.table))
    measured = {g for g in with_map.ensg_ids if g} & model
    before = {g for g in without.ensg_ids if g} & model
    print(f"{len(ids):,} GRCh37 gene IDs; {with_map.n_former_ids:,} former IDs matched to current genes; "
          f"model genes measured: {len(before):,} without the map, {len(measured):,} with it "
          f"(+{len(measured - before):,} of {len(model):,})")


if __name__ == "__main__":
    main()
