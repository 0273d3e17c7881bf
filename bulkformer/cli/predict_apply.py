"""Predict across cohorts from the command line: ``bulkformer predict``'s external validation
(``--test-counts`` / ``--test-samples``) and saved predictor (``--save-predictor``), and
``bulkformer predict-apply PREDICTOR TABLE``, which applies a saved predictor to new samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
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
    check_writable,
    err,
    load_model,
    out,
    prepare_input,
    progress_bar,
    remind_if_demo,
    user_errors,
)
from bulkformer.errors import BulkFormerError

if TYPE_CHECKING:
    from bulkformer.analysis.predict import ExternalResult, PredictionResult, Predictor
    from bulkformer.inputs import PreparedInput
    from bulkformer.model._bulkformer_model import BulkFormerModel

SaveFeatures = Literal["best", "embeddings", "pca", "both"]

# ---------------------------------------------------------------------------------- options of `predict`
TestCountsOption = Annotated[Path | None, typer.Option(
    "--test-counts", help="External validation: the expression table of a second cohort (another study or "
    "lab). Models are chosen and fitted on COUNTS, then scored once on it. Needs --test-samples.",
    exists=True, dir_okay=False, show_default=False)]
TestSamplesOption = Annotated[Path | None, typer.Option(
    "--test-samples", help="The second cohort's sample sheet, with the same --column (and --event-column).",
    exists=True, dir_okay=False, show_default=False)]
TestPredictionsOption = Annotated[Path | None, typer.Option(
    "--test-predictions", help="Save the second cohort's predictions (every feature set, with the observed "
    "labels) as .csv, .tsv or .parquet.", dir_okay=False, show_default=False)]
SavePredictorOption = Annotated[Path | None, typer.Option(
    "--save-predictor", help="Keep the fitted predictor in this folder (JSON + NumPy arrays, no pickle) to "
    "apply later with `bulkformer predict-apply`. With --test-counts it is the model scored on the second "
    "cohort (over the genes both measured).", file_okay=True, show_default=False)]
SaveFeaturesOption = Annotated[SaveFeatures, typer.Option(
    "--save-features", help="Which model --save-predictor keeps: the best-scoring feature set in cross-"
    "validation, or one of them.")]
BootstrapOption = Annotated[int, typer.Option(
    "--bootstrap", min=20, help="Resamples of the second cohort for the 95 % intervals.")]


def check_across(*, test_counts: Path | None, test_samples: Path | None, test_predictions: Path | None,
                 save_predictor: Path | None, inputs: tuple[Path | None, ...]) -> None:
    """Refuse, before any work, options that do not go together or outputs that cannot be written."""
    if (test_counts is None) != (test_samples is None):
        raise BulkFormerError("External validation needs both --test-counts and --test-samples.",
                              hint="Give the second cohort's expression table and its sample sheet.")
    if test_predictions is not None:
        if test_counts is None:
            raise BulkFormerError("--test-predictions needs a second cohort (--test-counts, --test-samples).",
                                  hint="Add the second cohort, or leave --test-predictions out.")
        if test_predictions.suffix.lower() not in TABLE_SUFFIXES:
            raise BulkFormerError(f"Cannot write the table as {test_predictions.name!r}.",
                                  hint=f"End it with one of: {', '.join(TABLE_SUFFIXES)}.")
        check_output(test_predictions, inputs=[*inputs, test_counts, test_samples])
    if save_predictor is not None:
        if save_predictor.exists() and not save_predictor.is_dir():
            raise BulkFormerError(f"{save_predictor} is a file; a predictor is saved as a folder.",
                                  hint="Give a folder name for --save-predictor.")
        if (save_predictor.is_dir() and any(save_predictor.iterdir())
                and not (save_predictor / "predictor.json").is_file()):
            raise BulkFormerError(f"{save_predictor} is a folder of other files; a predictor would replace them.",
                                  hint="Give a new folder name for --save-predictor.")
        check_writable(save_predictor)


def across_cohorts(loaded: BulkFormerModel, prepared: PreparedInput, embedding: np.ndarray,
                   result: PredictionResult, *, test_counts: Path | None, test_samples: Path | None,
                   test_predictions: Path | None, save_predictor: Path | None, save_features: SaveFeatures,
                   value_type: str, batch_size: int | None, bootstrap: int, seed: int) -> None:
    """After the cross-validation: score on the second cohort and / or keep the predictor."""
    from bulkformer import export
    from bulkformer.analysis import predict as pr

    features = result.best if save_features == "best" else save_features
    predictor: Predictor | None = None
    if test_counts is not None and test_samples is not None:
        out.print("Second cohort (external validation):", style="bold")
        test = prepare_input(test_counts, loaded.gene_ids, gene_lengths=loaded.gene_lengths, value_type=value_type,
                             metadata=test_samples)
        with progress_bar() as report:
            test_embedding = loaded.run(test.aligned.values, test.aligned.sample_ids, impute=False,
                                        batch_size=batch_size, progress=report).sample_embedding
        external = pr.validate_external(
            result, pr.CohortData.of(prepared, embedding, name=str(test_counts)),
            pr.CohortData.of(test, test_embedding), model_checksum=loaded.checksum, n_bootstrap=bootstrap,
            seed=seed)
        print_external(external)
        if test_predictions is not None:
            notes = (*export.file_notes(is_demo=loaded.is_demo, n_measured=int(test.aligned.observed.sum()),
                                        n_model_genes=len(test.aligned.gene_ids)), external.verdict)
            export.write_output(external.predictions, test_predictions, notes=notes)
            out.print(f"[green]Wrote[/green] {escape(str(test_predictions))} (second cohort's predictions)")
        if save_predictor is not None:
            if features not in external.feature_sets:
                raise BulkFormerError(f"The {features} model could not be scored on the second cohort "
                                      "(too few genes in common).", hint="Save the embeddings' model: "
                                      "--save-features embeddings.")
            kept = external.predictor(features)
            scores = {s.metric: {"value": s.value, "low": s.low, "high": s.high}
                      for s in external.scores if s.features == features}
            predictor = dataclasses.replace(kept, options={**kept.options, "external": _json_ready(scores),
                                                           "external_samples": external.target.n_labelled})
    elif save_predictor is not None:
        aligned = prepared.aligned
        genes = tuple(g for g, keep in zip(aligned.gene_ids, aligned.observed, strict=True) if keep)
        summary = result.summary(features)
        cv_scores: dict[str, Any] = {s.metric: {"value": s.value, "spread": s.spread} for s in summary.scores}
        cv_scores["p_value"] = summary.p_value
        predictor, _ = pr.fit_predictor(
            result.target, embedding, pr.expression_features(aligned.values, aligned.observed), features=features,
            genes=genes, model_checksum=loaded.checksum, model_gene_ids=loaded.gene_ids, seed=seed,
            cv_scores=cv_scores, options={"seed": seed, "n_permutations": result.n_permutations,
                                          "plan": result.plan.description, "n_labelled": result.target.n_labelled})
    if predictor is not None and save_predictor is not None:
        pr.save_predictor(predictor, save_predictor)
        out.print(f"[green]Saved[/green] the {escape(pr.FEATURE_LABELS[features])} predictor in "
                  f"{escape(str(save_predictor))} (apply it: bulkformer predict-apply {escape(str(save_predictor))} "
                  "TABLE --output predictions.csv)")


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return None if isinstance(value, float) and not np.isfinite(value) else value


def print_external(external: ExternalResult) -> None:
    """The external scores beside the within-cohort ones, the genes used, warnings and the verdict."""
    table = external.table()
    shown = Table(title=f"Predicting {external.target.name} on the second cohort "
                        f"({external.target.n_labelled} labelled samples; 95 % bootstrap intervals)")
    for name in ("features", *table.columns):
        shown.add_column(name, justify="left" if name == "features" else "right")
    for label, row in table.iterrows():
        shown.add_row(str(label), *map(str, row))
    out.print(shown)
    out.print(f"Genes: {external.gene_note}", markup=False)
    for note in external.notes:
        out.print(f"Note: {note}", markup=False)
    for warning in external.warnings:
        err.print(f"Warning: {warning}", style="yellow", markup=False)
    out.print(f"Verdict on the second cohort: {external.verdict}", style="bold", markup=False)
    out.print("A within-cohort score says how well a model predicts more samples like the training ones (same "
              "lab, protocol, batch); only the second cohort's score says how well it carries to new data.",
              markup=False)


# ---------------------------------------------------------------------------------- `predict-apply`
def predict_apply(
    predictor_path: Annotated[Path, typer.Argument(
        metavar="PREDICTOR", help="A predictor saved by `bulkformer predict --save-predictor` (its folder) or "
        "by the Predict page (its .zip).", exists=True)],
    input_path: Annotated[Path, typer.Argument(
        metavar="TABLE", help="Expression table of the new samples (any format `extract` reads).",
        exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the predictions: .csv, .tsv or .parquet.", dir_okay=False)],
    model: ModelOption = "demo",
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    value_type: ValueTypeOption = "auto",
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Samples per forward pass (default: chosen from free memory).", show_default=False)] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
) -> None:
    """Apply a saved predictor to new samples: the same BulkFormer model makes their embeddings,
    the predictor's PCA reads their log1p TPM; a different model or missing genes are refused."""
    with user_errors():
        from bulkformer import export
        from bulkformer.analysis import predict as pr

        if output.suffix.lower() not in TABLE_SUFFIXES:
            raise BulkFormerError(f"Cannot write the table as {output.name!r}.",
                                  hint=f"End it with one of: {', '.join(TABLE_SUFFIXES)}.")
        check_output(output, inputs=[input_path, predictor_path])
        predictor = pr.load_predictor(predictor_path)
        out.print(predictor.words(), markup=False)
        loaded = load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        predictor.check_model(loaded.checksum, loaded.gene_ids)
        prepared = prepare_input(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths,
                                 value_type=value_type, metadata=None)
        aligned = prepared.aligned
        predictor.expression_of(aligned.values, aligned.gene_ids, aligned.observed)  # refuse missing genes first
        embedding = None
        if predictor.uses_embeddings:
            with progress_bar() as report:
                embedding = loaded.run(aligned.values, aligned.sample_ids, impute=False, batch_size=batch_size,
                                       progress=report).sample_embedding
        table = predictor.apply(embedding, aligned.values, aligned.sample_ids, aligned.gene_ids, aligned.observed,
                                model_checksum=loaded.checksum)
        notes = (*export.file_notes(is_demo=loaded.is_demo, n_measured=int(aligned.observed.sum()),
                                    n_model_genes=len(aligned.gene_ids)), predictor.words())
        export.write_output(table.reset_index(), output, notes=notes)
        counts = table["predicted"].value_counts()
        out.print(f"Predicted {len(table)} samples: " + ", ".join(f"{k} {v}" for k, v in counts.head(8).items())
                  if predictor.kind != "regression" else f"Predicted {len(table)} samples.", markup=False)
        out.print(f"[green]Wrote[/green] {escape(str(output))}")
        remind_if_demo(loaded, "these predictions")
