"""``bulkformer plan / run-shard / gather / extract-cohort / workflow init``: cohorts too large for
memory, read a block of samples at a time, resumable, and spread over a cluster by Snakemake.

``extract-cohort`` does all three steps in one process (rerun the same command after a stop to
continue); the others are the steps the shipped Snakemake workflow runs as separate jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from bulkformer.choices import (
    AGGREGATION,
    COMPILE,
    IMPUTE_MODE,
    PRECISION,
    Aggregate,
    Compile,
    ImputeMode,
    Precision,
)
from bulkformer.cli._common import (
    DataDirOption,
    ModelDirOption,
    ModelOption,
    ValueTypeOption,
    err,
    load_model,
    out,
    user_errors,
)
from bulkformer.errors import BulkFormerError

CohortOutput = Literal["embeddings", "expression"]
DeviceOption = Annotated[str, typer.Option(
    help="Where to run: 'auto' (a CUDA GPU when there is one), 'cpu', 'cuda', 'cuda:1' …")]
WorkArgument = Annotated[Path, typer.Argument(
    metavar="WORK", help="The cohort's work folder: plan.json, finished blocks and their records.",
    file_okay=False)]
InputArgument = Annotated[Path, typer.Argument(
    metavar="INPUT", help="The cohort: samples-as-rows CSV/TSV or Parquet, h5ad, or an ARCHS4 .h5 file "
    "(other tables are read whole, within the memory budget).", exists=True, dir_okay=False)]
SamplesOption = Annotated[Path | None, typer.Option(
    "--samples", help="Text file with the sample IDs to run, one per line (e.g. GSM accessions); "
    "default: every sample.", exists=True, dir_okay=False, show_default=False)]
ChunkOption = Annotated[int | None, typer.Option(
    "--chunk", min=1, help="Samples per block (each finished block is recorded; default 1,000 or what "
    "the memory budget allows).", show_default=False)]
ShardsOption = Annotated[int, typer.Option("--shards", min=1, help="Shards (jobs) the blocks are split into.")]
TypeOption = Annotated[CohortOutput, typer.Option(
    "--type", "-t", help="embeddings: one embedding per sample; expression: log1p TPM for every model gene.")]
ImputeModeOption = Annotated[ImputeMode, typer.Option("--impute-mode", help=f"expression: {IMPUTE_MODE.cli_help()}")]
AggregateOption = Annotated[Aggregate, typer.Option(help=f"Gene pooling: {AGGREGATION.cli_help()}")]
PrecisionOption = Annotated[Precision, typer.Option(
    help=f"{PRECISION.cli_help()} Fixed in the plan ('auto' is decided once, for --device).")]
CompileOption = Annotated[Compile, typer.Option(
    "--compile", help=f"{COMPILE.cli_help()} Fixed in the plan ('auto' means off).")]
BatchSizeOption = Annotated[int | None, typer.Option(min=1, help="Samples per forward pass.", show_default=False)]
RestartOption = Annotated[bool, typer.Option(
    "--restart", help="Start over: delete the work folder's plan and finished blocks first.")]

workflow_app = typer.Typer(help="The Snakemake workflow that spreads a cohort over a cluster or several GPUs.",
                           no_args_is_help=True)


class _Speed(ProgressColumn):
    """Samples per second since the bar started (rich's own speed column counts bytes)."""

    def render(self, task) -> Text:  # type: ignore[no-untyped-def]
        speed = task.speed
        return Text(f"{speed:,.1f} samples/s" if speed else "… samples/s")


@contextmanager
def _cohort_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("samples"), _Speed(),
               TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("run", total=None)
        started = [False]

        def report(done: int, total: int) -> None:
            if not started[0]:  # blocks finished before this run are not counted in the speed
                bar.reset(task, total=total, completed=done)
                started[0] = True
            bar.update(task, completed=done, total=total)

        yield report


def _read_samples(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BulkFormerError(f"Could not read the sample list {path}: {exc}.",
                              hint="Give a plain text file with one sample ID per line.") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _make_plan(input_path: Path, work: Path, *, samples: Path | None, chunk: int | None, shards: int, kind: str,
               impute_mode: str, value_type: str, model: str, model_dir: Path | None, data_dir: Path | None,
               precision: str, compile_mode: str, aggregate: str, batch_size: int | None, device: str,
               restart: bool):
    """Load the model, decide the plan, write it (or find the same one there); returns (plan, model)."""
    from bulkformer.cohort import make_plan, write_plan
    from bulkformer.model import RunOptions
    from bulkformer.model._inference import choose_device, resolve_precision

    loaded = load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
    fixed_precision = resolve_precision(precision, choose_device(device))
    options = RunOptions(embed=kind == "embeddings", impute=kind == "expression", aggregate=aggregate,
                         batch_size=batch_size, precision=fixed_precision,
                         compile="off" if compile_mode == "auto" else compile_mode)
    plan = make_plan(input_path, model=loaded, model_spec=model, options=options, output=kind,
                     impute_mode=impute_mode, samples=_read_samples(samples), chunk=chunk, n_shards=shards,
                     value_type=value_type)
    fresh = write_plan(plan, work, restart=restart)
    facts = plan.facts
    out.print(f"{'Planned' if fresh else 'Found the same plan for'} {plan.n_samples:,} samples in "
              f"{len(plan.blocks):,} blocks of up to {facts['block_size']:,}, {len(plan.shards)} shard(s); "
              f"values: {facts['values']['value']} ({facts['values']['reason']}); precision "
              f"{fixed_precision}, compile {options.compile}.", markup=False)
    out.print(f"Plan {plan.hash[:12]}… in {work}", markup=False)
    return plan, loaded


def plan(
    input_path: InputArgument,
    work: WorkArgument,
    samples: SamplesOption = None,
    chunk: ChunkOption = None,
    shards: ShardsOption = 1,
    kind: TypeOption = "embeddings",
    impute_mode: ImputeModeOption = "filled",
    value_type: ValueTypeOption = "auto",
    model: ModelOption = "demo",
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    precision: PrecisionOption = "fp32",
    compile_mode: CompileOption = "off",
    aggregate: AggregateOption = "mean",
    batch_size: BatchSizeOption = None,
    device: DeviceOption = "auto",
    restart: RestartOption = False,
) -> None:
    """Plan a large cohort once (layout, genes, value type, samples, model, options, shards) into WORK."""
    with user_errors():
        _make_plan(input_path, work, samples=samples, chunk=chunk, shards=shards, kind=kind,
                   impute_mode=impute_mode, value_type=value_type, model=model, model_dir=model_dir,
                   data_dir=data_dir, precision=precision, compile_mode=compile_mode, aggregate=aggregate,
                   batch_size=batch_size, device=device, restart=restart)
        out.print(f"Next: bulkformer run-shard {escape(str(work))} --shard 0 (… one per shard), then "
                  f"bulkformer gather {escape(str(work))} OUTPUT")


def run_shard(
    work: WorkArgument,
    shard: Annotated[int, typer.Option("--shard", help="Which shard to run (0, 1, …).")],
    device: DeviceOption = "auto",
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    restart: Annotated[bool, typer.Option("--restart", help="Compute this shard's finished blocks again.")] = False,
) -> None:
    """Run one shard of a plan; finished blocks are kept, so a rerun continues where it stopped."""
    with user_errors():
        from bulkformer.cohort import read_plan
        from bulkformer.cohort import run_shard as run

        the_plan = read_plan(work)
        the_plan.shard_blocks(shard)  # an index out of range is refused before the model loads
        loaded = load_model(the_plan.facts["model"]["spec"], device=device, model_dir=model_dir, data_dir=data_dir)
        with _cohort_bar(f"Shard {shard}") as report:
            outcome = run(the_plan, work, shard, loaded, restart=restart, progress=report)
        out.print(f"Shard {shard}: {outcome.n_blocks_run} block(s) computed, {outcome.n_blocks_skipped} already "
                  f"finished ({outcome.n_samples:,} samples).", markup=False)


def gather(
    work: WorkArgument,
    output: Annotated[Path, typer.Argument(metavar="OUTPUT", help="Result file: .parquet, .csv, .tsv or .h5ad.",
                                           dir_okay=False)],
) -> None:
    """Gather a finished plan's blocks into OUTPUT (written a block at a time), with QC and a report."""
    with user_errors():
        from bulkformer.cohort import check_output, read_plan

        check_output(output)
        _gather(read_plan(work), work, output)


def _gather(the_plan, work: Path, output: Path) -> None:  # type: ignore[no-untyped-def]
    from bulkformer.cohort import gather as gather_blocks

    with _cohort_bar("Writing") as report:
        outcome = gather_blocks(the_plan, work, output, progress=report)
    for line in outcome.qc_lines:
        out.print(line, markup=False)
    out.print(f"[green]Wrote[/green] {escape(str(output))} ({outcome.n_samples:,} samples); QC per sample: "
              f"{escape(str(outcome.qc_table))}; report: {escape(str(outcome.report))}")
    if the_plan.facts["model"]["is_demo"]:
        err.print("Reminder: these results come from the DEMO model (simulated data), not a published model.",
                  style="yellow", markup=False)


def extract_cohort(
    input_path: InputArgument,
    output: Annotated[Path, typer.Argument(metavar="OUTPUT", help="Result file: .parquet, .csv, .tsv or .h5ad.",
                                           dir_okay=False)],
    work: Annotated[Path | None, typer.Option(
        "--work", help="Work folder (plan, finished blocks); default: OUTPUT's name + '.work' beside it.",
        file_okay=False, show_default=False)] = None,
    samples: SamplesOption = None,
    chunk: ChunkOption = None,
    kind: TypeOption = "embeddings",
    impute_mode: ImputeModeOption = "filled",
    value_type: ValueTypeOption = "auto",
    model: ModelOption = "demo",
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    precision: PrecisionOption = "fp32",
    compile_mode: CompileOption = "off",
    aggregate: AggregateOption = "mean",
    batch_size: BatchSizeOption = None,
    device: DeviceOption = "auto",
    restart: RestartOption = False,
) -> None:
    """Embeddings or expression for a cohort of any size on one machine: planned, streamed a block at a
    time, resumable (run the same command again after a stop)."""
    with user_errors():
        from bulkformer.cohort import check_output
        from bulkformer.cohort import run_shard as run

        check_output(output)
        work = work if work is not None else output.with_name(output.name + ".work")
        the_plan, loaded = _make_plan(
            input_path, work, samples=samples, chunk=chunk, shards=1, kind=kind, impute_mode=impute_mode,
            value_type=value_type, model=model, model_dir=model_dir, data_dir=data_dir, precision=precision,
            compile_mode=compile_mode, aggregate=aggregate, batch_size=batch_size, device=device, restart=restart)
        started = time.monotonic()
        with _cohort_bar("Running the model") as report:
            outcome = run(the_plan, work, 0, loaded, progress=report)
        if outcome.n_blocks_skipped:
            out.print(f"Continued: {outcome.n_blocks_skipped} block(s) were already finished.", markup=False)
        out.print(f"Model run: {time.monotonic() - started:,.0f} s.", markup=False)
        _gather(the_plan, work, output)  # ends with the demo reminder, where people look last


@workflow_app.command("init")
def workflow_init(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the workflow (made if needed).",
                                           file_okay=False)],
    input_path: Annotated[Path | None, typer.Option("--input", help="The cohort file.", dir_okay=False,
                                                    show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Result file (.parquet, .csv, .tsv, .h5ad).",
                                                dir_okay=False, show_default=False)] = None,
    shards: Annotated[int | None, typer.Option("--shards", min=1, help="Jobs the cohort is split into.",
                                               show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model (as for extract).",
                                              show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the files of an existing workflow.")] = False,
) -> None:
    """Write the Snakemake workflow (Snakefile, config.yaml, local and SLURM profiles) into DIR."""
    with user_errors():
        import shutil
        import sys

        from bulkformer.cohort import write_workflow

        settings: dict[str, object] = {"input": str(input_path.resolve()) if input_path else None,
                                       "output": str(output) if output else None, "shards": shards, "model": model}
        here = shutil.which("bulkformer")
        settings["bulkformer"] = here or f"{sys.executable} -m bulkformer"
        written = write_workflow(folder, settings=settings, overwrite=overwrite)
        for path in written:
            out.print(f"[green]Wrote[/green] {escape(str(path))}")
        out.print(f"Next: edit {escape(str(folder / 'config.yaml'))}, then\n"
                  f"  cd {escape(str(folder))} && snakemake --profile profiles/local   (this machine)\n"
                  f"  cd {escape(str(folder))} && snakemake --profile profiles/slurm   (a SLURM cluster: set "
                  f"slurm_partition and slurm_account in profiles/slurm/config.yaml first)")
