"""What every command shares: the consoles, the user-error guard, the model/data options, loading
the model, preparing the input, the progress bar and the OUTPUT checks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from bulkformer.choices import VALUE_TYPE, ValueType
from bulkformer.errors import BulkFormerError
from bulkformer.fetch import _registry as registry

if TYPE_CHECKING:  # heavy imports (torch) happen inside the functions that need them
    from bulkformer.inputs._pipeline import PreparedInput
    from bulkformer.model._bulkformer_model import BulkFormerModel

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


ValueTypeOption = Annotated[ValueType, typer.Option(
    "--value-type", help=f"What the numbers in INPUT are (as the app's Upload page asks): {VALUE_TYPE.cli_help()}")]
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

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
_MAX_NAME_BYTES = 255  # what Linux, macOS and Windows file systems allow in one name


def check_output(output: Path, *, inputs: Sequence[Path | None]) -> None:
    """Refuse, before any work, an OUTPUT that cannot be written (a name too long, a folder that
    is a file) or that would overwrite one of the input files (a .npy's ID files included)."""
    targets = [output, *(id_files(output) if output.suffix.lower() == ".npy" else ())]
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
    if output.is_dir():
        raise BulkFormerError(f"Cannot write {output}: it is a folder.",
                              hint="Give OUTPUT a file name, for example results.csv.")
    check_writable(output)
    for source in inputs:
        for target in targets:
            if source is not None and target.exists() and target.samefile(source):
                raise BulkFormerError(f"OUTPUT {target} is the input file {source}: writing it would "
                                      "overwrite your data.", hint="Choose another OUTPUT name.")


def check_writable(target: Path) -> None:
    """Refuse, before any work, a ``target`` (file or folder to be made) that cannot be written:
    a file is created and removed in the nearest folder that exists (asking is not enough: as
    root, ``os.access`` says yes to ``/proc/1``), and an existing file must be writable."""
    target = Path(target).absolute()
    folder = next((p for p in target.parents if p.exists()), None)
    if folder is None or not folder.is_dir():
        return  # a file where a folder should be: check_output / check_model_folder word it
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bulkformer-write-check-"):
            pass
        if target.is_file() and not os.access(target, os.W_OK):
            raise PermissionError(13, "the file is read-only")
    except OSError as exc:
        raise BulkFormerError(
            f"Cannot write {target}: {'it' if target.is_file() else folder} is not writable "
            f"({exc.strerror or exc}).",
            hint="Choose a place in a folder of your own (your home or project folder).") from None


def load_model(spec: str, *, device: str, model_dir: Path | None, data_dir: Path | None) -> BulkFormerModel:
    """Load a model and say which one runs (and, for the demo, what its results are worth)."""
    from bulkformer.model._bulkformer_model import BulkFormerModel

    loaded = BulkFormerModel.load(spec, device=device, model_dir=model_dir, data_dir=data_dir)
    out.print(f"Model: {loaded.describe()}", markup=False)
    if loaded.is_demo:
        err.print(DEMO_NOTE, style="yellow", markup=False)
    return loaded


def remind_if_demo(loaded: BulkFormerModel, subject: str) -> None:
    """Say again, after the output where people look last, that ``subject`` came from the demo model."""
    if loaded.is_demo:
        err.print(f"Reminder: {subject} come from the DEMO model (simulated data), not a published model.",
                  style="yellow", markup=False)


def prepare_input(input_path: Path, gene_order: tuple[str, ...], *, gene_lengths: str, value_type: str,
             metadata: Path | None) -> PreparedInput:
    """``prepare()`` as the app calls it (one value type: given, or ``auto``), then the QC
    summary printed."""
    from bulkformer.inputs._pipeline import prepare

    prepared = prepare(input_path, gene_order=gene_order, gene_lengths=gene_lengths, value_type=value_type,
                       sample_sheet=metadata)
    for line in prepared.qc.summary_lines():
        out.print(line, markup=False)
    return prepared


@contextmanager
def progress_bar() -> Iterator[Callable[[int, int], None]]:
    """A samples-done progress bar; yields the ``progress(done, total)`` callback."""
    columns = (TextColumn("Running the model"), BarColumn(), MofNCompleteColumn(),
               TextColumn("samples"), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("run", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def id_files(output: Path) -> tuple[Path, Path]:
    """Where a .npy output's row (sample) and column (gene) IDs go: beside it, as CSV."""
    return output.with_name(output.stem + ".samples.csv"), output.with_name(output.stem + ".genes.csv")
