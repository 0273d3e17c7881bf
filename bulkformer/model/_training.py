"""Masked expression modelling: training from scratch and fine-tuning.

As in the paper: for every sample, hide a fraction (default 15 %) of its *measured* genes by
setting them to ``-10``, predict them, and take the mean squared error on the hidden genes
only. AdamW, linear warm-up then cosine decay, gradient clipping, seeded, resumable.

The resumable state (weights, optimiser, schedule, random generator, history) lives in a
hidden file beside the output folder, written atomically after every epoch; the finished model
is written with :meth:`BulkFormerModel.save` (safetensors + config.json + gene graph).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from bulkformer import __version__
from bulkformer.errors import BulkFormerError
from bulkformer.inputs._gene_lengths import UPSTREAM
from bulkformer.model import MISSING, BulkFormer, BulkFormerConfig
from bulkformer.model._bulkformer_model import BulkFormerModel
from bulkformer.model._checkpoint import check_model_folder
from bulkformer.model._graph import GeneGraph, build_coexpression_graph
from bulkformer.model._inference import choose_device
from bulkformer.model._masking import hidden_count


class Cohort(Protocol):
    """What training needs from an aligned cohort (``bulkformer.inputs._align.AlignedMatrix`` fits)."""

    values: np.ndarray
    sample_ids: tuple[str, ...]
    gene_ids: tuple[str, ...]


#: The highest learning rate accepted: AdamW's steps are ~lr per weight, and beyond 10 the
#: first step already throws every weight far out of the range the network works in.
MAX_LR = 10.0
#: Neighbours per gene in a co-expression graph: the published graphs use 20; every gene's
#: k edges are held in memory and on every GCN step.
MAX_GRAPH_K = 1_000
#: Seeds as numpy and torch both take them.
MAX_SEED = 2**32 - 1
#: What training holds per parameter: the weight, its gradient and AdamW's two moments (float32).
_TRAINING_BYTES_PER_PARAMETER = 16


def training_memory_bytes(architecture: BulkFormerConfig, *, batch_size: int) -> int:
    """A lower bound on what training ``architecture`` needs, from its shape alone (nothing is
    built): parameters ≈ 5·genes·dim + 13·layers·dim² + 25·dim² (fitted to the network's
    count within 10 %), 16 bytes each, plus one batch's activations (4 bytes × genes × dim
    per layer and sample)."""
    dim, genes = architecture.dim, architecture.n_genes
    layers = architecture.p_repeat * architecture.gb_repeat
    parameters = 5 * genes * dim + 13 * layers * dim * dim + 25 * dim * dim
    activations = 4 * batch_size * genes * dim * (layers + 2)
    return parameters * _TRAINING_BYTES_PER_PARAMETER + activations


def available_memory_bytes() -> int | None:
    """Memory the system can still hand out (Linux ``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_trainable(architecture: BulkFormerConfig, config: TrainingConfig, *,
                    device: torch.device | None = None) -> None:
    """Refuse, before anything is built, a shape whose training cannot fit in memory (a
    ``--layers 100000000`` ran for minutes and died in a traceback)."""
    need = training_memory_bytes(architecture, batch_size=config.batch_size)
    if device is not None and device.type == "cuda":
        have: int | None = torch.cuda.mem_get_info(device)[0]
    else:
        have = available_memory_bytes()
    if have is not None and need > have:
        raise BulkFormerError(
            f"Training a model of width {architecture.dim:,} with "
            f"{architecture.p_repeat * architecture.gb_repeat:,} layers on {architecture.n_genes:,} "
            f"genes needs at least {need / 1e9:,.1f} GB of memory; {have / 1e9:,.1f} GB are free.",
            hint="Choose a smaller --dim or --layers (for example --dim 32 --layers 2), a smaller "
                 "--batch-size, or a published --size.")


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings.

    Attributes:
        epochs: passes over the training samples.
        batch_size: samples per optimiser step.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_steps: steps of linear warm-up before the cosine decay to 0.
        mask_fraction: fraction of each sample's measured genes hidden per step.
        panel_fraction: fraction of training samples shown, at each step, as if measured by a
            targeted panel (a random subset of 500 genes up to all measured genes, log-uniform,
            its TPM renormalised over the panel) before masking; 0 is the paper's objective. It teaches a model to impute from the
            sparse inputs of panel assays.
        grad_clip: maximum global gradient norm.
        val_fraction: fraction of samples held out to report imputation PCC each epoch.
        graph_k: neighbours per gene when a co-expression graph is built (training from scratch).
        seed: seeds the split, the masks, the batch order and the initial weights.
        device: ``auto`` | ``cpu`` | ``cuda``.
    """

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    mask_fraction: float = 0.15
    panel_fraction: float = 0.0
    grad_clip: float = 1.0
    val_fraction: float = 0.1
    graph_k: int = 20
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        """Refuse settings that would fail only after minutes of work, or that train nothing:
        a learning rate of NaN, inf or ≤ 0 turns every weight into NaN."""
        problems = []
        for name in ("lr", "weight_decay", "grad_clip", "mask_fraction", "panel_fraction", "val_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"{name} must be a finite number, not {value!r}")
        if not problems:
            if self.lr <= 0:
                problems.append(f"the learning rate must be above 0, not {self.lr:g}")
            if self.lr > MAX_LR:
                problems.append(f"a learning rate of {self.lr:g} makes every weight NaN (at most {MAX_LR:g})")
            if self.weight_decay < 0 or self.grad_clip <= 0:
                problems.append("weight_decay must be ≥ 0 and grad_clip > 0")
            if not 0 < self.mask_fraction < 1:
                problems.append(f"mask_fraction must lie between 0 and 1, not {self.mask_fraction:g}")
            if not 0 <= self.panel_fraction <= 1 or not 0 <= self.val_fraction < 1:
                problems.append("panel_fraction must lie in [0, 1] and val_fraction in [0, 1)")
        if self.batch_size < 1 or min(self.epochs, self.warmup_steps) < 0:  # 0 epochs: the untrained model
            problems.append("batch_size must be at least 1, epochs and warmup_steps at least 0")
        if not 1 <= self.graph_k <= MAX_GRAPH_K:
            problems.append(f"graph_k must lie between 1 and {MAX_GRAPH_K:,} neighbours per gene, "
                            f"not {self.graph_k:,}")
        if not 0 <= self.seed <= MAX_SEED:
            problems.append(f"the seed must lie between 0 and {MAX_SEED:,}, not {self.seed:,}")
        if problems:
            raise BulkFormerError(f"Cannot train with these settings: {'; '.join(problems)}.",
                                  hint="Leave the options out for the defaults (learning rate 1e-3, "
                                       "graph_k 20, seed 0).")


@dataclass(frozen=True)
class EpochReport:
    """One line of the training history."""

    epoch: int
    step: int
    train_loss: float
    val_loss: float
    val_pcc: float
    seconds: float


@dataclass(frozen=True)
class StepProgress:
    """Passed to the progress callback after every optimiser step."""

    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float


@dataclass(frozen=True)
class TrainingResult:
    model: BulkFormerModel
    history: tuple[EpochReport, ...]
    output_dir: Path


def mask_measured(values: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Hide :func:`~bulkformer.model._masking.hidden_count` of each sample's measured genes
    (``fraction × measured`` rounded half up, at least one) by setting them to -10.

    Shapes:
        values: ``[batch, genes]`` → (masked values ``[batch, genes]``, hidden bool ``[batch, genes]``)
    """
    measured = values != MISSING
    scores = torch.rand(values.shape, generator=generator).to(values.device)
    scores = scores.masked_fill(~measured, 2.0)  # unmeasured genes are never picked
    n_hide = torch.from_numpy(hidden_count(measured.sum(1).cpu().numpy(), fraction)).to(values.device)
    rank = scores.argsort(dim=1).argsort(dim=1)
    hidden = (rank < n_hide.unsqueeze(1)) & measured
    return values.masked_fill(hidden, MISSING), hidden


def simulate_panels(values: Tensor, fraction: float, generator: torch.Generator, *, min_genes: int = 500) -> Tensor:
    """Show ``fraction`` of the samples as if only a random gene panel had been measured.

    Shapes:
        values: ``[batch, genes]`` → ``[batch, genes]`` with the genes outside each panel at -10.
    """
    measured = values != MISSING
    n_measured = measured.sum(1).float()
    chosen = torch.rand(values.shape[0], generator=generator) < fraction
    low = torch.log(torch.clamp(torch.full_like(n_measured, float(min_genes)), max=n_measured))
    size = torch.exp(low + torch.rand(values.shape[0], generator=generator) * (torch.log(n_measured) - low))
    scores = torch.rand(values.shape, generator=generator).masked_fill(~measured.cpu(), 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    outside = ((rank >= size.round().long().unsqueeze(1)) & chosen.unsqueeze(1)).to(values.device)
    # A panel's reads all fall on its genes, so its TPM is normalised over the panel alone.
    tpm = torch.expm1(values.clamp_min(0)).masked_fill(outside | ~measured, 0.0)
    scale = torch.where(chosen.to(values.device), 1e6 / tpm.sum(1).clamp_min(1e-12), torch.ones_like(n_measured))
    rescaled = torch.log1p(tpm * scale.unsqueeze(1))
    shown = torch.where(chosen.to(values.device).unsqueeze(1) & measured, rescaled, values)
    return shown.masked_fill(outside, MISSING)


def state_path_for(output_dir: Path) -> Path:
    """Where the resumable state of a run writing ``output_dir`` is kept."""
    return output_dir.parent / f".{output_dir.name}.resume.pt"


def train(
    cohort: Cohort,
    *,
    output_dir: Path,
    start_from: BulkFormerModel | None = None,
    architecture: BulkFormerConfig | None = None,
    config: TrainingConfig = TrainingConfig(),
    resume: bool = True,
    progress: Callable[[StepProgress], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    extra_facts: dict[str, Any] | None = None,
    gene_lengths: str = UPSTREAM,
) -> TrainingResult:
    """Train (``architecture``) or fine-tune (``start_from``) on an aligned cohort.

    ``cohort.values`` must be aligned to the model's gene order (``-10`` for genes the cohort
    did not measure). From scratch, the gene graph is built from the training samples'
    co-expression; fine-tuning keeps the model's own graph. ``gene_lengths``: the table the
    cohort's counts were normalised with (:mod:`bulkformer.inputs._gene_lengths`); the model records
    it so that its users' inputs are normalised the same way.
    """
    output_dir = Path(output_dir)
    check_model_folder(output_dir)  # before any work: never fails only when saving at the end
    values = np.asarray(cohort.values, dtype=np.float32)
    gene_ids = tuple(cohort.gene_ids)
    n_genes = _check_cohort(values, gene_ids, start_from=start_from, architecture=architecture)

    device = choose_device(config.device)
    if architecture is not None:
        check_trainable(architecture, config, device=device)
    torch.manual_seed(config.seed)
    val_idx, train_idx = _split(values.shape[0], config)
    run = _start_run(values[train_idx], start_from=start_from, architecture=architecture, config=config,
                     device=device)
    state_file = state_path_for(output_dir)
    if resume and state_file.is_file():
        _load_state(state_file, run, n_genes)
    adjacency = run.graph.normalized_adjacency(device=device)

    val_x = torch.from_numpy(values[val_idx]).to(device)
    val_masked, val_hidden = mask_measured(val_x, config.mask_fraction, torch.Generator().manual_seed(config.seed + 1))
    for epoch in range(run.epoch, config.epochs):
        began = time.perf_counter()
        train_loss = _train_epoch(run, adjacency, values, train_idx, config, device=device, progress=progress)
        val_loss, val_pcc = _evaluate(run.network, adjacency, val_x, val_masked, val_hidden, config.batch_size)
        report = EpochReport(epoch + 1, run.step, train_loss, val_loss, val_pcc, time.perf_counter() - began)
        _check_finite(run, report)
        run.history.append(report)
        run.epoch = epoch + 1
        _save_state(state_file, run)
        if on_epoch is not None:
            on_epoch(report)

    run.network.eval()
    facts = _training_facts(cohort, values, config, run.history, val_idx=val_idx, train_idx=train_idx,
                            start_from=start_from, extra_facts=extra_facts)
    model = BulkFormerModel(run.network, run.graph, gene_ids, checksum="", source=str(output_dir),
                            is_demo=bool(facts.get("demo", False)), device=str(device), training=facts,
                            gene_lengths=gene_lengths)
    model.save(output_dir, package_version=__version__)
    return TrainingResult(BulkFormerModel.from_folder(output_dir, device=str(device)), tuple(run.history), output_dir)


@dataclass
class _Run:
    """The moving parts of one training run; mutable, because every step advances them.
    ``epoch``, ``step``: epochs and optimiser steps done; the schedule decays to 0 over ``total_steps``."""

    network: BulkFormer
    graph: GeneGraph
    optimizer: torch.optim.Optimizer
    schedule: Any
    generator: torch.Generator
    steps_per_epoch: int
    total_steps: int
    history: list[EpochReport] = dataclasses.field(default_factory=list)
    epoch: int = 0
    step: int = 0


def _start_run(train_values: np.ndarray, *, start_from: BulkFormerModel | None,
               architecture: BulkFormerConfig | None, config: TrainingConfig, device: torch.device) -> _Run:
    """A fresh run: a copy of ``start_from`` and its graph, or a new network with a co-expression
    graph of the training samples; AdamW with warm-up then cosine decay; the seeded generator."""
    if start_from is not None:
        network = copy.deepcopy(start_from.network)  # the caller's model stays as it was
        graph = start_from.graph
    else:
        network = BulkFormer(architecture)  # type: ignore[arg-type]
        graph = _graph_from(train_values, k=config.graph_k)
    network.to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_values) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(config.warmup_steps, total_steps))
    return _Run(network, graph, optimizer, schedule, torch.Generator().manual_seed(config.seed),
                steps_per_epoch, total_steps)


def _train_epoch(run: _Run, adjacency: Tensor, values: np.ndarray, train_idx: np.ndarray, config: TrainingConfig,
                 *, device: torch.device, progress: Callable[[StepProgress], None] | None) -> float:
    """One pass over the training rows in a seeded random order, in batches; → the mean loss."""
    run.network.train()
    epoch_order = train_idx[torch.randperm(len(train_idx), generator=run.generator).numpy()]
    losses = []
    for start in range(0, len(epoch_order), config.batch_size):
        x = torch.from_numpy(values[epoch_order[start : start + config.batch_size]]).to(device)
        losses.append(_optimiser_step(run, adjacency, x, config))
        run.step += 1
        if not math.isfinite(losses[-1]):
            raise _diverged(run, config, f"the loss of step {run.step} is {losses[-1]}")
        if progress is not None:
            progress(StepProgress(run.epoch + 1, config.epochs, run.step, run.total_steps, losses[-1]))
    return float(np.mean(losses))


class TrainingDiverged(BulkFormerError):
    """Training produced a non-finite loss or weight: it stopped, and nothing was saved."""


def _diverged(run: _Run, config: TrainingConfig, what: str) -> TrainingDiverged:
    return TrainingDiverged(
        f"Training stopped in epoch {run.epoch + 1}: {what}, so the weights are no longer numbers. "
        f"Nothing was saved.",
        hint=f"Train again with a lower learning rate than {config.lr:g} (--lr; the default is "
             f"1e-3) and --restart, so the run does not resume from the last saved epoch.")


def _check_finite(run: _Run, report: EpochReport) -> None:
    """Stop before an epoch whose weights are not all finite is kept (the last step's update
    can turn them NaN after its loss was computed)."""
    if not math.isfinite(report.train_loss) or not all(
            bool(torch.isfinite(p).all()) for p in run.network.parameters()):
        raise TrainingDiverged(
            f"Training stopped after epoch {report.epoch}: its weights are no longer finite "
            f"numbers. Nothing was saved.",
            hint="Train again with a lower learning rate (--lr; the default is 1e-3) and --restart.")


def _check_cohort(values: np.ndarray, gene_ids: tuple[str, ...], *, start_from: BulkFormerModel | None,
                  architecture: BulkFormerConfig | None) -> int:
    """The model's number of genes, after checking that exactly one model is given and that the
    cohort fits it (its genes, their order, at least 2 samples)."""
    if (start_from is None) == (architecture is None):
        raise BulkFormerError("Give either a model to fine-tune or an architecture to train from scratch.")
    n_genes = start_from.config.n_genes if start_from else architecture.n_genes  # type: ignore[union-attr]
    if values.ndim != 2 or values.shape[1] != n_genes or len(gene_ids) != n_genes:
        raise BulkFormerError(
            f"The cohort has {values.shape[-1]} genes but the model has {n_genes}.",
            hint="Prepare the cohort with the model's gene order (bulkformer.prepare(..., gene_order=model.gene_ids)).",
        )
    if start_from is not None and gene_ids != start_from.gene_ids:
        raise BulkFormerError("The cohort's gene order differs from the model's.",
                              hint="Prepare the cohort with gene_order=model.gene_ids.")
    if values.shape[0] < 2:
        raise BulkFormerError("Training needs at least 2 samples.", hint="Add more samples to the cohort.")
    return n_genes


def _split(n_samples: int, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows, training rows), each sorted: a seeded ``val_fraction`` of the samples,
    at least one when ``val_fraction`` > 0."""
    order = np.random.default_rng(config.seed).permutation(n_samples)
    n_val = max(1, round(n_samples * config.val_fraction)) if config.val_fraction > 0 else 0
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def _optimiser_step(run: _Run, adjacency: Tensor, x: Tensor, config: TrainingConfig) -> float:
    """One step on a batch ``x`` ``[batch, genes]``: panels (if asked), masking, MSE on the hidden
    genes, clipped update; → the loss."""
    shown = simulate_panels(x, config.panel_fraction, run.generator) if config.panel_fraction > 0 else x
    masked, hidden = mask_measured(shown, config.mask_fraction, run.generator)
    pred = run.network(masked, adjacency)
    loss = torch.nn.functional.mse_loss(pred[hidden], x[hidden])
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.network.parameters(), config.grad_clip)
    run.optimizer.step()
    run.schedule.step()
    return loss.item()


def _training_facts(cohort: Cohort, values: np.ndarray, config: TrainingConfig, history: Sequence[EpochReport], *,
                    val_idx: np.ndarray, train_idx: np.ndarray, start_from: BulkFormerModel | None,
                    extra_facts: dict[str, Any] | None) -> dict[str, Any]:
    """What the saved model records about how it was trained (its config.json ``training``)."""
    return {
        "objective": f"masked expression modelling, {config.mask_fraction:.0%} of measured genes hidden",
        "training": dataclasses.asdict(config),
        "data": {"n_samples": int(values.shape[0]), "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
                 "n_genes": int(values.shape[1]), "measured_genes": int((values != MISSING).any(0).sum())},
        "history": [dataclasses.asdict(h) for h in history],
        "metrics": {"val_pcc": history[-1].val_pcc if history else None,
                    "val_loss": history[-1].val_loss if history else None},
        "fine_tuned_from": start_from.source if start_from else None,
        "validation_samples": [cohort.sample_ids[i] for i in val_idx],
        **(extra_facts or {}),
    }


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two flat arrays (NaN when either is constant)."""
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def _evaluate(network: BulkFormer, adjacency: Tensor, x: Tensor, masked: Tensor, hidden: Tensor,
              batch_size: int) -> tuple[float, float]:
    """MSE and pooled PCC on the hidden genes of the held-out samples."""
    if x.shape[0] == 0:
        return float("nan"), float("nan")
    network.eval()
    with torch.inference_mode():
        pred = torch.cat([network(masked[i : i + batch_size], adjacency) for i in range(0, x.shape[0], batch_size)])
    truth, guess = x[hidden].cpu().numpy(), pred[hidden].cpu().numpy()
    return float(np.mean((truth - guess) ** 2)), pearson(truth, guess)


def _graph_from(values: np.ndarray, *, k: int) -> GeneGraph:
    """Co-expression graph over the measured genes; unmeasured genes stay unconnected."""
    measured = np.flatnonzero((values != MISSING).all(axis=0))
    sub = build_coexpression_graph(values[:, measured], k=k)
    mapping = torch.from_numpy(measured)
    return GeneGraph(mapping[sub.edge_index], sub.weight, values.shape[1])


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _load_state(path: Path, run: _Run, n_genes: int) -> None:
    """Restore an interrupted run written by :func:`_save_state` into ``run`` and torch's global
    generator."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        run.network.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.schedule.load_state_dict(state["schedule"])
        run.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
        run.history = [EpochReport(**h) for h in state["history"]]
        run.epoch = int(state["epoch"])
        run.graph = GeneGraph(state["graph_edges"], state["graph_weight"], n_genes)
    except Exception as err:  # unpickling, missing keys, another architecture's tensors
        raise BulkFormerError(
            f"The saved state of an interrupted run, {path}, cannot be resumed: it is "
            f"damaged or from a run with other settings ({type(err).__name__}).",
            hint="Start over with --restart (or delete that file), or resume with the "
                 "settings of the interrupted run.") from err
    run.step = run.epoch * run.steps_per_epoch


def _save_state(path: Path, run: _Run) -> None:
    """Atomic write of everything needed to resume (tensors and plain values only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({
        "model": run.network.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "generator": run.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": [dataclasses.asdict(h) for h in run.history],
        "epoch": run.epoch,
        "graph_edges": run.graph.edge_index,
        "graph_weight": run.graph.weight,
    }, tmp)
    os.replace(tmp, path)
