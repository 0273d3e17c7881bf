"""Ingestion benchmark: ``prepare`` on a 2,000-sample × 60,000-gene counts CSV.

Writes the CSV once (genes as rows, versioned GENCODE IDs as in featureCounts output, negative
binomial-like counts with many zeros), then times the whole ``prepare`` path in a fresh
process and reports its wall time and peak resident memory (``ru_maxrss``).

Run from the repository root::

    python benchmarks/bench_ingest.py [--samples 2000] [--genes 60000] [--gzip] [--keep]
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bulkformer.genes import load_annotation  # noqa: E402


def write_counts(path: Path, *, n_samples: int, n_genes: int, seed: int = 0) -> None:
    """Counts CSV, genes as rows, written in blocks of genes to keep memory low."""
    annotation = load_annotation()
    ids = annotation.table["ensg_id"].to_numpy()
    rng = np.random.default_rng(seed)
    labels = [f"{ids[i % len(ids)]}.{1 + i // len(ids)}" for i in range(n_genes)]
    gene_mean = rng.lognormal(mean=2.0, sigma=2.5, size=n_genes)
    depth = rng.uniform(0.5, 1.5, size=n_samples)
    names = ["gene_id", *(f"sample_{j:04d}" for j in range(n_samples))]
    with pa.OSFile(str(path), "wb") as sink:
        compressed = pa.CompressedOutputStream(sink, "gzip") if path.suffix == ".gz" else sink
        writer = None
        for start in range(0, n_genes, 2000):
            stop = min(start + 2000, n_genes)
            mean = gene_mean[start:stop, None] * depth[None, :]
            counts = rng.poisson(rng.gamma(2.0, mean / 2.0)).astype(np.int32)
            block = pa.table([pa.array(labels[start:stop]), *counts.T], names=names)
            if writer is None:
                writer = pacsv.CSVWriter(compressed, block.schema,
                                         write_options=pacsv.WriteOptions(quoting_style="none"))
            writer.write_table(block)
        writer.close()
        if compressed is not sink:
            compressed.close()


def measure(path: Path) -> tuple[float, float, str]:
    """Seconds and peak RSS (GiB) of ``prepare`` on ``path``, plus its QC summary."""
    from bulkformer.genes import protein_coding_ids
    from bulkformer.inputs._pipeline import prepare

    order = protein_coding_ids()
    start = time.perf_counter()
    prepared = prepare(path, gene_order=order)
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    return seconds, peak_gib, "\n".join(prepared.qc.summary_lines()[:4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--genes", type=int, default=60000)
    parser.add_argument("--gzip", action="store_true", help="write and read a .csv.gz")
    parser.add_argument("--keep", type=Path, default=None, help="keep the CSV at this path")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the child process: only the measured work
        seconds, peak, summary = measure(args.measure)
        print(f"{seconds:.2f} {peak:.3f}")
        print(summary)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / ("counts.csv.gz" if args.gzip else "counts.csv")
        if not path.exists():
            start = time.perf_counter()
            write_counts(path, n_samples=args.samples, n_genes=args.genes)
            print(f"wrote {path} ({path.stat().st_size / 1024**2:.0f} MiB) "
                  f"in {time.perf_counter() - start:.1f} s")
        child = subprocess.run([sys.executable, __file__, "--measure", str(path)],
                               check=True, capture_output=True, text=True)
        seconds, peak = map(float, child.stdout.splitlines()[0].split())
        print(f"prepare: {seconds:.1f} s, peak RSS {peak:.2f} GiB "
              f"({args.samples} samples × {args.genes} genes; Python "
              f"{platform.python_version()}, {platform.machine()})")
        print("\n".join(child.stdout.splitlines()[1:]))


if __name__ == "__main__":
    main()
