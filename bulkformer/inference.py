"""Batched forward passes: sample embeddings, gene-level embeddings and imputed expression.

One pass over the cohort produces every requested output, batch by batch, so the per-gene
embeddings (20,010 × 640 floats per sample for the 147M model) never exist for the whole
cohort at once: only the aggregated sample vectors, the imputed values and the embeddings of
the genes the caller asked for are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from bulkformer.errors import BulkFormerError
from bulkformer.model.bulkformer import BulkFormer

Aggregate = Literal["max", "mean", "median", "all"]
AGGREGATES: tuple[str, ...] = ("max", "mean", "median", "all")
Precision = Literal["auto", "fp32", "bf16"]

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


def resolve_precision(precision: str, device: torch.device) -> Literal["fp32", "bf16"]:
    """``"auto"``: bf16 autocast where the hardware runs bf16 matrix products natively
    (CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX), else float32."""
    if precision in ("fp32", "bf16"):
        return precision  # type: ignore[return-value]
    if precision != "auto":
        raise BulkFormerError(f"Unknown precision {precision!r}.", hint="Use auto, fp32 or bf16.")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    cpu = torch.cpu
    native = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        cpu, "_is_amx_tile_supported", lambda: False)()
    return "bf16" if device.type == "cpu" and native else "fp32"


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
    if how not in AGGREGATES:
        raise BulkFormerError(f"Unknown aggregation {how!r}.", hint=f"Use one of {', '.join(AGGREGATES)}.")


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
    """What to compute in a pass.

    Attributes:
        embed: aggregate per-gene embeddings into sample embeddings.
        impute: run the expression head.
        aggregate: ``max | mean | median | all``.
        aggregate_index: model gene positions to pool over (``None``: all genes).
        gene_index: model gene positions whose per-gene embeddings are returned (``None``: none).
        gene_table: rows appended to each returned gene embedding (e.g. ESM2), ``[k, e]``.
    """

    embed: bool = True
    impute: bool = True
    aggregate: str = "mean"
    aggregate_index: np.ndarray | None = None
    gene_index: np.ndarray | None = None
    gene_table: np.ndarray | None = None


def iter_forward(
    network: BulkFormer,
    adjacency: Tensor,
    identity: Tensor,
    values: np.ndarray,
    plan: ForwardPlan,
    *,
    batch_size: int,
    device: torch.device,
    precision: Precision = "auto",
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[BatchOutput]:
    """Run the network over ``values`` batch by batch, yielding what ``plan`` asks for.

    ``network``, ``adjacency`` and ``identity`` must already be on ``device``.

    Shapes:
        values: ``[samples, genes]`` float32, ``-10`` for missing genes.
    """
    check_aggregate(plan.aggregate)
    n = values.shape[0]
    use_bf16 = resolve_precision(precision, device) == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    agg_idx = None if plan.aggregate_index is None else torch.as_tensor(plan.aggregate_index, device=device)
    gene_idx = None if plan.gene_index is None else torch.as_tensor(plan.gene_index, device=device)
    network.eval()
    for start in range(0, n, batch_size):
        if should_stop is not None and should_stop():
            raise InferenceCancelled("The run was cancelled.", hint="Start it again when ready.")
        stop = min(start + batch_size, n)
        x = torch.tensor(values[start:stop], dtype=torch.float32, device=device)  # a copy: inputs may be read-only
        with torch.inference_mode(), autocast:
            h = network.encode(x, adjacency, identity=identity)
            features = network.gene_features(x, h).float()
            sample_emb = imputed = gene_emb = None
            if plan.embed:
                pooled = features if agg_idx is None else features.index_select(1, agg_idx)
                sample_emb = aggregate_genes(pooled, plan.aggregate).cpu().numpy()
            if plan.impute:
                imputed = network.impute(x, features).float().cpu().numpy()
            if gene_idx is not None:
                gene_emb = features.index_select(1, gene_idx).cpu().numpy()
                if plan.gene_table is not None:
                    table = np.broadcast_to(plan.gene_table, (stop - start, *plan.gene_table.shape))
                    gene_emb = np.concatenate([gene_emb, table], axis=-1)
        yield BatchOutput(start, stop, sample_emb, imputed, gene_emb)
        if progress is not None:
            progress(stop, n)


def auto_batch_size(network: BulkFormer, device: torch.device, n_samples: int) -> int:
    """A batch size that fits memory: ~1.2 GB of activations per sample for the 147M model.

    On CUDA the free memory decides (up to 64); on the CPU small batches are as fast as large
    ones, so at most 4.
    """
    cfg = network.config
    heads_features = cfg.heads * max(1, int(cfg.dim_head * math.log(cfg.dim_head)))
    per_sample = cfg.n_genes * 4 * (6 * cfg.dim + 2 * heads_features)  # bytes, generous
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cap = max(1, int(free * 0.6 // per_sample))
        limit = 64
    else:
        cap, limit = max(1, int(4e9 // per_sample)), 4
    return max(1, min(cap, limit, n_samples))


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
