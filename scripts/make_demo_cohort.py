"""Build the app's demo data in ``assets/demo/``: a SIMULATED cohort, not real patients.

Writes, from the protein-coding genes of the shipped annotation (plus XIST):

* ``demo_counts.csv.gz`` / ``demo_samples.csv``: the main cohort, genes as rows (Ensembl IDs),
* ``demo_panel_counts.csv.gz`` / ``demo_panel_samples.csv``: a second, small cohort of new
  samples from the same simulated biology where only a targeted panel of genes was measured,
  with gene symbols as IDs (to show symbol mapping and imputation of unmeasured genes).

Run from the repository root::

    python scripts/make_demo_cohort.py --seed 0 --n-samples 200 --out assets/demo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bulkformer.genes import load_annotation, protein_coding_ids  # noqa: E402
from bulkformer.simulate import FEMALE_GENES, MALE_GENES, SimulatedCohort, simulate_cohort  # noqa: E402

PANEL_SAMPLES = 24
PANEL_GENES = 1000
PANEL_HIGHLY_VARIABLE = 400
MAX_TOTAL_BYTES = 10_000_000
GZIP = {"method": "gzip", "compresslevel": 9, "mtime": 0}  # mtime 0: byte-identical reruns


def demo_gene_table() -> pd.DataFrame:
    """The simulator's ``ensg_id, symbol, length`` table: the annotation's protein-coding genes
    (in the model's sorted order), then XIST, the female marker, which is a non-coding RNA but
    is in every real count table. Unknown lengths become the median length."""
    table = load_annotation().table.set_index("ensg_id")
    extra = table.index[table["symbol"].isin(FEMALE_GENES)].difference(protein_coding_ids())
    genes = table.loc[[*protein_coding_ids(), *extra], ["symbol", "length"]].reset_index()
    length = genes["length"].astype(float)
    return genes.assign(length=length.fillna(length.median()))


def choose_panel(cohort: SimulatedCohort, genes: pd.DataFrame, *, seed: int) -> pd.Index:
    """Panel = markers + sex genes + the most variable expressed genes + random genes.

    Only genes with a unique symbol qualify, since the panel file is keyed by symbol.
    """
    symbols = genes.set_index("ensg_id")["symbol"]
    eligible = symbols[(symbols != "") & ~symbols.duplicated(keep=False)].index
    fixed = [g for members in cohort.markers.values() for g in members]
    fixed += list(symbols.index[symbols.isin(FEMALE_GENES + MALE_GENES)])
    chosen = pd.Index(fixed).intersection(eligible, sort=False)

    counts = cohort.counts.loc[eligible.difference(chosen)]
    log_cpm = np.log1p(counts / cohort.counts.sum(axis=0) * 1e6)
    expressed = log_cpm[log_cpm.mean(axis=1) > np.log1p(1.0)]
    variable = expressed.var(axis=1).nlargest(PANEL_HIGHLY_VARIABLE).index
    chosen = chosen.append(variable)

    rest = eligible.difference(chosen)
    rng = np.random.default_rng([seed, 2])
    n_random = max(PANEL_GENES - len(chosen), 0)
    return chosen.append(pd.Index(rng.choice(rest, n_random, replace=False)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument("--n-samples", type=int, default=200, help="samples in the main cohort (default 200)")
    parser.add_argument("--out", type=Path, default=Path("assets/demo"), help="output folder (default assets/demo)")
    args = parser.parse_args(argv)

    genes = demo_gene_table()
    cohort = simulate_cohort(genes, n_samples=args.n_samples, seed=args.seed)
    panel = choose_panel(cohort, genes, seed=args.seed)
    panel_cohort = simulate_cohort(
        genes, n_samples=PANEL_SAMPLES, seed=args.seed, sample_draw=1, id_prefix="P", panel=panel
    )
    symbols = genes.set_index("ensg_id")["symbol"]
    panel_counts = panel_cohort.counts.set_axis(symbols[panel].to_numpy(), axis=0).sort_index()

    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "demo_counts.csv.gz": lambda p: cohort.counts.to_csv(p, index_label="gene_id", compression=GZIP),
        "demo_samples.csv": cohort.sample_sheet.to_csv,
        "demo_panel_counts.csv.gz": lambda p: panel_counts.to_csv(p, index_label="gene_symbol", compression=GZIP),
        "demo_panel_samples.csv": panel_cohort.sample_sheet.to_csv,
    }
    total = 0
    for name, write in files.items():
        path = args.out / name
        write(path)
        size = path.stat().st_size
        total += size
        print(f"{path}  {size / 1e6:.2f} MB")
    print(
        f"{len(genes)} genes × {args.n_samples} samples; "
        f"panel {len(panel)} genes × {PANEL_SAMPLES} samples; total {total / 1e6:.2f} MB"
    )
    if total > MAX_TOTAL_BYTES:
        print(f"Demo files exceed {MAX_TOTAL_BYTES / 1e6:.0f} MB; lower --n-samples.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
