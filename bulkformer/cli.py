"""The ``bulkformer`` command line: a thin layer over the package, for people who don't program.

Every command runs its work inside :func:`user_errors`, so a problem the user can fix is
printed as a short red message (what went wrong, then what to do) with exit code 1, never
as a Python traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from bulkformer import download as dl
from bulkformer import paths, registry
from bulkformer.errors import BulkFormerError, check_choice

if TYPE_CHECKING:  # heavy imports (torch) happen inside the commands that need them
    import numpy as np

    from bulkformer.export import RunFacts
    from bulkformer.holdout import HoldoutComparison
    from bulkformer.inference import Compile, Precision
    from bulkformer.pipeline import PreparedInput
    from bulkformer.predict import PredictionResult
    from bulkformer.wrapper import BulkFormerModel, InferenceResult

app = typer.Typer(
    name="bulkformer",
    help="BulkFormer Studio: get the published BulkFormer model and use it on bulk RNA-seq data.",
    no_args_is_help=True,
    add_completion=False,
)
download_app = typer.Typer(
    help=(
        "Get the published BulkFormer files from Zenodo and Google Drive. 'download model "
        "--size 147M' fetches one published model with its gene table and graph; 'download "
        "info' says what the Zenodo records hold. Interrupted downloads resume when you run "
        "the same command again."
    ),
    short_help="Get the published BulkFormer models and data files.",
    no_args_is_help=True,
)
app.add_typer(download_app, name="download")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`BulkFormerError` (or Ctrl-C) into a clean message and exit code."""
    try:
        yield
    except BulkFormerError as exc:
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        err.print("Stopped. Run the same command again to continue.", style="yellow")
        raise typer.Exit(code=130) from None


# --- download ---------------------------------------------------------------------------------

RecordOption = Annotated[
    str | None,
    typer.Option(
        "--record",
        "-r",
        help="Zenodo record: 'v2' (15744294), 'v1' (15559368) or a record number. "
        "Default: both, newest first.",
        show_default=False,
    ),
]
DestOption = Annotated[
    Path | None,
    typer.Option(
        "--dest",
        "-d",
        help="Put the files in this folder instead of the usual model and data folders.",
        file_okay=False,
        show_default=False,
    ),
]

DEFAULT_DOWNLOAD_SIZE = "147M"
"""What 'download model' fetches without --size: the largest model of the current release."""

_KIND_NOTE = {
    "model": "model",
    "data": "data",
    "pretraining": "optional pretraining data",
}


def _records(record: str | None) -> list[dl.KnownRecord]:
    """The records a command works on: the one asked for, or all known ones."""
    if record is None:
        return list(dl.KNOWN_RECORDS)
    record_id = dl.resolve_record_id(record)
    for known in dl.KNOWN_RECORDS:
        if known.record_id == record_id:
            return [known]
    return [dl.KnownRecord(record_id, record_id, "A Zenodo record not known to this app.")]


def _status(remote: dl.RemoteFile) -> str:
    """Whether a file is on disk already (by size: a full md5 check is for the download).

    Listed names are plain file names (:func:`bulkformer.download.list_record` refuses others)."""
    final = paths.safe_child(dl.target_dir(remote), remote.key)
    if final.is_file() and final.stat().st_size == remote.size:
        return "[green]downloaded[/green]"
    if final.with_name(final.name + ".part").is_file():
        return "[yellow]partly downloaded[/yellow]"
    return "not yet"


@download_app.command("list")
def list_files(record: RecordOption = None) -> None:
    """Show every file on Zenodo with its size, kind and whether you have it already."""
    with user_errors():
        for known in _records(record):
            remotes = dl.list_record(known.record_id)
            table = Table(title=f"Zenodo record {known.record_id} ({known.label})")
            for column in ("File", "Kind", "Size", "On this computer"):
                table.add_column(column, justify="right" if column == "Size" else "left")
            for remote in remotes:
                table.add_row(
                    remote.key,
                    _KIND_NOTE[remote.kind],
                    dl.human_size(remote.size),
                    _status(remote),
                )
            out.print(table)
        out.print("Optional files are fetched only by name: bulkformer download file NAME")
        out.print()
        out.print(dl.drive_instructions(), markup=False)


@download_app.command("info")
def info(record: RecordOption = None) -> None:
    """Explain what each record holds, how big it is, and where the files will go."""
    with user_errors():
        for known in _records(record):
            remotes = dl.list_record(known.record_id)
            out.print(f"[bold]Zenodo record {known.record_id} ({known.label})[/bold]")
            out.print(f"  {known.description}", markup=False)
            out.print(f"  Web page: {dl.record_page_url(known.record_id)}", markup=False)
            for kind in ("model", "data", "pretraining"):
                chosen = [r for r in remotes if r.kind == kind]
                if chosen:
                    total = dl.human_size(sum(r.size for r in chosen))
                    out.print(f"  {_KIND_NOTE[kind]}: {len(chosen)} file(s), {total}")
            out.print()
        out.print(f"Model files go to: {paths.model_dir()}  (set BULKFORMER_MODEL_DIR to change)")
        out.print(f"Data files go to:  {paths.data_dir()}  (set BULKFORMER_DATA_DIR to change)")
        out.print(
            "Pretraining data is large and only needed to train from scratch: get it by "
            "name, e.g. 'bulkformer download file PreBULK.h5ad.zip'."
        )
        out.print()
        out.print(dl.drive_instructions(), markup=False)


@contextmanager
def _download_bars() -> Iterator[dl.FileProgressFn]:
    """One progress bar per file while the block runs."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=out) as bar:
        tasks: dict[tuple[str, str], TaskID] = {}

        def on_progress(remote: dl.RemoteFile, done: int, total: int) -> None:
            name = (remote.record_id, remote.key)
            if name not in tasks:
                tasks[name] = bar.add_task(remote.key, total=total)
            bar.update(tasks[name], completed=done, total=total)

        yield on_progress


def _say_saved(saved: Sequence[Path]) -> None:
    out.print(f"[green]Done.[/green] {len(saved)} file(s) ready and checked:")
    for path in saved:
        out.print(f"  {path}", markup=False)


def _download(selection: str, record: str | None, dest: Path | None) -> None:
    """Download with one progress bar per file, then say where everything was saved."""
    with user_errors():
        with _download_bars() as on_progress:
            saved = dl.download(selection, record_id=record, dest=dest, progress=on_progress)
        _say_saved(saved)


@download_app.command("model")
def download_model(
    size: Annotated[str, typer.Option(
        "--size", "-s",
        help=f"Which published model: {registry.names_text()}, or 'all'. The v2 sizes come from "
        "Google Drive, v1 from Zenodo.",
    )] = DEFAULT_DOWNLOAD_SIZE,
    dest: DestOption = None,
) -> None:
    """Download a published model with its gene table and graph (default: 147M).

    The checkpoint goes to the model folder, the gene table and graph of its family (Zenodo
    15744294 for the v2 sizes, 15559368 for v1) to the data folder. Zenodo files are checked
    against their md5; Drive files (no published checksum) are loaded as tensors and their
    shape checked; size and sha256 are recorded in checksums.json for 'bulkformer verify'.
    Then use it with --model SIZE.
    """
    from bulkformer import model_fetch

    with user_errors():
        names = list(registry.MODELS) if size.strip().lower() == "all" else [registry.get(size).name]
        plans = [model_fetch.plan_model(name, model_dir=dest, data_dir=dest) for name in names]
        for plan in plans:
            out.print(f"{plan.model.label}: {plan.model.checkpoint} ({plan.checkpoint_size_text}) → "
                      f"{plan.model_dir}; {', '.join(plan.model.data_files)} → {plan.data_dir}", markup=False)
        saved: list[Path] = []
        with _download_bars() as on_progress:
            for plan in plans:
                saved += [p for p in model_fetch.download_model(plan, progress=on_progress) if p not in saved]
        _say_saved(saved)
        if size.strip().lower() != "all":
            out.print(f"Use it with --model {names[0]}.", markup=False)


@download_app.command("data")
def download_data(record: RecordOption = None, dest: DestOption = None) -> None:
    """Download the gene table, gene graphs and protein table into the data folder.

    The optional pretraining data (several GB) is skipped: use 'download file' for it.
    """
    _download("data", record, dest)


@download_app.command("all")
def download_all(record: RecordOption = None, dest: DestOption = None) -> None:
    """Download the model and the data files: everything needed to run BulkFormer."""
    _download("all", record, dest)


@download_app.command("file")
def download_one(
    name: Annotated[
        str, typer.Argument(help="The file name as 'download list' shows it.", show_default=False)
    ],
    record: RecordOption = None,
    dest: DestOption = None,
) -> None:
    """Download one file by its name, e.g. the optional pretraining data PreBULK.h5ad.zip."""
    _download(name, record, dest)


# --- shared options -----------------------------------------------------------------------------

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Which model: 'demo' (ships with the app, trained on simulated data), a published "
        f"one ({registry.names_text()}; 'bulkformer download model --size NAME' gets it) or the path "
        "of a checkpoint or model folder.",
    ),
]
ModelDirOption = Annotated[
    Path | None,
    typer.Option(
        "--model-dir",
        help="Folder with the downloaded checkpoints (default: the usual model folder).",
        file_okay=False,
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder with the downloaded gene table and graphs (default: the usual data folder).",
        file_okay=False,
        show_default=False,
    ),
]

DEMO_NOTE = (
    "You are using the DEMO model, trained on SIMULATED data: its results show how the tool "
    "works but mean nothing biologically. Run 'bulkformer download model --size 147M' to get "
    "the published BulkFormer weights, then pass --model 147M (or another size)."
)


# --- verify -------------------------------------------------------------------------------------

CHECKSUMS_NAME = dl.CHECKSUMS_NAME

_LIBRARIES = (  # (label, module, distribution)
    ("torch", "torch", "torch"),
    ("torch-geometric", "torch_geometric", "torch-geometric"),
    ("performer-pytorch", "performer_pytorch", "performer-pytorch"),
    ("numpy", "numpy", "numpy"),
)


@app.command()
def verify(model: ModelOption = "demo", model_dir: ModelDirOption = None,
           data_dir: DataDirOption = None) -> None:
    """Check the installation, the downloaded files and the model, and say what to fix."""
    with user_errors():
        model_dir = model_dir or paths.model_dir()
        data_dir = data_dir or paths.data_dir()
        problems: list[str] = []
        _check_libraries(problems)
        _show_devices()
        _check_assets(model_dir, data_dir, problems)
        _check_model(model, model_dir, data_dir, problems)
        out.print()
        if problems:
            err.print(f"{len(problems)} problem(s) to fix:", style="red")
            for number, problem in enumerate(problems, 1):
                err.print(f"{number}. {problem}", markup=False)
            raise typer.Exit(code=1)
        out.print("[green]All checks passed.[/green] BulkFormer is ready to use.")


def _check_libraries(problems: list[str]) -> None:
    """Versions of Python and the libraries the model needs; each must import."""
    import importlib
    import importlib.metadata
    import platform

    out.print("[bold]Software[/bold]")
    out.print(f"  Python: {platform.python_version()}")
    for label, module, dist in _LIBRARIES:
        try:
            importlib.import_module(module)
            out.print(f"  {label}: {importlib.metadata.version(dist)}", markup=False)
        except Exception as exc:  # any failure to import is something the user must fix
            out.print(f"  {label}: [red]cannot be imported[/red] ({type(exc).__name__}: {escape(str(exc))})")
            fix = ("run 'pip install setuptools' (performer-pytorch needs its distutils shim on Python 3.12+)"
                   if "distutils" in str(exc) else f"run 'pip install {dist}'")
            problems.append(f"{label} cannot be imported ({type(exc).__name__}: {exc}): {fix}.")


def _show_devices() -> None:
    """CUDA GPUs with their memory, or a note that the CPU will be used."""
    import torch

    out.print("[bold]Devices[/bold]")
    if not torch.cuda.is_available():
        out.print("  CUDA GPU: not available; the CPU will be used (fine for tens of samples, slow "
                  "for thousands).")
        return
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        out.print(f"  cuda:{index}: {props.name}, {props.total_memory / 1e9:.1f} GB", markup=False)


def _check_assets(model_dir: Path, data_dir: Path, problems: list[str]) -> None:
    """Which published files are present; md5 checks where a checksums.json records them."""
    from bulkformer.wrapper import ESM2_NAME, GENE_INFO_NAME, PUBLISHED_FILES

    checkpoints = sorted({names[0] for names in PUBLISHED_FILES.values()})
    data_files = [GENE_INFO_NAME, *sorted({n for names in PUBLISHED_FILES.values() for n in names[1:]}),
                  ESM2_NAME]
    for title, folder, names in (("Model folder", model_dir, checkpoints), ("Data folder", data_dir, data_files)):
        out.print(f"[bold]{title}[/bold] {escape(str(folder))}")
        recorded = dl.read_checksums(folder)
        for name in names:
            path = folder / name
            if path.is_file():
                state = f"present ({dl.human_size(path.stat().st_size)})"
                if name in recorded:
                    digest = "md5" if recorded[name].md5 else "sha256"
                    if dl.check_recorded(path, recorded[name]):
                        state += f", {digest} OK"
                    else:
                        state += f", [red]{digest} does not match[/red]"
                        problems.append(f"{path} is damaged (its {digest} differs from the one recorded in "
                                        f"{CHECKSUMS_NAME}): {_fetch_hint(name)}.")
            elif dl.partial_bytes(path):
                state = "[yellow]partly downloaded[/yellow]"
                problems.append(f"{name} is only partly downloaded: {_fetch_hint(name)} (it resumes).")
            else:
                state = "not downloaded"
            out.print(f"  {name}: {state}")


def _fetch_hint(name: str) -> str:
    """How to get a published file again: from Zenodo by name, or by hand from Google Drive."""
    for model in dl.DRIVE_CHECKPOINTS:
        if model.checkpoint == name:
            return f"run 'bulkformer download model --size {model.name}'"
    return f"run 'bulkformer download file {name}'"


def _check_model(spec: str, model_dir: Path, data_dir: Path, problems: list[str]) -> None:
    """Load the chosen model and run one random sample through it."""
    import time

    import numpy as np

    from bulkformer.model.config import MISSING
    from bulkformer.wrapper import BulkFormerModel

    out.print(f"[bold]Model[/bold] {escape(spec)}")
    folder = paths.demo_model_dir() if spec == "demo" else Path(spec)
    for name, recorded in dl.read_checksums(folder).items():
        if not dl.check_recorded(folder / name, recorded):
            problems.append(f"{folder / name} is damaged (it differs from {CHECKSUMS_NAME}): "
                            + _restore_hint(spec))
    try:
        loaded = BulkFormerModel.load(spec, device="auto", model_dir=model_dir, data_dir=data_dir)
    except BulkFormerError as exc:
        out.print("  [red]could not be loaded[/red]")
        problems.append(f"The model {spec!r} could not be loaded: {exc.message} → "
                        + (_restore_hint(spec) if spec == "demo" else exc.hint or ""))
        return
    out.print(f"  {loaded.describe()}", markup=False)
    out.print(f"  weights sha256: {loaded.checksum}", markup=False)
    rng = np.random.default_rng(0)
    n_genes = len(loaded.gene_ids)
    values = np.log1p(rng.gamma(0.6, 20.0, size=(1, n_genes))).astype(np.float32)
    values[0, rng.random(n_genes) < 0.2] = MISSING
    start = time.monotonic()
    try:
        result = loaded.run(values, ["verify"], gene_embedding_genes=loaded.gene_ids[:1], batch_size=1)
    except BulkFormerError as exc:
        problems.append(f"The model {spec!r} loads but a forward pass failed: {exc}")
        return
    outputs = (result.sample_embedding, result.imputed, result.gene_embedding)
    if not all(o is not None and o.shape[0] == 1 and np.isfinite(o).all() for o in outputs):
        problems.append(f"The model {spec!r} runs but produces missing or infinite numbers: its "
                        f"weights are damaged. " + _restore_hint(spec))
        return
    out.print(f"  one-sample forward pass on {loaded.device.type}: OK ({time.monotonic() - start:.1f} s)")


def _restore_hint(spec: str) -> str:
    """How to get an intact copy of a damaged model."""
    if spec == "demo":
        return (f"the demo model ships with BulkFormer Studio: restore the folder {paths.demo_model_dir()} "
                "(e.g. 'git checkout -- assets/demo/model') or reinstall the app.")
    return "download it again ('bulkformer download model'), or save the model folder again."


# --- extract ------------------------------------------------------------------------------------

ExtractType = Literal["transcriptome_level", "gene_level", "expression_imputation"]
_FORMATS = (".csv", ".tsv", ".parquet", ".pt", ".npy", ".h5ad")
_TABLES = (".csv", ".tsv", ".parquet")
_MAX_NAME_BYTES = 255  # what Linux, macOS and Windows file systems allow in one name
_ARRAY_NAMES = {"transcriptome_level": "embedding", "expression_imputation": "imputed",
                "gene_level": "gene_embedding"}


@app.command()
def extract(
    input_path: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Expression table (CSV, TSV, Excel, Parquet, h5ad, featureCounts, "
        "salmon, RSEM …), genes × samples or samples × genes.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Argument(
        metavar="OUTPUT", help="Result file; its extension picks the format: .csv .tsv .parquet "
        ".pt .npy .h5ad. Written only when complete.", dir_okay=False)],
    kind: Annotated[ExtractType, typer.Option(
        "--type", "-t", help="transcriptome_level: one embedding per sample; gene_level: one "
        "embedding per sample and gene (give --genes); expression_imputation: log1p TPM for "
        "every model gene (see --impute-mode).")] = "transcriptome_level",
    impute_mode: Annotated[Literal["filled", "model", "missing"], typer.Option(
        "--impute-mode", help="expression_imputation: 'filled' keeps your measured values and "
        "predicts only the genes your table lacks; 'model' is the model's reconstruction of every "
        "gene (measured values replaced); 'missing' only the genes your table lacks. An .h5ad "
        "holds all: X = filled, layers 'measured' and 'bulkformer'.")] = "filled",
    aggregate: Annotated[Literal["max", "mean", "median", "all"], typer.Option(
        help="How gene embeddings are pooled into a sample embedding.")] = "mean",
    counts: Annotated[bool | None, typer.Option(
        "--counts/--no-counts", help="Say whether the values are raw read counts. Default: "
        "detected from the values.", show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Samples per forward pass (default: chosen from free memory).",
        show_default=False)] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(
        help="Where to run: 'auto' uses a CUDA GPU when there is one.")] = "auto",
    model: ModelOption = "demo",
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    genes_file: Annotated[Path | None, typer.Option(
        "--genes", help="Text file, one gene per line (Ensembl ID or symbol): the genes for "
        "gene_level output, for pooling into sample embeddings, and for imputation output.",
        exists=True, dir_okay=False, show_default=False)] = None,
    metadata: Annotated[Path | None, typer.Option(
        "--metadata", help="Sample sheet (one row per sample); stored with the results in "
        ".csv/.tsv/.parquet (extra columns) and .h5ad (obs).", exists=True, dir_okay=False,
        show_default=False)] = None,
    precision: Annotated[Literal["auto", "fp32", "bf16", "fp16"], typer.Option(
        help="auto: fp16 on a GPU; on a CPU bf16 where it computes it natively (faster; "
        "embeddings within cosine 0.999 of fp32), else fp32. fp32: exact reference "
        "arithmetic.")] = "auto",
    compile_mode: Annotated[Literal["auto", "on", "off"], typer.Option(
        "--compile", help="Compile the model's layers with torch.compile: about 1.8x faster per "
        "sample on a CPU after a one-off wait of ~30 s (~12 s on a GPU). auto: when the run is "
        "long enough to gain from it.")] = "auto",
    esm2: Annotated[bool, typer.Option(
        "--esm2", help="gene_level only: append each gene's ESM2 protein embedding (from the "
        "model's data folder, esm2_feature_concat.pt) to its BulkFormer embedding, as upstream "
        "offers.")] = False,
) -> None:
    """Run BulkFormer on an expression table and save embeddings or imputed expression."""
    with user_errors():
        ext = output.suffix.lower()
        if ext not in _FORMATS:
            raise BulkFormerError(f"Cannot write results as {output.name!r}: unknown file type.",
                                  hint=f"End OUTPUT with one of: {', '.join(_FORMATS)}.")
        if kind == "gene_level" and genes_file is None and ext != ".npy":
            raise BulkFormerError(
                "Gene-level output for all ~20,000 genes is about 51 MB per sample: too big for "
                f"a {ext} file.",
                hint="Give --genes FILE with the genes you need, or write OUTPUT as .npy (streamed "
                "to disk, batch by batch).")
        if esm2 and kind != "gene_level":
            raise BulkFormerError("--esm2 adds protein embeddings to gene-level output only.",
                                  hint="Use --type gene_level with --esm2, or leave --esm2 out.")
        _check_output(output, inputs=(input_path, metadata, genes_file))
        loaded = _load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        if esm2:
            loaded.esm2_table()  # a missing table is reported before the model runs
        chosen = _read_gene_list(genes_file, loaded.gene_ids) if genes_file is not None else None
        prepared = _prepare(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths, counts=counts,
                            metadata=metadata)
        aligned = prepared.aligned
        run = {"batch_size": batch_size, "precision": precision, "compile": compile_mode}
        if loaded.compiles(len(aligned.sample_ids), compile=compile_mode):
            from bulkformer.inference import COMPILE_NOTE

            err.print(COMPILE_NOTE, markup=False)
        with _progress_bar() as report:
            if kind == "gene_level" and chosen is None:
                shape = _stream_gene_embeddings(loaded, aligned.values, output, with_esm2=esm2, progress=report,
                                                **run)
                result = None
            else:
                result = loaded.run(
                    aligned.values, aligned.sample_ids, embed=kind == "transcriptome_level",
                    impute=kind == "expression_imputation", aggregate=aggregate,
                    aggregate_genes=chosen if kind == "transcriptome_level" else None,
                    gene_embedding_genes=chosen if kind == "gene_level" else None,
                    with_esm2=esm2, progress=report, **run)
        if result is None:
            _write_id_files(output, samples=aligned.sample_ids, genes=loaded.gene_ids)
            out.print(f"[green]Wrote[/green] {escape(str(output))} (array {' × '.join(map(str, shape))})")
        else:
            facts = _run_facts(loaded, prepared, kind=kind, aggregate=aggregate, input_path=input_path,
                               genes_file=genes_file, **run)
            _write_result(result, prepared, output, kind=kind, genes=chosen, facts=facts, mode=impute_mode)
        if loaded.is_demo:
            err.print("Reminder: these results come from the DEMO model (simulated data).",
                      style="yellow")


def _check_output(output: Path, *, inputs: Sequence[Path | None]) -> None:
    """Refuse, before any work, an OUTPUT that cannot be written (a name too long, a folder that
    is a file) or that would overwrite one of the input files (a .npy's ID files included)."""
    targets = [output, *(_id_files(output) if output.suffix.lower() == ".npy" else ())]
    for target in targets:
        if len(target.name.encode()) > _MAX_NAME_BYTES:
            raise BulkFormerError(
                f"Cannot write {target.name[:40]}…: a file name may have at most {_MAX_NAME_BYTES} "
                f"bytes, this one has {len(target.name.encode())}"
                + (" (the .npy output's sample and gene lists are named after it)" if target != output else "")
                + ".", hint="Choose a shorter OUTPUT name.")
    existing = next((p for p in output.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise BulkFormerError(f"Cannot write {output}: {existing} is a file, not a folder.",
                              hint="Choose an OUTPUT in a folder (a new folder is made for you).")
    for source in inputs:
        for target in targets:
            if source is not None and target.exists() and target.samefile(source):
                raise BulkFormerError(f"OUTPUT {target} is the input file {source}: writing it would "
                                      "overwrite your data.", hint="Choose another OUTPUT name.")


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


def _load_model(spec: str, *, device: str, model_dir: Path | None, data_dir: Path | None) -> BulkFormerModel:
    """Load a model and say which one runs (and, for the demo, what its results are worth)."""
    from bulkformer.wrapper import BulkFormerModel

    loaded = BulkFormerModel.load(spec, device=device, model_dir=model_dir, data_dir=data_dir)
    out.print(f"Model: {loaded.describe()}", markup=False)
    if loaded.is_demo:
        err.print(DEMO_NOTE, style="yellow", markup=False)
    return loaded


def _prepare(input_path: Path, gene_order: tuple[str, ...], *, gene_lengths: str, counts: bool | None,
             metadata: Path | None) -> PreparedInput:
    """``prepare()`` with the --counts/--no-counts override (--no-counts: never read as counts),
    then the QC summary printed."""
    from bulkformer.pipeline import prepare

    def run(value_type: str) -> PreparedInput:
        return prepare(input_path, gene_order=gene_order, gene_lengths=gene_lengths, value_type=value_type,
                       sample_sheet=metadata)

    prepared = run({True: "counts", False: "auto", None: "auto"}[counts])
    if counts is False and prepared.guesses.value_type.value == "counts":
        prepared = run("tpm")  # whole numbers, but the user says they are not counts
    for line in prepared.qc.summary_lines():
        out.print(line, markup=False)
    return prepared


@contextmanager
def _progress_bar() -> Iterator[Callable[[int, int], None]]:
    """A samples-done progress bar; yields the ``progress(done, total)`` callback."""
    columns = (TextColumn("Running the model"), BarColumn(), MofNCompleteColumn(),
               TextColumn("samples"), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("run", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def _stream_gene_embeddings(loaded: BulkFormerModel, values: np.ndarray, output: Path, *,
                            with_esm2: bool, batch_size: int | None, precision: Precision, compile: Compile,
                            progress: Callable[[int, int], None]) -> tuple[int, ...]:
    """All genes' embeddings into a .npy, batch by batch (a temp file, renamed when complete)."""
    import contextlib
    import os
    import shutil

    import numpy as np

    from bulkformer.export import part_path

    output.parent.mkdir(parents=True, exist_ok=True)
    width = loaded.config.gene_feature_dim + (loaded.esm2_table().shape[1] if with_esm2 else 0)
    needed = values.shape[0] * len(loaded.gene_ids) * width * 4
    free = shutil.disk_usage(output.parent).free
    if needed > free:
        raise BulkFormerError(
            f"The gene-level output needs {dl.human_size(needed)} but only {dl.human_size(free)} is "
            f"free in {output.parent}.",
            hint="Free some space, write elsewhere, or give --genes to keep only some genes.")
    tmp = part_path(output)
    try:
        array = None
        for batch in loaded.iter_batches(values, embed=False, impute=False,
                                         gene_embedding_genes=loaded.gene_ids, with_esm2=with_esm2,
                                         batch_size=batch_size,
                                         precision=precision, compile=compile, progress=progress):
            if array is None:
                shape = (values.shape[0], *batch.gene_embedding.shape[1:])
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            array[batch.start:batch.stop] = batch.gene_embedding
        shape = array.shape
        array.flush()
        del array  # closes the memory map before the rename
        os.replace(tmp, output)
    except OSError as exc:
        raise BulkFormerError(f"Could not write {output}: {exc.strerror or exc}.",
                              hint="Check the free disk space and that you may write to that folder.") from exc
    finally:
        with contextlib.suppress(OSError):  # never hide the error that brought us here
            tmp.unlink(missing_ok=True)
    return shape


def _write_result(result: InferenceResult, prepared: PreparedInput, output: Path, *, kind: str,
                  genes: list[str] | None, facts: RunFacts, mode: str = "filled") -> None:
    """Write one run's result in the format OUTPUT's extension names."""
    import dataclasses

    import numpy as np

    from bulkformer import export

    ext = output.suffix.lower()
    aligned = prepared.aligned
    observed_values, observed = aligned.values, aligned.observed
    if kind == "expression_imputation" and genes is not None:  # keep only the genes asked for
        index = np.array([aligned.gene_ids.index(g) for g in genes])
        result = dataclasses.replace(result, gene_ids=tuple(genes), imputed=result.imputed[:, index])
        observed_values, observed = observed_values[:, index], observed[index]
    if ext == ".h5ad":
        data = export.to_anndata(result, measured_values=observed_values, observed=observed,
                                 metadata=prepared.metadata, symbols=_symbols(result.gene_ids), facts=facts)
    elif ext in _TABLES:
        if kind == "expression_imputation":  # genes as rows when they would not fit in Excel's columns
            frame = export.expression_frame(result, measured_values=observed_values, observed=observed, mode=mode,
                                            symbols=_symbols(result.gene_ids))
        else:
            frame = {"transcriptome_level": export.embedding_frame,
                     "gene_level": export.gene_embedding_frame}[kind](result)
        if prepared.metadata is not None and kind != "gene_level" and frame.index.name == "sample_id":
            sheet = prepared.metadata
            sheet = sheet.set_axis([f"{c} (sample sheet)" if c in frame.columns else c for c in sheet.columns],
                                   axis=1)
            frame = frame.join(sheet)
        data = frame
    else:
        if kind == "expression_imputation":
            array, genes_out = export.expression_values(result, measured_values=observed_values,
                                                        observed=observed, mode=mode)
        else:
            array, genes_out = {"transcriptome_level": (result.sample_embedding, None),
                                "gene_level": (result.gene_embedding, result.gene_embedding_ids)}[kind]
        if ext == ".pt":
            data = {"sample_ids": list(result.sample_ids), _ARRAY_NAMES[kind]: array,
                    **({"gene_ids": list(genes_out)} if genes_out is not None else {})}
        else:
            data = array
            _write_id_files(output, samples=result.sample_ids, genes=genes_out)
    try:
        export.write_output(data, output, notes=facts.notes)
    except BaseException:
        if ext == ".npy":
            _remove_id_files(output)
        raise
    out.print(f"[green]Wrote[/green] {escape(str(output))} ({_describe(data)})")


def _describe(data: object) -> str:
    """Size of what was written, in words."""
    import anndata
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return f"{data.shape[0]} rows × {data.shape[1]} columns"
    if isinstance(data, anndata.AnnData):
        return f"{data.n_obs} samples × {data.n_vars} genes"
    array = next(v for v in data.values() if not isinstance(v, list)) if isinstance(data, dict) else data
    return "array " + " × ".join(map(str, array.shape))


def _id_files(output: Path) -> tuple[Path, Path]:
    """Where a .npy output's row (sample) and column (gene) IDs go: beside it, as CSV."""
    return output.with_name(output.stem + ".samples.csv"), output.with_name(output.stem + ".genes.csv")


def _write_id_files(output: Path, *, samples: Sequence[str], genes: Sequence[str] | None) -> None:
    """Row and column IDs of a .npy output, which cannot hold them itself."""
    import pandas as pd

    from bulkformer.export import write_output

    samples_path, genes_path = _id_files(output)
    write_output(pd.DataFrame({"sample_id": list(samples)}), samples_path)
    if genes is not None:
        write_output(pd.DataFrame({"gene_id": list(genes)}), genes_path)
    out.print(f"Row order: {samples_path.name}" + (f"; gene order: {genes_path.name}" if genes is not None else ""),
              markup=False)


def _remove_id_files(output: Path) -> None:
    """Undo :func:`_write_id_files` when the main output could not be written."""
    for path in _id_files(output):
        path.unlink(missing_ok=True)


def _symbols(gene_ids: Sequence[str]) -> dict[str, str]:
    """Gene symbols from the shipped annotation, for the .h5ad ``var`` table."""
    from bulkformer.genes import load_annotation

    return load_annotation().symbols_of(gene_ids)


def _run_facts(loaded: BulkFormerModel, prepared: PreparedInput, *, kind: str, aggregate: str,
               input_path: Path, genes_file: Path | None, batch_size: int | None,
               precision: str, compile: str) -> RunFacts:
    """What the report and the .h5ad ``uns`` record about this run."""
    from bulkformer.export import RunFacts

    extra = [("output", kind), ("input", input_path.name),
             ("value type", prepared.guesses.value_type.value), ("torch.compile", compile)]
    if genes_file is not None:
        extra.append(("genes file", genes_file.name))
    return RunFacts(
        model_name=loaded.name, model_checksum=loaded.checksum, model_source=loaded.source,
        is_demo=loaded.is_demo, device=loaded.device.type, aggregate=aggregate, batch_size=batch_size,
        precision=precision, n_samples=len(prepared.aligned.sample_ids), n_genes=len(loaded.gene_ids),
        qc_summary=tuple(prepared.qc.summary_lines()), extra=tuple(extra),
        n_measured_genes=int(prepared.aligned.observed.sum()))


@app.command("holdout")
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
    counts: Annotated[bool | None, typer.Option(
        "--counts/--no-counts", help="Say whether the values are raw read counts (default: detected).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Which genes are hidden (the same seed hides the same ones).")] = 0,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Samples per forward pass (default: chosen from free memory).", show_default=False)] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
) -> None:
    """How far to trust imputed values on YOUR data: hide some measured values, let the model fill
    them in, and compare it with two simple baselines (each gene's mean over your other samples,
    and k nearest samples). Prints the scores and a verdict in words."""
    with user_errors():
        from bulkformer import export
        from bulkformer import holdout as ho

        if output is not None and output.suffix.lower() not in _TABLES:
            raise BulkFormerError(f"Cannot write the table as {output.name!r}.",
                                  hint=f"End --output with one of: {', '.join(_TABLES)}.")
        if output is not None:
            _check_output(output, inputs=(input_path,))
        loaded = _load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        prepared = _prepare(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths, counts=counts,
                            metadata=None)
        aligned = prepared.aligned
        hidden = ho.hide_measured(aligned.values, aligned.observed, fraction=fraction, seed=seed)
        with _progress_bar() as report:
            imputed = loaded.run(hidden.values, aligned.sample_ids, embed=False, impute=True, precision="fp32",
                                 batch_size=batch_size, progress=report).imputed
        comparison = ho.compare_with_baselines(aligned.values, hidden, imputed, observed=aligned.observed,
                                               sample_ids=aligned.sample_ids)
        _print_holdout(comparison)
        judged = ho.verdict(comparison)
        out.print()
        for line in judged.lines():
            style = {"better": "green", "cannot judge": "yellow"}.get(judged.level, "red")
            out.print(line, style=style if line.startswith("Verdict") else None, markup=False)
        if output is not None:
            notes = export.file_notes(is_demo=loaded.is_demo, n_measured=comparison.n_measured_genes,
                                      n_model_genes=comparison.n_model_genes)
            export.write_output(comparison.table, output, notes=(*notes, *judged.lines()))
            out.print(f"[green]Wrote[/green] {escape(str(output))} (per sample, per expression level and overall)")
        if loaded.is_demo:
            err.print("Reminder: this check used the DEMO model (simulated data), not a published model.",
                      style="yellow")


def _print_holdout(comparison: HoldoutComparison) -> None:
    """The overall and per-level rows of a hold-out comparison as one table (NaN: undefined)."""
    import math

    from bulkformer.holdout import MODEL

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


@app.command()
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
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
    counts: Annotated[bool | None, typer.Option(
        "--counts/--no-counts", help="Say whether the values are raw read counts (default: detected).",
        show_default=False)] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Label the result as a demo model (shown on every page and file).")] = False,
    resume: Annotated[bool, typer.Option("--resume/--restart", help="Continue an interrupted run.")] = True,
) -> None:
    """Train BulkFormer on your cohort by masked expression modelling, or fine-tune a model."""
    with user_errors():
        from bulkformer.checkpoint import check_model_folder
        from bulkformer.gene_lengths import UPSTREAM
        from bulkformer.genes import protein_coding_ids
        from bulkformer.model import PRESETS, BulkFormerConfig
        from bulkformer.train import TrainingConfig
        from bulkformer.train import train as run_training
        from bulkformer.wrapper import BulkFormerModel

        check_model_folder(output_dir)  # before minutes of work, and before any file is touched
        base = BulkFormerModel.load(start_from, device=device) if start_from else None
        gene_order = base.gene_ids if base else protein_coding_ids()
        # A fine-tuned model keeps its base's normalisation; a new one uses the published models'.
        lengths = base.gene_lengths if base else UPSTREAM
        prepared = _prepare(input_path, tuple(gene_order), gene_lengths=lengths, counts=counts, metadata=None)
        architecture = None
        if base is None:
            check_choice(size, ("custom", *PRESETS), what="size")
            shape = PRESETS[size] if size != "custom" else BulkFormerConfig(dim=dim, p_repeat=layers, heads=heads)
            architecture = BulkFormerConfig.from_dict(
                {**shape.to_dict(), "n_genes": len(gene_order), "name": "demo" if demo else shape.name})
        config = TrainingConfig(epochs=epochs, batch_size=batch_size, lr=lr, mask_fraction=mask_fraction,
                                panel_fraction=panel_fraction, val_fraction=val_fraction, graph_k=graph_k, warmup_steps=warmup_steps,
                                seed=seed, device=device)
        columns = (TextColumn("Epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("steps  loss {task.fields[loss]}"), TimeRemainingColumn())
        with Progress(*columns, console=out) as bar:
            task = bar.add_task("train", total=None, epoch="-", loss="-")
            result = run_training(
                prepared.aligned, output_dir=output_dir, start_from=base, architecture=architecture,
                config=config, resume=resume,
                progress=lambda p: bar.update(task, completed=p.step, total=p.total_steps,
                                              epoch=f"{p.epoch}/{p.epochs}", loss=f"{p.loss:.3f}"),
                on_epoch=lambda r: bar.console.print(
                    f"epoch {r.epoch}: train loss {r.train_loss:.4f}, held-out loss {r.val_loss:.4f}, "
                    f"held-out imputation PCC {r.val_pcc:.3f} ({r.seconds:.0f} s)"),
                extra_facts={"demo": demo, "source_file": input_path.name, "qc": prepared.qc.summary_lines()},
                gene_lengths=lengths,
            )
        out.print(f"[green]Saved[/green] {result.model.describe()} to {output_dir}")


# --- predict ------------------------------------------------------------------------------------

@app.command()
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
    seed: Annotated[int, typer.Option(help="Folds and shuffles (the same seed gives the same result).")] = 0,
    model_dir: ModelDirOption = None,
    data_dir: DataDirOption = None,
    counts: Annotated[bool | None, typer.Option(
        "--counts/--no-counts", help="Say whether the values are raw read counts (default: detected).",
        show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Samples per forward pass (default: chosen from free memory).", show_default=False)] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option()] = "auto",
) -> None:
    """Does a sample-sheet column follow from the expression? Cross-validated models on the
    BulkFormer sample embeddings, on PCA of the expression (the usual baseline) and on both,
    compared on the same folds, with permutation p-values and a verdict in words."""
    with user_errors():
        from bulkformer import export
        from bulkformer import predict as pr

        for path in (output, predictions):
            if path is not None and path.suffix.lower() not in _TABLES:
                raise BulkFormerError(f"Cannot write the table as {path.name!r}.",
                                      hint=f"End it with one of: {', '.join(_TABLES)}.")
            if path is not None:
                _check_output(path, inputs=(input_path, samples))
        loaded = _load_model(model, device=device, model_dir=model_dir, data_dir=data_dir)
        prepared = _prepare(input_path, loaded.gene_ids, gene_lengths=loaded.gene_lengths, counts=counts,
                            metadata=samples)
        target = pr.make_target(prepared.metadata, column, event_column=event_column, kind=kind)
        out.print(f"Task: {target.kind} of {target.name} ({target.reason}); {target.n_labelled} labelled "
                  f"samples, {len(target.sample_ids) - target.n_labelled} to predict.", markup=False)
        aligned = prepared.aligned
        with _progress_bar() as report:
            embedding = loaded.run(aligned.values, aligned.sample_ids, impute=False, batch_size=batch_size,
                                   progress=report).sample_embedding
        columns = (TextColumn("Cross-validating"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TimeRemainingColumn())
        with Progress(*columns, console=out) as bar:
            task = bar.add_task("cv", total=None)
            result = pr.evaluate(embedding, pr.expression_features(aligned.values, aligned.observed), target,
                                 n_permutations=permutations, seed=seed,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
        _print_prediction(result)
        notes = (*export.file_notes(is_demo=loaded.is_demo, n_measured=int(aligned.observed.sum()),
                                    n_model_genes=len(aligned.gene_ids)), result.verdict)
        for path, table, what in ((output, result.folds, "per-fold results"),
                                  (predictions, pr.predictions_table(result), "predictions")):
            if path is not None:
                export.write_output(table, path, notes=notes)
                out.print(f"[green]Wrote[/green] {escape(str(path))} ({what})")
        if loaded.is_demo:
            err.print("Reminder: these embeddings come from the DEMO model (simulated data).", style="yellow")


def _print_prediction(result: PredictionResult) -> None:
    """The comparison table, the verdict, how it was evaluated and the unlabelled samples' predictions."""
    from bulkformer.predict import FEATURE_LABELS, METRIC_LABELS

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


def main() -> None:
    """Entry point of the ``bulkformer`` program (``[project.scripts]``)."""
    app(prog_name="bulkformer")
