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
from bulkformer import paths
from bulkformer.errors import BulkFormerError

if TYPE_CHECKING:  # heavy imports (torch) happen inside the commands that need them
    import numpy as np

    from bulkformer.export import RunFacts
    from bulkformer.inference import Compile, Precision
    from bulkformer.pipeline import PreparedInput
    from bulkformer.wrapper import BulkFormerModel, InferenceResult

app = typer.Typer(
    name="bulkformer",
    help="BulkFormer Studio: get the published BulkFormer model and use it on bulk RNA-seq data.",
    no_args_is_help=True,
    add_completion=False,
)
download_app = typer.Typer(
    help=(
        "Get the published BulkFormer files from Zenodo. Start with 'download info'; "
        "'download all' fetches the model and its gene tables. Interrupted downloads resume "
        "when you run the same command again."
    ),
    short_help="Get the published BulkFormer model and data files from Zenodo.",
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
    """Whether a file is on disk already (by size: a full md5 check is for the download)."""
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


def _download(selection: str, record: str | None, dest: Path | None) -> None:
    """Download with one progress bar per file, then say where everything was saved."""
    with user_errors():
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
                bar.update(tasks[name], completed=done)

            saved = dl.download(selection, record_id=record, dest=dest, progress=on_progress)
        out.print(f"[green]Done.[/green] {len(saved)} file(s) ready and checked:")
        for path in saved:
            out.print(f"  {path}", markup=False)


@download_app.command("model")
def download_model(record: RecordOption = None, dest: DestOption = None) -> None:
    """Download the model checkpoint (v1, about 570 MB) into the model folder."""
    _download("model", record, dest)


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
        "one ('37M', '50M', '93M', '127M', '147M', 'v1') or the path of a checkpoint or model folder.",
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
    "works but mean nothing biologically. Run 'bulkformer download all' to get the published "
    "BulkFormer weights, then pass --model 147M (or another size)."
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
        recorded = _recorded_md5(folder)
        for name in names:
            path = folder / name
            if path.is_file():
                state = f"present ({dl.human_size(path.stat().st_size)})"
                if name in recorded:
                    if dl.verify_file(path, recorded[name]):
                        state += ", md5 OK"
                    else:
                        state += ", [red]md5 does not match[/red]"
                        problems.append(f"{path} is damaged (its md5 differs from the one recorded in "
                                        f"{CHECKSUMS_NAME}): {_fetch_hint(name)}.")
            elif path.with_name(name + ".part").is_file():
                state = "[yellow]partly downloaded[/yellow]"
                problems.append(f"{name} is only partly downloaded: {_fetch_hint(name)} (it resumes).")
            else:
                state = "not downloaded"
            out.print(f"  {name}: {state}")


def _fetch_hint(name: str) -> str:
    """How to get a published file again: from Zenodo by name, or by hand from Google Drive."""
    if any(c.file_name == name for c in dl.DRIVE_CHECKPOINTS):
        return f"download {name} again from Google Drive (links: 'bulkformer download info')"
    return f"run 'bulkformer download file {name}'"


def _recorded_md5(folder: Path) -> dict[str, str]:
    """``{name: md5}`` from the folder's checksums.json, or nothing if it has none (or is unreadable)."""
    import json

    try:
        data = json.loads((folder / CHECKSUMS_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v).removeprefix("md5:") for k, v in data.items() if isinstance(v, str)}


def _check_model(spec: str, model_dir: Path, data_dir: Path, problems: list[str]) -> None:
    """Load the chosen model and run one random sample through it."""
    import time

    import numpy as np

    from bulkformer.wrapper import BulkFormerModel

    out.print(f"[bold]Model[/bold] {escape(spec)}")
    folder = paths.demo_model_dir() if spec == "demo" else Path(spec)
    for name, md5 in _recorded_md5(folder).items():
        if not dl.verify_file(folder / name, md5):
            problems.append(f"{folder / name} is damaged (its md5 differs from {CHECKSUMS_NAME}): "
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
    values[0, rng.random(n_genes) < 0.2] = -10.0
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
        "embedding per sample and gene (give --genes); expression_imputation: predicted log1p "
        "TPM for every model gene.")] = "transcriptome_level",
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
    precision: Annotated[Literal["auto", "fp32", "bf16"], typer.Option(
        help="auto: bf16 where the CPU or GPU computes it natively (faster; embeddings within "
        "cosine 0.999 of fp32), else fp32. fp32: exact reference arithmetic.")] = "auto",
    compile_mode: Annotated[Literal["auto", "on", "off"], typer.Option(
        "--compile", help="Compile the model's layers with torch.compile: about 1.8x faster per "
        "sample on a CPU after a one-off wait of ~30 s. auto: on the CPU when the run is long "
        "enough to gain from it.")] = "auto",
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
        from bulkformer.wrapper import BulkFormerModel

        loaded = BulkFormerModel.load(model, device=device, model_dir=model_dir, data_dir=data_dir)
        out.print(f"Model: {loaded.describe()}", markup=False)
        if loaded.is_demo:
            err.print(DEMO_NOTE, style="yellow", markup=False)
        chosen = _read_gene_list(genes_file, loaded.gene_ids) if genes_file is not None else None
        prepared = _prepare(input_path, loaded.gene_ids, counts=counts, metadata=metadata)
        for line in prepared.qc.summary_lines():
            out.print(line, markup=False)
        aligned = prepared.aligned
        run = {"batch_size": batch_size, "precision": precision, "compile": compile_mode}
        if loaded.compiles(len(aligned.sample_ids), compile=compile_mode):
            from bulkformer.inference import COMPILE_NOTE

            err.print(COMPILE_NOTE, markup=False)
        with _progress_bar() as report:
            if kind == "gene_level" and chosen is None:
                shape = _stream_gene_embeddings(loaded, aligned.values, output, progress=report, **run)
                result = None
            else:
                result = loaded.run(
                    aligned.values, aligned.sample_ids, embed=kind == "transcriptome_level",
                    impute=kind == "expression_imputation", aggregate=aggregate,
                    aggregate_genes=chosen if kind == "transcriptome_level" else None,
                    gene_embedding_genes=chosen if kind == "gene_level" else None,
                    progress=report, **run)
        if result is None:
            _write_id_files(output, samples=aligned.sample_ids, genes=loaded.gene_ids)
            out.print(f"[green]Wrote[/green] {escape(str(output))} (array {' × '.join(map(str, shape))})")
        else:
            facts = _run_facts(loaded, prepared, kind=kind, aggregate=aggregate, input_path=input_path,
                               genes_file=genes_file, **run)
            _write_result(result, prepared, output, kind=kind, genes=chosen, facts=facts)
        if loaded.is_demo:
            err.print("Reminder: these results come from the DEMO model (simulated data).",
                      style="yellow")


def _read_gene_list(path: Path, model_genes: tuple[str, ...]) -> list[str]:
    """Ensembl IDs of the genes in a one-per-line file (IDs or symbols; '#' starts a comment)."""
    from bulkformer.genes import map_genes

    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BulkFormerError(f"Could not read the gene list {path}: {exc}.",
                              hint="Give a plain text file with one gene per line.") from exc
    labels = [line.split("#", 1)[0].strip() for line in lines]
    labels = [label for label in labels if label]
    if not labels:
        raise BulkFormerError(f"The gene list {path} names no genes.",
                              hint="Put one Ensembl ID or gene symbol per line.")
    mapping = map_genes(labels, id_type="auto")
    unknown = mapping.unmapped_labels
    if unknown:
        raise BulkFormerError(
            f"{len(unknown)} gene(s) in {path.name} are not known human genes: {', '.join(unknown[:5])}.",
            hint="Use Ensembl gene IDs (ENSG…) or current HGNC symbols.")
    in_model = set(model_genes)
    outside = [label for label, g in zip(labels, mapping.ensg_ids, strict=True) if g not in in_model]
    if outside:
        raise BulkFormerError(
            f"{len(outside)} gene(s) in {path.name} are not among this model's genes: {', '.join(outside[:5])}.",
            hint="BulkFormer models protein-coding genes; remove the others from the list.")
    return list(dict.fromkeys(g for g in mapping.ensg_ids if g is not None))


def _prepare(input_path: Path, gene_order: tuple[str, ...], *, counts: bool | None,
             metadata: Path | None) -> PreparedInput:
    """``prepare()`` with the --counts/--no-counts override (--no-counts: never read as counts)."""
    from bulkformer.pipeline import prepare

    def run(value_type: str) -> PreparedInput:
        return prepare(input_path, gene_order=gene_order, value_type=value_type, sample_sheet=metadata)

    prepared = run({True: "counts", False: "auto", None: "auto"}[counts])
    if counts is False and prepared.guesses.value_type.value == "counts":
        prepared = run("tpm")  # whole numbers, but the user says they are not counts
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
                            batch_size: int | None, precision: Precision, compile: Compile,
                            progress: Callable[[int, int], None]) -> tuple[int, ...]:
    """All genes' embeddings into a .npy, batch by batch (a temp file, renamed when complete)."""
    import os
    import shutil
    import uuid

    import numpy as np

    output.parent.mkdir(parents=True, exist_ok=True)
    needed = values.shape[0] * len(loaded.gene_ids) * loaded.config.dim * 4
    free = shutil.disk_usage(output.parent).free
    if needed > free:
        raise BulkFormerError(
            f"The gene-level output needs {dl.human_size(needed)} but only {dl.human_size(free)} is "
            f"free in {output.parent}.",
            hint="Free some space, write elsewhere, or give --genes to keep only some genes.")
    tmp = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:12]}.part.npy")
    try:
        array = None
        for batch in loaded.iter_batches(values, embed=False, impute=False,
                                         gene_embedding_genes=loaded.gene_ids, batch_size=batch_size,
                                         precision=precision, compile=compile, progress=progress):
            if array is None:
                shape = (values.shape[0], *batch.gene_embedding.shape[1:])
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            array[batch.start:batch.stop] = batch.gene_embedding
        shape = array.shape
        array.flush()
        del array  # closes the memory map before the rename
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return shape


def _write_result(result: InferenceResult, prepared: PreparedInput, output: Path, *, kind: str,
                  genes: list[str] | None, facts: RunFacts) -> None:
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
        data = export.to_anndata(result, observed_values=observed_values, observed=observed,
                                 metadata=prepared.metadata, symbols=_symbols(result.gene_ids), facts=facts)
    elif ext in _TABLES:
        frame = {"transcriptome_level": export.embedding_frame, "expression_imputation": export.imputed_frame,
                 "gene_level": export.gene_embedding_frame}[kind](result)
        if prepared.metadata is not None and kind != "gene_level":  # long tables: join on sample_id
            sheet = prepared.metadata
            sheet = sheet.set_axis([f"{c} (sample sheet)" if c in frame.columns else c for c in sheet.columns],
                                   axis=1)
            frame = frame.join(sheet)
        data = frame
    else:
        array, genes_out = {
            "transcriptome_level": (result.sample_embedding, None),
            "expression_imputation": (result.imputed, result.gene_ids),
            "gene_level": (result.gene_embedding, result.gene_embedding_ids),
        }[kind]
        if ext == ".pt":
            data = {"sample_ids": list(result.sample_ids), _ARRAY_NAMES[kind]: array,
                    **({"gene_ids": list(genes_out)} if genes_out is not None else {})}
        else:
            data = array
            _write_id_files(output, samples=result.sample_ids, genes=genes_out)
    try:
        export.write_output(data, output)
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

    table = load_annotation().table.drop_duplicates("ensg_id").set_index("ensg_id")["symbol"]
    found = table.reindex(list(gene_ids))
    return {g: s for g, s in found.items() if isinstance(s, str) and s}


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
        qc_summary=tuple(prepared.qc.summary_lines()), extra=tuple(extra))


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
        from bulkformer.genes import protein_coding_ids
        from bulkformer.model import PRESETS, BulkFormerConfig
        from bulkformer.train import TrainingConfig
        from bulkformer.train import train as run_training
        from bulkformer.wrapper import BulkFormerModel

        base = BulkFormerModel.load(start_from, device=device) if start_from else None
        gene_order = base.gene_ids if base else protein_coding_ids()
        prepared = _prepare(input_path, tuple(gene_order), counts=counts, metadata=None)
        for line in prepared.qc.summary_lines():
            out.print(line, markup=False)
        architecture = None
        if base is None:
            if size != "custom" and size not in PRESETS:
                raise BulkFormerError(f"Unknown size {size!r}.", hint=f"Use custom or one of {', '.join(PRESETS)}.")
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
            )
        out.print(f"[green]Saved[/green] {result.model.describe()} to {output_dir}")


def main() -> None:
    """Entry point of the ``bulkformer`` program (``[project.scripts]``)."""
    app(prog_name="bulkformer")
