"""``bulkformer holdout``: how far to trust imputed values on the user's data (hide, impute, compare
with baselines, judge)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from bulkformer.cli._common import (
    TABLE_SUFFIXES,
    DataDirOption,
    ModelDirOption,
    ModelOption,
    ValueTypeOption,
    check_output,
    load_model,
    out,
    prepare_input,
    progress_bar,
    remind_if_demo,
    user_errors,
)
from bulkformer.errors import BulkFormerError

if TYPE_CHECKING:  # heavy imports (torch) happen inside the command
    from bulkformer.analysis._holdout import HoldoutComparison


def holdout_check(
    input_path: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Expression table (any format `extract` reads).", exists=True, dir_okay=False)],
    fraction: Annotated[float, typer.Option(
        min=0.01, max=0.9, help="Share of each sample's measured genes to hide.")] = 0.1,
    model: ModelOption = "demo",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Save the whole table (overall, per expression level, per sample) as "
        ".csv, .tsv or .parquet.", dir_okay=False, show_default=False)] = None,
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    value_type: ValueTypeOption = "auto",
    seed: Annotated[int, typer.Option(
        min=0, max=2**32 - 1, help="Which genes are hidden (the same seed hides the same ones).")] = 0,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Samples per forward pass (default: chosen from free memory).", show_default=False)] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
) -> None:
    """How far to trust imputed values on YOUR data: hide some measured values, let the model fill
    them in, and compare it with two simple baselines (each gene's mean over your other samples,
    and k nearest samples). Prints the scores and a verdict in words."""
    with user_errors():
        from bulkformer import export
        from bulkformer import workflows as runs
        from bulkformer.model._run_options import RunOptions

        if output is not None and output.suffix.lower() not in TABLE_SUFFIXES:
            raise BulkFormerError(f"Cannot write the table as {output.name!r}.",
                                  hint=f"End --output with one of: {', '.join(TABLE_SUFFIXES)}.")
        if output is not None:
            check_output(output, inputs=(input_path,))
        loaded = load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        prepared = prepare_input(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths, value_type=value_type,
                            metadata=None)
        with progress_bar() as report:
            checked = runs.holdout_check(loaded, prepared, RunOptions(precision="fp32", batch_size=batch_size),
                                         fraction=fraction, seed=seed, progress=report)
        comparison, judged = checked.comparison, checked.verdict
        _print_holdout(comparison)
        out.print()
        for line in judged.lines():
            style = {"better": "green", "cannot judge": "yellow"}.get(judged.level, "red")
            out.print(line, style=style if line.startswith("Verdict") else None, markup=False)
        if output is not None:
            notes = export.file_notes(is_demo=loaded.is_demo, n_measured=comparison.n_measured_genes,
                                      n_model_genes=comparison.n_model_genes)
            export.write_output(comparison.table, output, notes=(*notes, *judged.lines()))
            out.print(f"[green]Wrote[/green] {escape(str(output))} (per sample, per expression level and overall)")
        remind_if_demo(loaded, "the check's imputed values")


def _print_holdout(comparison: HoldoutComparison) -> None:
    """The overall and per-level rows of a hold-out comparison as one table (NaN: undefined)."""
    import math

    from bulkformer.analysis._holdout import MODEL

    table = comparison.table
    shown = Table(title=f"Hold-out check: {comparison.scores[MODEL].n:,} hidden values scored, "
                        f"{comparison.n_samples:,} samples")
    for column in ("Method", "Values", "Pearson r", "Spearman", "MAE", "n"):
        shown.add_column(column, justify="left" if column in ("Method", "Values") else "right")
    rows = table[table["scope"] != "sample"]
    for row in rows.itertuples():
        shown.add_row(row.method, "all" if row.scope == "overall" else row.group,
                      *("n/a" if math.isnan(v) else f"{v:.3f}" for v in (row.pearson, row.spearman, row.mae)),
                      f"{row.n:,}")
    out.print(shown)
    if comparison.baseline_note:
        out.print(comparison.baseline_note, markup=False)
