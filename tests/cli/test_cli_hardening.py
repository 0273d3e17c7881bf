"""The CLI answers hostile or unlucky arguments with a message, never a traceback, and never
harms a user's files: outputs inside files, very long names, outputs that are inputs, damaged
model folders and resume files, training into an existing file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bulkformer.cli import app
from bulkformer.genes import load_annotation
from bulkformer.model._bulkformer_model import BulkFormerModel
from tests.conftest import random_graph, tiny_network

runner = CliRunner()
SAMPLES = [f"S{i}" for i in range(4)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny saved model over 150 real genes and a counts table measuring 120 of them."""
    root = tmp_path_factory.mktemp("hard")
    genes = list(load_annotation().protein_coding_ids()[:160])
    BulkFormerModel(tiny_network("v2", seed=1, n_genes=150), random_graph(150, 600), genes[:150],
                    checksum="x", source="test", device="cpu").save(root / "model")
    counts = np.random.default_rng(0).negative_binomial(2, 0.01, size=(120, len(SAMPLES)))
    pd.DataFrame(counts, index=pd.Index(genes[40:160], name="gene_id"), columns=SAMPLES).to_csv(root / "counts.csv")
    return root


def _run(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _extract(root: Path, output: Path, *args: str) -> object:
    return _run("extract", str(root / "counts.csv"), str(output), "--model", str(root / "model"),
                "--device", "cpu", "--batch-size", "2", *args)


def test_output_inside_a_file_is_refused_before_any_work(root: Path) -> None:
    (root / "afile").write_text("x")
    result = _extract(root, root / "afile" / "out.csv")
    assert result.exit_code == 1 and "afile is a file, not a folder" in result.output


def test_a_long_legal_output_name_works(root: Path, tmp_path: Path) -> None:
    output = tmp_path / ("a" * 246 + ".csv")  # 250 bytes: legal; its temporary name must be too
    result = _extract(root, output)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(output, comment="#", index_col=0).shape[0] == len(SAMPLES)
    report = "a" * 245 + ".report.md"  # its run report, the name shortened to 255 bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([output.name, report])  # no temporary file left
    # a .npy's sample and gene lists are named after it: over 255 bytes, refused up front
    result = _extract(root, tmp_path / ("b" * 246 + ".npy"))
    assert result.exit_code == 1 and "at most 255 bytes" in result.output and "shorter" in result.output


def test_output_that_is_an_input_is_refused(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "in.csv"
    shutil.copy(root / "counts.csv", copy)
    result = _run("extract", str(copy), str(copy), "--model", str(root / "model"), "--device", "cpu")
    assert result.exit_code == 1 and "would overwrite your data" in result.output
    assert copy.read_bytes() == (root / "counts.csv").read_bytes()
    # a .npy output whose sample list would land on the input: refused too
    listed = tmp_path / "x.samples.csv"
    shutil.copy(root / "counts.csv", listed)
    result = _run("extract", str(listed), str(tmp_path / "x.npy"), "--model", str(root / "model"), "--device", "cpu")
    assert result.exit_code == 1 and "would overwrite your data" in result.output


def test_sample_sheet_with_reserved_column_name_goes_into_h5ad(root: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame({"sample_id": SAMPLES, "_index": list("abcd"), "tissue": list("xxyy")}).to_csv(sheet, index=False)
    result = _extract(root, tmp_path / "out.h5ad", "--metadata", str(sheet))
    assert result.exit_code == 0, result.output
    obs = anndata.read_h5ad(tmp_path / "out.h5ad").obs
    assert obs["_index (sample sheet)"].tolist() == list("abcd") and obs["tissue"].tolist() == list("xxyy")


def test_damaged_model_folder_fails_extract_and_verify(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(root / "model", folder)
    config = json.loads((folder / "config.json").read_text())
    config["gene_ids"][1] = config["gene_ids"][0]
    (folder / "config.json").write_text(json.dumps(config))
    result = _run("extract", str(root / "counts.csv"), str(tmp_path / "o.csv"), "--model", str(folder), "--device", "cpu")
    assert result.exit_code == 1 and "appears more than once" in result.output
    result = _run("verify", "--model", str(folder))
    assert result.exit_code == 1 and "appears more than once" in result.output
    assert "All checks passed" not in result.output


def test_train_into_an_existing_file_is_refused_up_front(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "existing.txt"
    target.write_text("precious")
    result = _run("train", str(root / "counts.csv"), str(target), "--epochs", "1", "--dim", "16",
                  "--layers", "1", "--device", "cpu")
    assert result.exit_code == 1 and "existing.txt is a file" in result.output
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["existing.txt"]  # no resume file, nothing renamed


def test_holdout_output_that_is_its_input_is_refused(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "in.csv"
    shutil.copy(root / "counts.csv", copy)
    result = _run("holdout", str(copy), "--output", str(copy), "--model", str(root / "model"), "--device", "cpu")
    assert result.exit_code == 1 and "would overwrite your data" in result.output
    assert copy.read_bytes() == (root / "counts.csv").read_bytes()


# --- second round (issue #28): no traceback from any option; outputs checked before any work ---

def _train(root: Path, output: Path, *args: str) -> object:
    return _run("train", str(root / "counts.csv"), str(output), "--epochs", "1", "--dim", "16",
                "--layers", "1", "--batch-size", "2", "--device", "cpu", "--graph-k", "3", *args)


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--lr", "nan", "finite number"),
    ("--lr", "inf", "finite number"),
    ("--lr", "-1", "above 0"),
    ("--lr", "0", "above 0"),
    ("--graph-k", "100000000", "graph_k must lie between"),
    ("--dim", "1000000000", "GB of memory"),
    ("--layers", "100000000", "GB of memory"),
])
def test_train_refuses_impossible_settings_before_reading_the_input(
        root: Path, tmp_path: Path, option: str, value: str, says: str) -> None:
    result = _train(root, tmp_path / "m", option, value)
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "QC" not in result.output and "Saved" not in result.output  # no input read, nothing saved
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["holdout", "train", "predict"])
def test_negative_seeds_are_a_usage_error(root: Path, tmp_path: Path, command: str) -> None:
    args = {"holdout": ["holdout", str(root / "counts.csv")],
            "train": ["train", str(root / "counts.csv"), str(tmp_path / "m")],
            "predict": ["predict", str(root / "counts.csv"), str(root / "counts.csv"),
                        "--column", "x"]}[command]
    result = _run(*args, "--seed", "-1")
    assert result.exit_code == 2 and "seed" in result.output


def test_outputs_that_cannot_be_written_are_refused_before_the_model_loads(root: Path) -> None:
    """/proc/1 is a folder no one can create files in, root included (os.access says yes to root)."""
    result = _extract(root, Path("/proc/1/nope.csv"))
    assert result.exit_code == 1 and "not writable" in result.output
    assert "Model:" not in result.output  # refused before the model was loaded
    result = _run("holdout", str(root / "counts.csv"), "--output", "/proc/1/x.csv",
                  "--model", str(root / "model"), "--device", "cpu")
    assert result.exit_code == 1 and "not writable" in result.output and "Model:" not in result.output
    result = _run("train", str(root / "counts.csv"), "/proc/1/m", "--epochs", "1", "--device", "cpu")
    assert result.exit_code == 1 and "not writable" in result.output and "QC" not in result.output


def test_outputs_in_missing_folders_are_made(root: Path, tmp_path: Path) -> None:
    output = tmp_path / "missing" / "deeper" / "o.csv"
    result = _extract(root, output)
    assert result.exit_code == 0, result.output
    assert output.is_file()


@pytest.mark.parametrize("option", ["--model-dir", "--data-dir"])
def test_verify_says_a_missing_folder_is_missing(tmp_path: Path, option: str) -> None:
    result = _run("verify", option, str(tmp_path / "nonexistent"))
    assert result.exit_code == 1
    assert "does not exist" in result.output and "All checks passed" not in result.output
