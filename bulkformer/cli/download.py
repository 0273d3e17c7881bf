"""``bulkformer download …``: the published models and data files from Zenodo and Google Drive."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
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

from bulkformer import paths
from bulkformer.cli._common import out, user_errors
from bulkformer.fetch import _registry as registry
from bulkformer.fetch import zenodo as dl

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

    Listed names are plain file names (:func:`bulkformer.fetch.zenodo.list_record` refuses others)."""
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
    from bulkformer.fetch import _published as model_fetch

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
