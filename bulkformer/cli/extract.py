"""``bulkformer extract``: embeddings or imputed expression for a table, written in the format
OUTPUT's extension names (all genes' embeddings streamed to a .npy, batch by batch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from bulkformer.choices import (
    AGGREGATION,
    COMPILE,
    IMPUTE_MODE,
    OUTPUT_FORMAT,
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
    check_output,
    err,
    id_files,
    load_model,
    out,
    prepare_input,
    progress_bar,
    remind_if_demo,
    user_errors,
)
from bulkformer.errors import BulkFormerError
from bulkformer.fetch import zenodo as dl

if TYPE_CHECKING:  # heavy imports (torch) happen inside the functions that need them
    import numpy as np

    from bulkformer.export import RunFacts
    from bulkformer.inputs._pipeline import PreparedInput
    from bulkformer.model._bulkformer_model import BulkFormerModel, InferenceResult
    from bulkformer.model._run_options import RunOptions

ExtractType = Literal["transcriptome_level", "gene_level", "expression_imputation"]

# The command's arguments and options, one alias each, so that the command itself stays short.
InputArgument = Annotated[Path, typer.Argument(
    metavar="INPUT", help="Expression table (CSV, TSV, Excel, Parquet, h5ad, featureCounts, "
    "salmon, RSEM …), genes × samples or samples × genes.", exists=True, dir_okay=False)]
OutputArgument = Annotated[Path, typer.Argument(
    metavar="OUTPUT", help=f"Result file; its extension picks the format: {' '.join(OUTPUT_FORMAT.names)}. "
    "Written only when complete, with its run report beside it (OUTPUT.report.md).", dir_okay=False)]
TypeOption = Annotated[ExtractType, typer.Option(
    "--type", "-t", help="transcriptome_level: one embedding per sample; gene_level: one "
    "embedding per sample and gene (give --genes); expression_imputation: log1p TPM for "
    "every model gene (see --impute-mode).")]
ImputeModeOption = Annotated[ImputeMode, typer.Option(
    "--impute-mode", help=f"expression_imputation: {IMPUTE_MODE.cli_help()} Tables run "
    "genes as rows (row key SYMBOL_ENSG…), samples as columns, log1p TPM. An .h5ad holds all: "
    "X = filled, layers 'measured' and 'bulkformer'.")]
AggregateOption = Annotated[Aggregate, typer.Option(
    help=f"How gene embeddings are pooled into a sample embedding: {AGGREGATION.cli_help()}")]
BatchSizeOption = Annotated[int | None, typer.Option(
    min=1, help="Samples per forward pass (default: chosen from free memory).",
    show_default=False)]
DeviceOption = Annotated[Literal["auto", "cpu", "cuda"], typer.Option(
    help="Where to run: 'auto' uses a CUDA GPU when there is one.")]
GenesOption = Annotated[Path | None, typer.Option(
    "--genes", help="Text file, one gene per line (Ensembl ID or symbol): the genes for "
    "gene_level output, for pooling into sample embeddings, and for imputation output.",
    exists=True, dir_okay=False, show_default=False)]
MetadataOption = Annotated[Path | None, typer.Option(
    "--metadata", help="Sample sheet (one row per sample; CSV, TSV, Excel, Parquet, h5ad, "
    "gzipped too); stored in an .h5ad's obs (tables hold results only).", exists=True, dir_okay=False,
    show_default=False)]
PrecisionOption = Annotated[Precision, typer.Option(help=PRECISION.cli_help())]
CompileOption = Annotated[Compile, typer.Option(
    "--compile", help="Compile the model's layers with torch.compile: about 1.8x faster per "
    f"sample on a CPU. {COMPILE.cli_help()}")]
Esm2Option = Annotated[bool, typer.Option(
    "--esm2", help="gene_level only: append each gene's ESM2 protein embedding (from the "
    "model's data folder, esm2_feature_concat.pt) to its BulkFormer embedding, as upstream "
    "offers.")]


def extract(
    input_path: InputArgument,
    output: OutputArgument,
    kind: TypeOption = "transcriptome_level",
    impute_mode: ImputeModeOption = "filled",
    aggregate: AggregateOption = "mean",
    value_type: ValueTypeOption = "auto",
    batch_size: BatchSizeOption = None,
    device: DeviceOption = "auto",
    model: ModelOption = "demo",
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    genes_file: GenesOption = None,
    metadata: MetadataOption = None,
    precision: PrecisionOption = "auto",
    compile_mode: CompileOption = "auto",
    esm2: Esm2Option = False,
) -> None:
    """Run BulkFormer on an expression table and save embeddings or imputed expression."""
    with user_errors():
        from bulkformer import workflows as runs
        from bulkformer.model._run_options import RunOptions

        _check_request(output, kind=kind, genes_file=genes_file, esm2=esm2)
        check_output(output, inputs=(input_path, metadata, genes_file))
        loaded = load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        if esm2:
            loaded.esm2_table()  # a missing table is reported before the model runs
        chosen = _read_gene_list(genes_file, loaded.gene_ids) if genes_file is not None else None
        prepared = prepare_input(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths, value_type=value_type,
                            metadata=metadata)
        options = RunOptions(
            embed=kind == "transcriptome_level", impute=kind == "expression_imputation", aggregate=aggregate,
            aggregate_genes=chosen if kind == "transcriptome_level" else None,
            gene_embedding_genes=chosen if kind == "gene_level" else None,
            with_esm2=esm2, batch_size=batch_size, precision=precision, compile=compile_mode)
        _say_if_compiling(loaded, len(prepared.aligned.sample_ids), compile_mode)
        with progress_bar() as report:
            if kind == "gene_level" and chosen is None:
                shape = _stream_gene_embeddings(loaded, prepared.aligned.values, output, options, progress=report)
                result = None
            else:
                result = runs.run_cohort(loaded, prepared, options, maps=(), progress=report).result
        extra = _facts_extra(kind, input_path, prepared, compile_mode, genes_file)
        facts = runs.run_facts(loaded, prepared, options, extra=extra)
        if result is None:
            _finish_stream(output, facts, samples=prepared.aligned.sample_ids, genes=loaded.gene_ids, shape=shape)
        else:
            _write_result(result, prepared, output, kind=kind, genes=chosen, mode=impute_mode, facts=facts,
                          columns=loaded.config.feature_names())
        remind_if_demo(loaded, "these results")


def _check_request(output: Path, *, kind: str, genes_file: Path | None, esm2: bool) -> None:
    """Refuse, before anything is loaded, an output type or option combination that cannot work."""
    ext = output.suffix.lower()
    if ext not in OUTPUT_FORMAT:
        raise BulkFormerError(f"Cannot write results as {output.name!r}: unknown file type.",
                              hint=f"End OUTPUT with one of: {', '.join(OUTPUT_FORMAT.names)}.")
    if kind == "gene_level" and genes_file is None and ext != ".npy":
        raise BulkFormerError(
            "Gene-level output for all ~20,000 genes is about 51 MB per sample: too big for "
            f"a {ext} file.",
            hint="Give --genes FILE with the genes you need, or write OUTPUT as .npy (streamed "
            "to disk, batch by batch).")
    if esm2 and kind != "gene_level":
        raise BulkFormerError("--esm2 adds protein embeddings to gene-level output only.",
                              hint="Use --type gene_level with --esm2, or leave --esm2 out.")


def _say_if_compiling(loaded: BulkFormerModel, n_samples: int, compile_mode: str) -> None:
    """Warn of the one-off compile wait before the progress bar starts."""
    if loaded.compiles(n_samples, compile=compile_mode):
        from bulkformer.model._inference import COMPILE_NOTE

        err.print(COMPILE_NOTE, markup=False)


def _facts_extra(kind: str, input_path: Path, prepared: PreparedInput, compile_mode: str,
                 genes_file: Path | None) -> list[tuple[str, str]]:
    """The CLI's own rows of the run report, beside :func:`bulkformer.workflows.run_facts`' common ones."""
    extra = [("output", kind), ("input", input_path.name),
             ("value type", prepared.guesses.value_type.value), ("torch.compile", compile_mode)]
    if genes_file is not None:
        extra.append(("genes file", genes_file.name))
    return extra


def _read_gene_list(path: Path, model_genes: tuple[str, ...]) -> list[str]:
    """Ensembl IDs of the genes in a gene-list file (:func:`bulkformer.genes.parse_gene_list`)."""
    from bulkformer.genes import parse_gene_list

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BulkFormerError(f"Could not read the gene list {path}: {exc}.",
                              hint="Give a plain text file with one gene per line.") from exc
    found = parse_gene_list(text, model_genes)
    if found.unknown:
        raise BulkFormerError(
            f"{len(found.unknown)} gene(s) in {path.name} are not known human genes: "
            f"{', '.join(found.unknown[:5])}.",
            hint="Use Ensembl gene IDs (ENSG…) or current HGNC symbols.")
    if found.outside:
        raise BulkFormerError(
            f"{len(found.outside)} gene(s) in {path.name} are not among this model's genes: "
            f"{', '.join(found.outside[:5])}.",
            hint="BulkFormer models protein-coding genes; remove the others from the list.")
    if not found.genes:
        raise BulkFormerError(f"The gene list {path} names no genes.",
                              hint="Put one Ensembl ID or gene symbol per line.")
    return list(found.genes)


def _stream_gene_embeddings(loaded: BulkFormerModel, values: np.ndarray, output: Path, options: RunOptions, *,
                            progress: Callable[[int, int], None]) -> tuple[int, ...]:
    """All genes' embeddings into a .npy, batch by batch (a temp file, renamed when complete);
    returns the array's shape."""
    import dataclasses
    import shutil

    import numpy as np

    from bulkformer.export import written_in_full

    output.parent.mkdir(parents=True, exist_ok=True)
    width = loaded.config.gene_feature_dim + (loaded.esm2_table().shape[1] if options.with_esm2 else 0)
    needed = values.shape[0] * len(loaded.gene_ids) * width * 4
    free = shutil.disk_usage(output.parent).free
    if needed > free:
        raise BulkFormerError(
            f"The gene-level output needs {dl.human_size(needed)} but only {dl.human_size(free)} is "
            f"free in {output.parent}.",
            hint="Free some space, write elsewhere, or give --genes to keep only some genes.")
    options = dataclasses.replace(options, gene_embedding_genes=loaded.gene_ids)
    with written_in_full(output) as tmp:
        array = None
        for batch in loaded.iter_batches(values, options, progress=progress):
            if array is None:
                shape = (values.shape[0], *batch.gene_embedding.shape[1:])
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            array[batch.start:batch.stop] = batch.gene_embedding
        shape = array.shape
        array.flush()
        del array  # closes the memory map before the rename
    return shape


def _finish_stream(output: Path, facts: RunFacts, *, samples: Sequence[str], genes: Sequence[str],
                   shape: tuple[int, ...]) -> None:
    """The streamed all-genes .npy is written: its sample and gene IDs and its run-report sidecar
    beside it (removed with it if these cannot be written)."""
    from bulkformer import export
    from bulkformer.export import FileInfo

    try:
        export.write_ids(id_files(output), samples=samples, genes=genes)
        info = FileInfo(((f"Array: per-gene embeddings [samples, genes, features], shape "
                          f"{' × '.join(map(str, shape))}; row order in {id_files(output)[0].name}, gene order "
                          f"in {id_files(output)[1].name}."),))
        with export.written_in_full(export.sidecar_path(output)) as tmp:
            tmp.write_text(export.sidecar_report(output.name, info, facts), encoding="utf-8")
    except BaseException:
        output.unlink(missing_ok=True)
        _remove_id_files(output)
        raise
    out.print(f"[green]Wrote[/green] {escape(str(output))} (array {' × '.join(map(str, shape))}); "
              f"run report: {escape(export.sidecar_path(output).name)}")
    _say_id_files(output, genes=True)


def _write_result(result: InferenceResult, prepared: PreparedInput, output: Path, *, kind: str,
                  genes: list[str] | None, facts: RunFacts, columns: Sequence[str], mode: str = "filled") -> None:
    """Write one run's result in the format OUTPUT's extension names (:func:`bulkformer.export.result_file`),
    with its run-report sidecar; ``columns``: the sample embedding's column names
    (``BulkFormerConfig.feature_names``)."""
    import dataclasses

    import numpy as np

    from bulkformer import export

    aligned = prepared.aligned
    observed_values, observed = aligned.values, aligned.observed
    if kind == "expression_imputation" and genes is not None:  # keep only the genes asked for
        index = np.array([aligned.gene_ids.index(g) for g in genes])
        result = dataclasses.replace(result, gene_ids=tuple(genes), imputed=result.imputed[:, index])
        observed_values, observed = observed_values[:, index], observed[index]
    file = export.result_file(result, output.suffix, kind=kind, measured_values=observed_values, observed=observed,
                              metadata=prepared.metadata, symbols=_symbols(result.gene_ids), facts=facts,
                              embedding_columns=columns, mode=mode)
    export.write_result(file, output, facts=facts, id_paths=id_files(output))
    out.print(f"[green]Wrote[/green] {escape(str(output))} ({escape(file.describe())}); "
              f"run report: {escape(export.sidecar_path(output).name)}")
    if file.sample_ids is not None:
        _say_id_files(output, genes=file.gene_ids is not None)


def _say_id_files(output: Path, *, genes: bool) -> None:
    samples_path, genes_path = id_files(output)
    out.print(f"Row order: {samples_path.name}" + (f"; gene order: {genes_path.name}" if genes else ""),
              markup=False)


def _remove_id_files(output: Path) -> None:
    """Undo the ID files of a .npy output when it could not be finished."""
    for path in id_files(output):
        path.unlink(missing_ok=True)


def _symbols(gene_ids: Sequence[str]) -> dict[str, str]:
    """Gene symbols from the shipped annotation, for the .h5ad ``var`` table."""
    from bulkformer.genes import load_annotation

    return load_annotation().symbols_of(gene_ids)

