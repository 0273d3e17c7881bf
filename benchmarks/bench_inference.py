"""Inference speed: the plain reference path against our optimised path, in one run.

    .venv/bin/python benchmarks/bench_inference.py [--models demo 37M 147M] [--samples 4] [--compile auto]

(a) reference: what the published notebook does: float32, eager, performer-pytorch's stock
    FAVOR+ code, the gene-identity projection recomputed for every batch, one sample a batch;
(b) optimised: ``BulkFormerModel.run`` as the app and CLI call it (identity projected once per
    model, precision "auto" = bf16 autocast where the hardware has native bf16 with FAVOR+
    kept in float32, lean FAVOR+ arithmetic, compile "auto" = the Performer layers through
    ``torch.compile`` when the run is long enough, batch size chosen from memory). Its
    compile starts from an empty compiler cache, so the first batch pays the full cost a
    first-time user pays; the time of that first batch and the steady time per sample after
    it are printed beside the total.

With ``--device cuda`` (one GPU) it compares instead, in one process and on one cohort:
upstream's own notebook path (fp16 autocast, stock FAVOR+, batch 16), fp32 eager (stock
FAVOR+, batch 16) and ours (``BulkFormerModel.run`` with its defaults), printing samples/s
after a warm-up batch, peak GPU memory and accuracy against fp32; then our samples/s and
peak memory over batch sizes 1-128 (``--samples`` 64 or more is sensible there).

Each CPU path runs in its own process, so the peak resident memory printed is that path's. The
inputs are realistic: the demo cohort aligned to each model's genes (random weights for the
published shapes, whose gene order is our protein-coding genes padded to 20,010). Accuracy of
(b) against (a): cosine similarity of sample embeddings and Pearson r of imputed values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load(name: str, device: str = "cpu"):  # noqa: ANN202 - BulkFormerModel
    import torch

    from bulkformer.genes import protein_coding_ids
    from bulkformer.model._graph import GeneGraph
    from bulkformer.model import PRESETS, BulkFormer
    from bulkformer.model._bulkformer_model import BulkFormerModel

    if name == "demo":
        return BulkFormerModel.load("demo", device=device)
    torch.manual_seed(0)
    config = PRESETS[name]
    genes = protein_coding_ids()
    gene_ids = (*genes, *(f"PAD{i:05d}" for i in range(config.n_genes - len(genes))))
    g = torch.Generator().manual_seed(1)
    edges = torch.randint(0, config.n_genes, (2, 20 * config.n_genes), generator=g)
    graph = GeneGraph(edges, torch.rand(edges.shape[1], generator=g), config.n_genes)
    return BulkFormerModel(BulkFormer(config), graph, gene_ids, checksum="random", source=name, device=device)


def _inputs(model, n: int) -> np.ndarray:  # noqa: ANN001
    from bulkformer import paths

    prepared = model.prepare(paths.demo_dir() / "demo_counts.csv.gz")
    return np.array(prepared.aligned.values[:n])


def _reference(model, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """fp32 eager, stock performer-pytorch attention, identity recomputed per sample, batch 1."""
    import torch
    from performer_pytorch.performer_pytorch import FastAttention

    from bulkformer.model._inference import aggregate_genes
    from bulkformer.model._layers import Fp32FastAttention

    for module in model.network.modules():
        if type(module) is Fp32FastAttention:
            module.__class__ = FastAttention
    adjacency = model.graph.normalized_adjacency()
    embeddings, imputed = [], []
    with torch.no_grad():
        for row in values:
            x = torch.tensor(row[None])
            h = model.network.encode(x, adjacency)  # identity recomputed inside
            features = model.network.gene_features(x, h)
            embeddings.append(aggregate_genes(features, "mean").numpy())
            imputed.append(model.network.impute(x, features).numpy())
    return np.concatenate(embeddings), np.concatenate(imputed)


class _StockAttention:
    """Within the block, the model's FAVOR+ modules run performer-pytorch's own code."""

    def __init__(self, model) -> None:  # noqa: ANN001
        from bulkformer.model._layers import Fp32FastAttention

        self.modules = [m for m in model.network.modules() if type(m) is Fp32FastAttention]

    def __enter__(self) -> None:
        from performer_pytorch.performer_pytorch import FastAttention

        for module in self.modules:
            module.__class__ = FastAttention

    def __exit__(self, *exc: object) -> None:
        from bulkformer.model._layers import Fp32FastAttention

        for module in self.modules:
            module.__class__ = Fp32FastAttention


def _plain_path(model, values: np.ndarray, device, *, half, batch: int):  # noqa: ANN001, ANN202
    """The notebook's loop: stock FAVOR+, identity recomputed per batch, optional autocast."""
    import contextlib

    import torch

    from bulkformer.model._inference import aggregate_genes

    adjacency = model.graph.normalized_adjacency(device=device)
    autocast = torch.autocast(device.type, dtype=half) if half is not None else contextlib.nullcontext()
    embeddings, imputed = [], []
    with _StockAttention(model), torch.no_grad(), autocast:
        for start in range(0, len(values), batch):
            x = torch.tensor(values[start:start + batch], device=device)
            features = model.network.gene_features(x, model.network.encode(x, adjacency)).float()
            embeddings.append(aggregate_genes(features, "mean").cpu().numpy())
            imputed.append(model.network.impute(x, features).float().cpu().numpy())
    return np.concatenate(embeddings), np.concatenate(imputed)


def _timed(device, fn):  # noqa: ANN001, ANN202
    """``fn()`` once to warm up, then timed; (samples/s factor 1/seconds, peak GiB, result)."""
    import torch

    fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return seconds, peak, result


def _accuracy(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray]) -> str:
    (a, r_imp), (b, g_imp) = ref, got
    cosine = ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min()
    return f"{cosine:.7f} | {np.corrcoef(r_imp.ravel(), g_imp.ravel())[0, 1]:.6f}"


def _device_main(name: str, n: int, device_name: str) -> None:
    import torch

    device = torch.device(device_name)
    model = _load(name, device_name)
    values = _inputs(model, n)
    if len(values) < n:
        values = np.resize(values, (n, values.shape[1]))
    ids = [str(i) for i in range(n)]
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else device_name}, "
          f"torch {torch.__version__}, model {name}, {n} samples")
    print("| path | samples/s | peak GPU GiB | embedding cosine to fp32 (min) | imputed r to fp32 |")
    print("|---|---:|---:|---:|---:|")
    fp32_s, fp32_peak, fp32 = _timed(device, lambda: _plain_path(model, values, device, half=None, batch=16))
    up_s, up_peak, upstream = _timed(device, lambda: _plain_path(model, values, device, half=torch.float16, batch=16))

    def ours(batch: int | None = None, compile: str = "auto"):  # noqa: ANN202
        result = model.run(values, ids, aggregate="mean", batch_size=batch, compile=compile)
        return result.sample_embedding, result.imputed

    our_s, our_peak, mine = _timed(device, ours)
    for label, seconds, peak, got in (("upstream notebook: fp16 autocast, stock FAVOR+, batch 16", up_s, up_peak, upstream),
                                      ("fp32 eager, stock FAVOR+, batch 16", fp32_s, fp32_peak, fp32),
                                      ("ours, defaults", our_s, our_peak, mine)):
        print(f"| {label} | {n / seconds:.1f} | {peak:.1f} | {_accuracy(fp32, got)} |", flush=True)
    print(f"ours / upstream's path: {up_s / our_s:.2f}x")
    print("| our batch size | samples/s | peak GPU GiB |")
    print("|---:|---:|---:|")
    for batch in (1, 2, 4, 8, 16, 32, 64, 128):
        if batch <= n:
            seconds, peak, _ = _timed(device, lambda b=batch: ours(b))
            print(f"| {batch} | {n / seconds:.1f} | {peak:.1f} |", flush=True)


def _worker(name: str, path: str, n: int, out: str, compile: str) -> None:
    model = _load(name)
    values = _inputs(model, n)
    marks: list[tuple[int, float]] = []
    start = time.perf_counter()
    if path == "reference":
        emb, imp = _reference(model, values)
    else:
        result = model.run(values, [str(i) for i in range(n)], aggregate="mean", compile=compile,
                           progress=lambda done, total: marks.append((done, time.perf_counter())))
        emb, imp = result.sample_embedding, result.imputed
    seconds = time.perf_counter() - start
    np.savez(out, embedding=emb, imputed=imp)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    facts = {"seconds": seconds, "peak_gib": peak_gib}
    if len(marks) > 1:
        (first_n, first_t), (last_n, last_t) = marks[0], marks[-1]
        facts["first_batch_s"], facts["steady_s"] = first_t - start, (last_t - first_t) / (last_n - first_n)
    print(json.dumps(facts))


def _measure(name: str, path: str, n: int, folder: str, compile: str) -> dict:
    out = os.path.join(folder, f"{name}-{path}.npz")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": os.path.join(folder, f"inductor-{name}-{path}")}
    proc = subprocess.run([sys.executable, __file__, "--worker", name, path, str(n), out, compile],
                          capture_output=True, text=True, check=True, env=env)
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(out) as data:
        facts["embedding"], facts["imputed"] = data["embedding"], data["imputed"]
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["demo", "37M", "147M"])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                        help="the optimised path's compile setting (auto: as the app and CLI decide)")
    parser.add_argument("--device", default="cpu",
                        help="cpu: reference vs optimised in separate processes; cuda: the GPU comparison")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, path, n, out, compile = args.worker
        _worker(name, path, int(n), out, compile)
        return
    if args.device != "cpu":
        for name in args.models:
            _device_main(name, args.samples, args.device)
        return

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.samples} samples per path; compile {args.compile}")
    print("| model | reference s/sample | optimised s/sample | speed-up | optimised: first batch s / "
          "steady s/sample | peak GiB ref / opt | embedding cosine (min) | imputed Pearson r |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            ref = _measure(name, "reference", args.samples, folder, args.compile)
            opt = _measure(name, "optimised", args.samples, folder, args.compile)
            a, b = ref["embedding"], opt["embedding"]
            cosine = ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min()
            r = np.corrcoef(ref["imputed"].ravel(), opt["imputed"].ravel())[0, 1]
            per_ref, per_opt = ref["seconds"] / args.samples, opt["seconds"] / args.samples
            steady = (f"{opt['first_batch_s']:.2f} / {opt['steady_s']:.2f}" if "steady_s" in opt else "–")
            print(f"| {name} | {per_ref:.2f} | {per_opt:.2f} | {per_ref / per_opt:.2f}x | {steady} | "
                  f"{ref['peak_gib']:.1f} / {opt['peak_gib']:.1f} | {cosine:.5f} | {r:.5f} |", flush=True)


if __name__ == "__main__":
    main()
