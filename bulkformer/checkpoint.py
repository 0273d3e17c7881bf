"""Reading and writing model weights.

Published checkpoints are plain ``state_dict`` s written by ``torch.save`` (keys may carry a
``module.`` prefix from DataParallel); they are read with ``weights_only=True`` so a file can
never run code. Our own checkpoints are a folder with ``model.safetensors`` + ``config.json``
(family, size, gene order, training facts) and the gene graph in the published two-file format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from bulkformer.errors import CheckpointError
from bulkformer.graph import GeneGraph
from bulkformer.model.bulkformer import BulkFormer
from bulkformer.model.config import BulkFormerConfig, preset_name

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
GRAPH_NAMES = ("G_model.pt", "G_model_weight.pt")
FORMAT_TAG = "bulkformer-studio"

_STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a checkpoint file, with any ``module.`` prefix stripped.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which refuses pickled objects other than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist.",
            hint="Run `bulkformer download model`, or choose the demo model.",
        )
    try:
        if path.suffix == ".safetensors":
            raw: Any = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path.name} could not be read as a checkpoint ({type(err).__name__}: {_first_line(err)}).",
            hint="The file is damaged or incomplete: download it again (`bulkformer download model`).",
        ) from err
    except Exception as err:  # pickle's UnpicklingError and friends: not a tensors-only file
        raise CheckpointError(
            f"{path.name} holds Python objects other than tensors; it is not loaded, for safety.",
            hint="Use a published BulkFormer checkpoint or one saved by this package.",
        ) from err
    if isinstance(raw, Mapping):
        for key in _STATE_DICT_WRAPPERS:
            if isinstance(raw.get(key), Mapping):
                raw = raw[key]
                break
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise CheckpointError(
            f"{path.name} is not a state_dict of tensors.",
            hint="Use a published BulkFormer checkpoint or one saved by this package.",
        )
    return {re.sub(r"^module\.", "", k): v for k, v in raw.items()}


def infer_config(state_dict: Mapping[str, Tensor], *, name: str | None = None) -> BulkFormerConfig:
    """Family and size of a BulkFormer state_dict, read off its tensor shapes."""
    sd = state_dict
    if "gene_emb" in sd:
        family, n_genes, esm_dim = "v1", sd["gene_emb"].shape[0], sd["gene_emb"].shape[1]
    elif "gene_emb_onehot_layer.weight" in sd:
        family, n_genes, esm_dim = "v2", sd["gene_emb_onehot_layer.weight"].shape[0], None
    else:
        raise CheckpointError(
            "This is not a BulkFormer checkpoint: it has neither 'gene_emb' (v1) nor "
            f"'gene_emb_onehot_layer.weight' (v2). First keys: {', '.join(list(sd)[:5]) or 'none'}.",
            hint="Check that you picked the model file (e.g. bulkformer_147M.pt), not a graph or data file.",
        )
    try:
        dim = sd["x_proj.2.weight"].shape[0]
        blocks = {int(m.group(1)) for k in sd if (m := re.match(r"gb_formers\.(\d+)\.", k))}
        layers = {int(m.group(1)) for k in sd if (m := re.match(r"gb_formers\.0\.f\.(\d+)\.", k))}
        proj = sd["gb_formers.0.f.0.net.layers.0.0.fn.fast_attention.projection_matrix"]
    except KeyError as err:
        raise CheckpointError(
            f"BulkFormer checkpoint is missing {err.args[0]!r}.",
            hint="The file is incomplete or from an unsupported release.",
        ) from err
    config = BulkFormerConfig(
        family=family,
        n_genes=n_genes,
        dim=dim,
        p_repeat=len(layers),
        gb_repeat=len(blocks),
        heads=dim // proj.shape[1],
        esm_dim=esm_dim,
    )
    return dataclasses.replace(config, name=name or preset_name(config))


def build_module(state_dict: Mapping[str, Tensor], config: BulkFormerConfig) -> BulkFormer:
    """A :class:`BulkFormer` holding exactly ``state_dict`` (``strict=True``), in eval mode."""
    module = BulkFormer(config)
    expected = module.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in expected]
    problems += [
        f"{k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"The checkpoint does not match a BulkFormer-{config.name} network: "
            f"{'; '.join(problems[:3])}{more}.",
            hint="The file may be from another release, or damaged; download it again.",
        )
    module.load_state_dict(state_dict, strict=True)
    return module.eval()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class SavedModelInfo:
    """What ``config.json`` records besides the network shape."""

    gene_ids: tuple[str, ...]
    training: Mapping[str, Any] = field(default_factory=dict)
    package_version: str = ""


def save_pretrained(
    module: BulkFormer, directory: Path, *, graph: GeneGraph, info: SavedModelInfo
) -> None:
    """Write ``model.safetensors`` + ``config.json`` + the graph pair into ``directory``.

    Files are written to a temporary folder beside ``directory`` and moved in place at the end,
    so an interrupted save never leaves a half-written model behind.
    """
    directory = Path(directory)
    if len(info.gene_ids) != module.config.n_genes:
        raise ValueError(f"{len(info.gene_ids)} gene IDs for a model of {module.config.n_genes} genes")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model folder is meant to be shared
    # performer-pytorch registers each layer twice (net.* and proj_updater.instance.*), sharing
    # storage; safetensors stores shared tensors only once, so store independent copies.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
    graph.save(tmp / GRAPH_NAMES[0], tmp / GRAPH_NAMES[1])
    config = {
        "format": FORMAT_TAG,
        "model": module.config.to_dict(),
        "gene_ids": list(info.gene_ids),
        "graph": list(GRAPH_NAMES),
        "training": dict(info.training),
        "package_version": info.package_version,
    }
    (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=1))
    if directory.exists():
        old = directory.with_name(f".{directory.name}-old")
        os.replace(directory, old)
        os.replace(tmp, directory)
        for child in old.iterdir():
            child.unlink()
        old.rmdir()
    else:
        os.replace(tmp, directory)


@dataclass(frozen=True)
class SavedModel:
    """A model folder written by :func:`save_pretrained`, read back."""

    config: BulkFormerConfig
    state_dict: dict[str, Tensor]
    info: SavedModelInfo
    graph_paths: tuple[Path, Path]
    weights_path: Path


def read_pretrained(directory: Path) -> SavedModel:
    """Read a folder written by :func:`save_pretrained` (no network, no pickles)."""
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    try:
        meta = json.loads(config_path.read_text())
        config = BulkFormerConfig.from_dict(meta["model"])
        gene_ids: Sequence[str] = meta["gene_ids"]
        graph_names = meta.get("graph", list(GRAPH_NAMES))
    except FileNotFoundError as err:
        raise CheckpointError(
            f"{directory} has no {CONFIG_NAME}.",
            hint="Pick a model folder saved by BulkFormer Studio, or a published .pt checkpoint file.",
        ) from err
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{config_path} is not a valid model config ({type(err).__name__}: {_first_line(err)}).",
            hint="The model folder is damaged; save or download the model again.",
        ) from err
    info = SavedModelInfo(
        gene_ids=tuple(gene_ids),
        training=meta.get("training", {}),
        package_version=meta.get("package_version", ""),
    )
    weights = directory / WEIGHTS_NAME
    return SavedModel(
        config=config,
        state_dict=read_state_dict(weights),
        info=info,
        graph_paths=(directory / graph_names[0], directory / graph_names[1]),
        weights_path=weights,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
