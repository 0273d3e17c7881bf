"""Cohorts streamed to disk at growing N: time, samples/s, peak RSS, output size (issue #23, item 7).

Each size runs in a fresh child process (so ``ru_maxrss`` is that run's own peak, imports
included): a synthetic counts cohort (samples as rows, Parquet, written block by block) is
planned, run as one shard and gathered into ``embeddings.parquet`` with :mod:`bulkformer.cohort`,
exactly as ``bulkformer extract-cohort`` does. Peak RSS must not grow with N.

    python benchmarks/bench_scale.py --sizes 1000 10000                  # the demo model, all 19,944 genes
    python benchmarks/bench_scale.py --model tiny --genes 1000 --batch-size 250 --sizes 1000 10000 100000

``--model tiny``: a random 1-layer model (dim 16) over the first ``--genes`` model genes, to measure
the streaming machinery (read, normalise, align, write, gather) at 100k samples in minutes; the
model's own time per sample is then measured separately and projected (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from bulkformer import cohort
    from bulkformer.model import BulkFormerModel, RunOptions

    work_root = Path(args.work)
    demo = BulkFormerModel.load("demo", device="cpu")
    if args.model == "tiny":
        from tests.conftest import random_graph, tiny_network

        ids = demo.gene_ids[: args.genes]
        model = BulkFormerModel(tiny_network("v2", n_genes=len(ids), dim=16, p_repeat=1),
                                random_graph(len(ids), 4 * len(ids)), ids, checksum="bench-tiny", source="bench",
                                device="cpu")
    else:
        model = demo
    genes = list(model.gene_ids)
    data = work_root / "cohort.parquet"
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    mean = rng.gamma(0.6, 150.0, size=len(genes)).astype(np.float32)
    writer = None
    for start in range(0, args.n, 1000):
        n = min(1000, args.n - start)
        counts = rng.poisson(mean[None, :] * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.int32)
        counts[:, 0] += 1
        table = pa.table({"sample_id": [f"S{i:07d}" for i in range(start, start + n)],
                          **{g: counts[:, j] for j, g in enumerate(genes)}})
        writer = writer or pq.ParquetWriter(data, table.schema)
        writer.write_table(table)
    writer.close()
    written = time.perf_counter() - started

    options = RunOptions(impute=False, precision="fp32", compile="off", batch_size=args.batch_size)
    started = time.perf_counter()
    plan = cohort.make_plan(data, model=model, model_spec=args.model, options=options, chunk=args.chunk)
    work = work_root / "work"
    cohort.write_plan(plan, work)
    planned = time.perf_counter() - started
    started = time.perf_counter()
    cohort.run_shard(plan, work, 0, model)
    ran = time.perf_counter() - started
    started = time.perf_counter()
    out = cohort.gather(plan, work, work_root / "embeddings.parquet").output
    gathered = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB → GiB
    print(json.dumps({"n": args.n, "genes": len(genes), "model": args.model, "input_MB": data.stat().st_size / 1e6,
                      "write_input_s": written, "plan_s": planned, "run_s": ran, "gather_s": gathered,
                      "samples_per_s": args.n / ran, "peak_rss_GiB": peak, "output_MB": out.stat().st_size / 1e6,
                      "parts_MB": sum(p.stat().st_size for p in (work / "parts").glob("*.parquet")) / 1e6}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--model", choices=("demo", "tiny"), default="demo")
    parser.add_argument("--genes", type=int, default=1000, help="tiny model only: its number of genes")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="samples per forward pass (1 is fastest for the demo model on a CPU)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        args.n = args.child
        _child(args)
        return
    print("| model | genes | N | input MB | plan s | run s | samples/s | gather s | output MB | peak RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, __file__, "--child", str(n), "--work", tmp, "--model", args.model,
                                   "--genes", str(args.genes), "--chunk", str(args.chunk),
                                   "--batch-size", str(args.batch_size)],
                                  capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {r['model']} | {r['genes']:,} | {n:,} | {r['input_MB']:,.0f} | {r['plan_s']:.1f} | {r['run_s']:,.0f} | "
              f"{r['samples_per_s']:,.1f} | {r['gather_s']:.1f} | {r['output_MB']:.1f} | {r['peak_rss_GiB']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
