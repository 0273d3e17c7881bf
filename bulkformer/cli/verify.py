"""``bulkformer verify``: the installation, the downloaded files and the model, with what to fix."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from bulkformer import paths
from bulkformer.cli._common import (
    DataDirOption,
    ModelDirOption,
    ModelOption,
    err,
    out,
    user_errors,
)
from bulkformer.errors import BulkFormerError
from bulkformer.fetch import zenodo as dl

CHECKSUMS_NAME = dl.CHECKSUMS_NAME

_LIBRARIES = (  # (label, module, distribution)
    ("torch", "torch", "torch"),
    ("torch-geometric", "torch_geometric", "torch-geometric"),
    ("performer-pytorch", "performer_pytorch", "performer-pytorch"),
    ("numpy", "numpy", "numpy"),
)


def verify(model: ModelOption = "demo", model_dir: ModelDirOption = None,
           data_dir: DataDirOption = None) -> None:
    """Check the installation, the downloaded files and the model, and say what to fix."""
    with user_errors():
        problems: list[str] = []
        for option, given in (("--model-dir", model_dir), ("--data-dir", data_dir)):
            if given is not None and not given.is_dir():  # never "All checks passed" for a typo
                problems.append(f"The {option} folder {given} "
                                f"{'is a file' if given.exists() else 'does not exist'}: give the folder "
                                f"the files were downloaded to, or leave {option} out for the usual one.")
        model_dir = model_dir or paths.model_dir()
        data_dir = data_dir or paths.data_dir()
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
    from bulkformer.fetch._registry import ESM2_NAME, GENE_INFO_NAME
    from bulkformer.model._files import PUBLISHED_FILES

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

    from bulkformer.model._bulkformer_model import BulkFormerModel
    from bulkformer.model._config import MISSING

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
