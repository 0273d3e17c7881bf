"""The ``bulkformer`` command line: a thin layer over the package, for people who don't program.

Every command runs its work inside :func:`user_errors`, so a problem the user can fix is
printed as a short red message (what went wrong, then what to do) with exit code 1, never
as a Python traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
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


def main() -> None:
    """Entry point of the ``bulkformer`` program (``[project.scripts]``)."""
    app(prog_name="bulkformer")
