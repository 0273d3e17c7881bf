"""``bulkformer predict``: does a sample-sheet column follow from the expression? Cross-validated
models on BulkFormer embeddings against a PCA baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bulkformer.cli import predict_apply as across
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
    from bulkformer.analysis.predict import PredictionResult, Target
    from bulkformer.inputs._align import AlignedMatrix
    from bulkformer.model._bulkformer_model import BulkFormerModel


def predict(
    input_path: Annotated[Path, typer.Argument(
        metavar="COUNTS", help="Expression table of your cohort (any format `extract` reads).",
        exists=True, dir_okay=False)],
    samples: Annotated[Path, typer.Argument(
        metavar="SAMPLES", help="Sample sheet: one row per sample, with the column to predict.",
        exists=True, dir_okay=False)],
    column: Annotated[str, typer.Option(
        "--column", "-c", help="The sample-sheet column to predict (categories: classification; "
        "numbers: regression; with --event-column: the follow-up time of a survival model). "
        "Samples with an empty cell are predicted.", show_default=False)],
    event_column: Annotated[str | None, typer.Option(
        "--event-column", help="Survival: the column saying whether the event happened (1/0, "
        "true/false, dead/alive); --column is then the time.", show_default=False)] = None,
    kind: Annotated[Literal["auto", "classification", "regression"], typer.Option(
        help="auto: numbers with more than 10 distinct values are a regression, anything else "
        "classes.")] = "auto",
    model: ModelOption = "demo",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Save the per-fold results (every metric of every fold and feature "
        "set) as .csv, .tsv or .parquet.", dir_okay=False, show_default=False)] = None,
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Save every labelled sample's out-of-fold prediction and every "
        "unlabelled sample's prediction as .csv, .tsv or .parquet.", dir_okay=False,
        show_default=False)] = None,
    permutations: Annotated[int, typer.Option(
        min=9, help="Label shuffles of the permutation test (p-values down to 1/(n+1)).")] = 99,
    seed: Annotated[int, typer.Option(
        min=0, max=2**32 - 1, help="Folds and shuffles (the same seed gives the same result).")] = 0,
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    value_type: ValueTypeOption = "auto",
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Samples per forward pass (default: chosen from free memory).", show_default=False)] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
    test_counts: across.TestCountsOption = None,
    test_samples: across.TestSamplesOption = None,
    test_predictions: across.TestPredictionsOption = None,
    bootstrap: across.BootstrapOption = 1000,
    save_predictor: across.SavePredictorOption = None,
    save_features: across.SaveFeaturesOption = "best",
) -> None:
    """Does a sample-sheet column follow from the expression? Cross-validated models on the
    BulkFormer sample embeddings, on PCA of the expression (the usual baseline) and on both,
    compared on the same folds, with permutation p-values and a verdict in words. With
    --test-counts/--test-samples the models are then scored once on a second cohort; with
    --save-predictor the fitted model is kept for `bulkformer predict-apply`."""
    with user_errors():
        from bulkformer.analysis import predict as pr

        _check_tables((output, predictions), inputs=(input_path, samples))
        across.check_across(test_counts=test_counts, test_samples=test_samples, test_predictions=test_predictions,
                            save_predictor=save_predictor, inputs=(input_path, samples))
        loaded = load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        prepared = prepare_input(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths, value_type=value_type,
                            metadata=samples)
        target = pr.make_target(prepared.metadata, column, event_column=event_column, kind=kind)
        out.print(f"Task: {target.kind} of {target.name} ({target.reason}); {target.n_labelled} labelled "
                  f"samples, {len(target.sample_ids) - target.n_labelled} to predict.", markup=False)
        result, embedding = _cross_validate(loaded, prepared.aligned, target, batch_size=batch_size,
                                            permutations=permutations, seed=seed)
        _print_prediction(result)
        _write_tables(result, loaded, prepared.aligned, output=output, predictions=predictions)
        across.across_cohorts(loaded, prepared, embedding, result, test_counts=test_counts,
                              test_samples=test_samples, test_predictions=test_predictions,
                              save_predictor=save_predictor, save_features=save_features, value_type=value_type,
                              batch_size=batch_size, bootstrap=bootstrap, seed=seed)
        remind_if_demo(loaded, "these embeddings")


def _check_tables(paths: tuple[Path | None, ...], *, inputs: tuple[Path, ...]) -> None:
    """Refuse, before any work, a table name with an unknown ending or an OUTPUT check failure."""
    for path in paths:
        if path is not None and path.suffix.lower() not in TABLE_SUFFIXES:
            raise BulkFormerError(f"Cannot write the table as {path.name!r}.",
                                  hint=f"End it with one of: {', '.join(TABLE_SUFFIXES)}.")
        if path is not None:
            check_output(path, inputs=inputs)


def _cross_validate(loaded: BulkFormerModel, aligned: AlignedMatrix, target: Target, *, batch_size: int | None,
                    permutations: int, seed: int) -> tuple[PredictionResult, Any]:
    """The samples' embeddings, then :func:`bulkformer.analysis.predict.evaluate`, each under a
    progress bar; returns the result and the embeddings (external validation reuses them)."""
    from bulkformer.analysis import predict as pr

    with progress_bar() as report:
        embedding = loaded.run(aligned.values, aligned.sample_ids, impute=False, batch_size=batch_size,
                               progress=report).sample_embedding
    columns = (TextColumn("Cross-validating"), BarColumn(), MofNCompleteColumn(), TextColumn("model fits"),
               TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("cv", total=None)
        return pr.evaluate(embedding, pr.expression_features(aligned.values, aligned.observed), target,
                           n_permutations=permutations, seed=seed,
                           progress=lambda done, total: bar.update(task, completed=done, total=total)), embedding


def _write_tables(result: PredictionResult, loaded: BulkFormerModel, aligned: AlignedMatrix, *,
                  output: Path | None, predictions: Path | None) -> None:
    """The per-fold results and the predictions, where asked, with the demo / coverage notes and
    the verdict at the top."""
    from bulkformer import export
    from bulkformer.analysis import predict as pr

    notes = (*export.file_notes(is_demo=loaded.is_demo, n_measured=int(aligned.observed.sum()),
                                n_model_genes=len(aligned.gene_ids)), result.verdict)
    for path, table, what in ((output, result.folds, "per-fold results"),
                              (predictions, pr.predictions_table(result), "predictions")):
        if path is not None:
            export.write_output(table, path, notes=notes)
            out.print(f"[green]Wrote[/green] {escape(str(path))} ({what})")


def _print_prediction(result: PredictionResult) -> None:
    """The comparison table, the verdict, how it was evaluated and the unlabelled samples' predictions."""
    from bulkformer.analysis.predict import FEATURE_LABELS, METRIC_LABELS

    table = result.table()
    shown = Table(title=f"Predicting {result.target.name}: mean ± SD over folds ({result.seconds:.0f} s)")
    for name in ("features", *table.columns):
        shown.add_column(name, justify="left" if name in ("features", "chosen settings") else "right")
    for label, row in table.iterrows():
        shown.add_row(str(label), *map(str, row))
    out.print(shown)
    out.print(f"Verdict: {result.verdict}", style="bold", markup=False)
    out.print(f"Evaluation: {result.plan.description}; settings chosen by inner CV on each training fold; "
              f"p: the share of {result.n_permutations} label shuffles (same folds) that scored a "
              f"{METRIC_LABELS[result.primary]} at least as high.", markup=False)
    if len(result.predictions):
        out.print(f"Predicted {len(result.predictions)} unlabelled samples with the "
                  f"{FEATURE_LABELS[result.best]} model (save them with --predictions).", markup=False)
