"""Batched forward passes: sample embeddings, gene-level embeddings and imputed expression.

One pass over the cohort produces every requested output, batch by batch, so the per-gene
embeddings (20,010 × 640 floats per sample for the 147M model) never exist for the whole
cohort at once: only the aggregated sample vectors, the imputed values and the embeddings of
the genes the caller asked for are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from bulkformer.choices import AGGREGATION, COMPILE, PRECISION
from bulkformer.errors import BulkFormerError
from bulkformer.model._config import BulkFormerConfig
from bulkformer.model._layers import LayerRunner
from bulkformer.model._network import BulkFormer
from bulkformer.model._run_options import RunOptions

_HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

_log = logging.getLogger(__name__)

#: A first compile on a 2-core CPU takes ~30 s (less once torch's on-disk cache is warm) and
#: makes each Performer layer ~1.8x faster; "auto" compiles when the eager run would take
#: longer than this, i.e. when the saving clearly outweighs the wait.
_COMPILE_WORTH_S = 60.0
#: Rough eager CPU throughput used only for that decision (FLOP/s).
_EAGER_CPU_FLOPS = 1e11
#: On an H100 (issue #17's measurements, 147M): eager ~21 samples/s ≈ 6e13 FLOP/s, a fresh
#: compile ~12 s, compiled ~2.7x faster. "auto" compiles when the eager run would take longer
#: than this, about twice the compile.
_EAGER_CUDA_FLOPS = 6e13
_COMPILE_WORTH_CUDA_S = 25.0
#: dynamo recompiles a function for each new input shape and gives up (silently running eagerly)
#: after 8 variants; a long-lived app serving several models and precisions needs more.
_RECOMPILE_LIMIT = 64
#: Largest automatic batch on a GPU: on an H100 the 147M model runs no faster beyond batch 8-16
#: (issue #17), and larger batches only take memory.
_MAX_CUDA_BATCH = 16
#: What the CLI and the app tell people when a run compiles first.
COMPILE_NOTE = "Compiling the model for this computer first (a one-off wait of up to a minute); then it runs faster."

ProgressFn = Callable[[int, int], None]
"""Called after each batch with (samples done, samples in all)."""


class InferenceCancelled(BulkFormerError):
    """The caller asked to stop; nothing from the unfinished run is returned."""


def choose_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BulkFormerError(
            "A CUDA GPU was requested but none is available.", hint="Choose device 'cpu' or 'auto'."
        )
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> Literal["fp32", "bf16", "fp16"]:
    """``"auto"``: fp16 autocast on a CUDA GPU (as fast as bf16 there and more accurate:
    embedding cosine 0.9999997 to fp32 against 0.99999, issue #17's H100 measurements; it is
    upstream's own notebook precision); on a CPU bf16 where the hardware runs bf16 matrix
    products natively (AVX512-BF16 or AMX), else float32."""
    if precision in ("fp32", "bf16", "fp16"):
        return precision  # type: ignore[return-value]
    PRECISION.check(precision)
    if device.type == "cuda":
        return "fp16"
    cpu = torch.cpu
    native = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        cpu, "_is_amx_tile_supported", lambda: False)()
    return "bf16" if device.type == "cpu" and native else "fp32"


def flop_per_sample(config: BulkFormerConfig) -> float:
    """Approximate floating-point operations of one sample's forward pass.

    Per gene token: each Performer layer has 4 attention projections (``d²``) and a 4×-wide
    feed-forward (``8 d²``), plus FAVOR+ (``4 · dim_head · features`` per head); the input
    MLP adds ``8 d²``. A multiply-add counts as 2. 147M: ≈ 2.9 TFLOP.
    """
    d = config.dim
    layers = config.gb_repeat * config.p_repeat
    per_token = layers * (12 * d * d + config.heads * 4 * config.dim_head * config.random_features) + 8 * d * d
    return 2.0 * config.n_genes * per_token


def resolve_compile(setting: str, network: BulkFormer, device: torch.device, n_samples: int) -> bool:
    """Whether to run the Performer layers through ``torch.compile``.

    ``"on"`` / ``"off"`` are obeyed (``"on"`` still falls back to eager where compiling fails).
    ``"auto"`` compiles when the run is long enough for the one-off compile to pay for itself:
    on the CPU (with a C++ compiler present) from the times in ``benchmarks/RESULTS.md``, on
    CUDA from issue #17's H100 figures (147M: from about 400 samples).
    """
    COMPILE.check(setting)
    if setting != "auto":
        return setting == "on"
    work = n_samples * flop_per_sample(network.config)
    if device.type == "cuda":
        return work / _EAGER_CUDA_FLOPS > _COMPILE_WORTH_CUDA_S
    if device.type != "cpu" or not _has_cxx_compiler():
        return False
    return work / _EAGER_CPU_FLOPS > _COMPILE_WORTH_S


def _has_cxx_compiler() -> bool:
    """torch's CPU code generator needs a C++ compiler (``$CXX``, g++ or clang++)."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


class _CompiledLayers:
    """One ``torch.compile``d function that runs any Performer layer.

    The layers share their code, and torch treats module parameters as inputs, so one compile
    (per batch size) serves all of them. Calls are serialised: the compiler is not meant to be
    entered from two threads at once. If compiling fails (no working C++ compiler, an
    unsupported platform), a warning is logged and every later call runs eagerly.
    """

    def __init__(self) -> None:
        import torch._dynamo

        config = torch._dynamo.config
        config.recompile_limit = max(config.recompile_limit, _RECOMPILE_LIMIT)
        self._fn = torch.compile(self._call, dynamic=False)
        self._lock = threading.Lock()
        self._broken = False

    @staticmethod
    def _call(layer: nn.Module, x: Tensor) -> Tensor:
        return layer(x)

    def __call__(self, layer: nn.Module, x: Tensor) -> Tensor:
        if self._broken:
            return layer(x)
        with self._lock:
            try:
                return self._fn(layer, x)
            except Exception as err:  # noqa: BLE001 - any compiler failure: fall back, say so once
                if _is_out_of_memory(err):
                    raise  # not the compiler's fault: iter_forward retries with a smaller batch
                self._broken = True
                _log.warning("torch.compile failed (%s: %s); running without it.", type(err).__name__, err)
        return layer(x)


_compiled: _CompiledLayers | None = None
_compiled_lock = threading.Lock()


def compiled_layers() -> _CompiledLayers:
    """The process-wide compiled layer runner (created on first use)."""
    global _compiled
    with _compiled_lock:
        if _compiled is None:
            _compiled = _CompiledLayers()
        return _compiled


def aggregate_genes(features: Tensor, how: str) -> Tensor:
    """Pool per-gene embeddings into one vector per sample.

    ``median`` averages the two middle values for an even gene count (as numpy does);
    ``all`` is the element-wise sum max + mean + median, as upstream defines it.

    Shapes:
        features: ``[batch, genes, dim]`` → ``[batch, dim]``
    """
    check_aggregate(how)
    if how == "max":
        return features.amax(dim=1)
    if how == "mean":
        return features.mean(dim=1)
    if how == "median":
        ordered = features.sort(dim=1).values
        n = ordered.shape[1]
        return (ordered[:, (n - 1) // 2] + ordered[:, n // 2]) / 2
    return sum(aggregate_genes(features, h) for h in ("max", "mean", "median"))  # "all"


def check_aggregate(how: str) -> None:
    """Refuse an unknown pooling name before any work is done."""
    AGGREGATION.check(how)


@dataclass(frozen=True)
class BatchOutput:
    """What one batch produced; rows ``start:stop`` of the cohort.

    Shapes:
        sample_embedding ``[b, d]``, imputed ``[b, genes]``, gene_embedding ``[b, k, d]``.
    """

    start: int
    stop: int
    sample_embedding: np.ndarray | None
    imputed: np.ndarray | None
    gene_embedding: np.ndarray | None


@dataclass(frozen=True)
class ForwardPlan:
    """Where in the model's gene order a run's gene lists point (the wrapper, which knows the gene
    order and the ESM2 table, resolves :class:`RunOptions`' gene IDs into this).

    Attributes:
        aggregate_index: model gene positions to pool over (``None``: all genes).
        gene_index: model gene positions whose per-gene embeddings are returned (``None``: none).
        gene_table: rows appended to each returned gene embedding (e.g. ESM2), ``[k, e]``.
    """

    aggregate_index: np.ndarray | None = None
    gene_index: np.ndarray | None = None
    gene_table: np.ndarray | None = None


def iter_forward(
    network: BulkFormer,
    adjacency: Tensor,
    identity: Tensor,
    values: np.ndarray,
    plan: ForwardPlan,
    options: RunOptions = RunOptions(),
    *,
    device: torch.device,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[BatchOutput]:
    """Run the network over ``values`` batch by batch, yielding what ``options`` ask for (pooled
    and per-gene embeddings at ``plan``'s gene positions; ``options``' gene lists are not read).

    ``network``, ``adjacency`` and ``identity`` must already be on ``device``. A compiled run
    (:func:`resolve_compile`) sends the Performer layers through :func:`compiled_layers`; a last
    batch smaller than the others is then padded to the same size (rows are independent), so the
    run compiles once for one shape. When a batch runs out of memory, it is retried at half the
    size, and that size is kept for the rest of the run; a single sample that does not fit is a
    :class:`BulkFormerError`.

    Shapes:
        values: ``[samples, genes]`` float32, ``-10`` for missing genes.
    """
    n = values.shape[0]
    half = _HALF_DTYPES.get(resolve_precision(options.precision, device))
    compiled = resolve_compile(options.compile, network, device, n)
    batch_size = options.batch_size or auto_batch_size(network, device, n)
    run_layer = compiled_layers() if compiled else None
    agg_idx = None if plan.aggregate_index is None else torch.as_tensor(plan.aggregate_index, device=device)
    gene_idx = None if plan.gene_index is None else torch.as_tensor(plan.gene_index, device=device)
    network.eval()
    start = 0
    while start < n:
        if should_stop is not None and should_stop():
            raise InferenceCancelled("The run was cancelled.", hint="Start it again when ready.")
        stop = min(start + batch_size, n)
        try:
            out = _forward_batch(network, adjacency, identity, values, start, stop, plan, options, device=device,
                                 half=half, run_layer=run_layer, agg_idx=agg_idx, gene_idx=gene_idx,
                                 pad_to=batch_size if compiled else stop - start)
        except RuntimeError as err:  # torch.OutOfMemoryError is one
            if not _is_out_of_memory(err):
                raise
            _release_memory(device)
            if stop - start == 1:
                raise BulkFormerError(
                    f"One sample does not fit in the free {device.type.upper()} memory.",
                    hint="Close other programs using that memory, or run on another device (--device cpu).",
                ) from None
            batch_size = (stop - start + 1) // 2
            _log.warning("Out of memory at batch size %d; going on with %d.", stop - start, batch_size)
            continue
        yield out
        start = stop
        if progress is not None:
            progress(stop, n)


def _forward_batch(
    network: BulkFormer,
    adjacency: Tensor,
    identity: Tensor,
    values: np.ndarray,
    start: int,
    stop: int,
    plan: ForwardPlan,
    options: RunOptions,
    *,
    device: torch.device,
    half: torch.dtype | None,
    run_layer: LayerRunner | None,
    agg_idx: Tensor | None,
    gene_idx: Tensor | None,
    pad_to: int,
) -> BatchOutput:
    """Rows ``start:stop`` through the network (repeating the last row up to ``pad_to`` rows,
    whose outputs are dropped); everything returned is on the CPU."""
    autocast = torch.autocast(device.type, dtype=half) if half is not None else nullcontext()
    rows = np.asarray(values[start:stop], dtype=np.float32)
    if pad_to > len(rows):
        rows = np.concatenate([rows, np.repeat(rows[-1:], pad_to - len(rows), axis=0)])
    x = torch.tensor(rows, dtype=torch.float32)  # a copy: inputs may be read-only
    x = x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x
    sample_emb = imputed = gene_emb = None
    with torch.inference_mode(), autocast:
        h = network.encode(x, adjacency, identity=identity, run_layer=run_layer)
        features = network.gene_features(x, h).float()[: stop - start]
        x = x[: stop - start]
        del h
        if options.embed:
            pooled = features if agg_idx is None else features.index_select(1, agg_idx)
            sample_emb = aggregate_genes(pooled, options.aggregate).cpu().numpy()
        if options.impute:
            imputed = network.impute(x, features).float().cpu().numpy()
        if gene_idx is not None:
            gene_emb = features.index_select(1, gene_idx).cpu().numpy()
            if plan.gene_table is not None:
                table = np.broadcast_to(plan.gene_table, (stop - start, *plan.gene_table.shape))
                gene_emb = np.concatenate([gene_emb, table], axis=-1)
    return BatchOutput(start, stop, sample_emb, imputed, gene_emb)


def _is_out_of_memory(err: BaseException) -> bool:
    """CUDA raises ``OutOfMemoryError``; the CPU allocator a ``RuntimeError`` that says so."""
    return isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in str(err)


def _release_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def auto_batch_size(network: BulkFormer, device: torch.device, n_samples: int) -> int:
    """A batch size that fits memory: ~1.2 GB of activations per sample for the 147M model.

    On CUDA the free memory decides (up to 16, beyond which an H100 runs no faster), and
    :func:`iter_forward` halves it if a batch still runs out. On the CPU one sample at a time is fastest per sample (measured: batches of
    4 or 16 are 1.2–2.5x slower, as the working set falls out of cache), and a compiled model
    then needs a single compile.
    """
    if device.type != "cuda":
        return 1
    cfg = network.config
    per_sample = cfg.n_genes * 4 * (6 * cfg.dim + 2 * cfg.heads * cfg.random_features)  # bytes, generous
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(int(free * 0.6 // per_sample), _MAX_CUDA_BATCH, n_samples))


def resolve_indices(gene_ids: Sequence[str], wanted: Sequence[str] | None, *, what: str) -> np.ndarray | None:
    """Positions of ``wanted`` genes in the model order; unknown IDs are a user error."""
    if wanted is None:
        return None
    position = {g: i for i, g in enumerate(gene_ids)}
    missing = [g for g in wanted if g not in position]
    if missing or not wanted:
        raise BulkFormerError(
            f"{len(missing)} of the genes given for {what} are not among the model's genes"
            + (f" (e.g. {', '.join(missing[:5])})." if missing else " (the list is empty)."),
            hint="Give Ensembl gene IDs (without version) of protein-coding genes.",
        )
    return np.fromiter((position[g] for g in wanted), dtype=np.int64, count=len(wanted))
