"""``bulkformer train``: masked expression modelling on the user's cohort, from scratch or fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from bulkformer.cli._common import (
    ValueTypeOption,
    check_writable,
    out,
    prepare_input,
    user_errors,
)
from bulkformer.errors import check_choice

if TYPE_CHECKING:  # heavy imports (torch) happen inside the command
    from bulkformer.inputs._pipeline import PreparedInput
    from bulkformer.model import BulkFormerConfig
    from bulkformer.model._bulkformer_model import BulkFormerModel
    from bulkformer.model._training import TrainingConfig, TrainingResult


def train(
    input_path: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Expression table of your cohort (any format `extract` reads).",
        exists=True, dir_okay=False)],
    output_dir: Annotated[Path, typer.Argument(
        metavar="OUTPUT_DIR", help="Folder for the trained model (model.safetensors + config.json "
        "+ gene graph). Written only when training ends; re-running resumes where it stopped.")],
    start_from: Annotated[str | None, typer.Option(
        "--model", help="Fine-tune this model (demo, 37M … 147M, v1, or a path). Leave out to "
        "train a new model from scratch.", show_default=False)] = None,
    size: Annotated[str, typer.Option(
        help="From scratch: a published size (37M, 50M, 93M, 127M, 147M) or 'custom' "
        "(then --dim/--layers/--heads).")] = "custom",
    dim: Annotated[int, typer.Option(min=2, help="Custom size: token width.")] = 32,
    layers: Annotated[int, typer.Option(min=1, help="Custom size: Performer layers.")] = 2,
    heads: Annotated[int, typer.Option(min=1, help="Custom size: attention heads.")] = 8,
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 1e-3,
    mask_fraction: Annotated[float, typer.Option(
        min=0.01, max=0.9, help="Share of each sample's measured genes hidden per step.")] = 0.15,
    val_fraction: Annotated[float, typer.Option(
        min=0.0, max=0.5, help="Share of samples held out to report imputation accuracy.")] = 0.1,
    panel_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of samples shown as if measured by a random gene panel "
        "(teaches imputation from targeted panels; 0 = the paper's objective).")] = 0.0,
    graph_k: Annotated[int, typer.Option(min=1, help="From scratch: co-expression neighbours per gene.")] = 20,
    warmup_steps: Annotated[int, typer.Option(min=0)] = 50,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1)] = 0,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
    value_type: ValueTypeOption = "auto",
    demo: Annotated[bool, typer.Option(
        "--demo", help="Label the result as a demo model (shown on every page and file).")] = False,
    resume: Annotated[bool, typer.Option("--resume/--restart", help="Continue an interrupted run.")] = True,
) -> None:
    """Train BulkFormer on your cohort by masked expression modelling, or fine-tune a model."""
    with user_errors():
        from bulkformer.genes import protein_coding_ids
        from bulkformer.model._checkpoint import check_model_folder
        from bulkformer.model._training import TrainingConfig, check_trainable

        check_model_folder(output_dir)  # before minutes of work, and before any file is touched
        check_writable(output_dir)
        config = TrainingConfig(epochs=epochs, batch_size=batch_size, lr=lr, mask_fraction=mask_fraction,
                                panel_fraction=panel_fraction, val_fraction=val_fraction, graph_k=graph_k, warmup_steps=warmup_steps,
                                seed=seed, device=device)
        if not start_from:  # the shape fits in memory, before the input is read
            check_trainable(_architecture(size, dim=dim, layers=layers, heads=heads,
                                          n_genes=len(protein_coding_ids()), demo=demo), config)
        base, prepared = _base_and_cohort(input_path, start_from, device=device, value_type=value_type)
        architecture = None if base else _architecture(size, dim=dim, layers=layers, heads=heads,
                                                       n_genes=len(prepared.aligned.gene_ids), demo=demo)
        result = _train_with_progress(prepared, output_dir, base=base, architecture=architecture, config=config,
                                      resume=resume, demo=demo, source_file=input_path.name)
        out.print(f"[green]Saved[/green] {result.model.describe()} to {output_dir}")


def _base_and_cohort(input_path: Path, start_from: str | None, *, device: str,
                     value_type: str) -> tuple[BulkFormerModel | None, PreparedInput]:
    """The model to fine-tune (``None`` from scratch) and the cohort prepared in its gene order
    (from scratch: the protein-coding genes), normalised with its gene lengths."""
    from bulkformer.genes import protein_coding_ids
    from bulkformer.model._bulkformer_model import BulkFormerModel

    base = BulkFormerModel.load(start_from, device=device) if start_from else None
    gene_order = base.gene_ids if base else protein_coding_ids()
    return base, prepare_input(input_path, tuple(gene_order), gene_lengths=_gene_lengths(base), value_type=value_type,
                          metadata=None)


def _gene_lengths(base: BulkFormerModel | None) -> str:
    """A fine-tuned model keeps its base's normalisation; a new one uses the published models'."""
    from bulkformer.inputs._gene_lengths import UPSTREAM

    return base.gene_lengths if base else UPSTREAM


def _architecture(size: str, *, dim: int, layers: int, heads: int, n_genes: int, demo: bool) -> BulkFormerConfig:
    """A new model's shape: a published size, or ``custom`` from ``dim``/``layers``/``heads``."""
    from bulkformer.model import PRESETS, BulkFormerConfig

    check_choice(size, ("custom", *PRESETS), what="size")
    shape = PRESETS[size] if size != "custom" else BulkFormerConfig(dim=dim, p_repeat=layers, heads=heads)
    return BulkFormerConfig.from_dict({**shape.to_dict(), "n_genes": n_genes, "name": "demo" if demo else shape.name})


def _train_with_progress(prepared: PreparedInput, output_dir: Path, *, base: BulkFormerModel | None,
                         architecture: BulkFormerConfig | None, config: TrainingConfig, resume: bool, demo: bool,
                         source_file: str) -> TrainingResult:
    """Run :func:`bulkformer.model._training.train` under a progress bar of its steps, printing a line per epoch."""
    from bulkformer.model._training import train as run_training

    columns = (TextColumn("Epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("steps  loss {task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("train", total=None, epoch="-", loss="-")
        return run_training(
            prepared.aligned, output_dir=output_dir, start_from=base, architecture=architecture,
            config=config, resume=resume,
            progress=lambda p: bar.update(task, completed=p.step, total=p.total_steps,
                                          epoch=f"{p.epoch}/{p.epochs}", loss=f"{p.loss:.3f}"),
            on_epoch=lambda r: bar.console.print(
                f"epoch {r.epoch}: train loss {r.train_loss:.4f}, held-out loss {r.val_loss:.4f}, "
                f"held-out imputation PCC {r.val_pcc:.3f} ({r.seconds:.0f} s)"),
            extra_facts={"demo": demo, "source_file": source_file, "qc": prepared.qc.summary_lines()},
            gene_lengths=_gene_lengths(base),
        )
