"""Reading and writing model weights.

Published checkpoints are plain ``state_dict`` s written by ``torch.save`` (keys may carry a
``module.`` prefix from DataParallel); they are read with ``weights_only=True`` so a file can
never run code. Our own checkpoints are a folder with ``model.safetensors`` + ``config.json``
(family, size, gene order, training facts) and the gene graph in the published two-file format.
"""

from __future__ import annotations

import collections
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

from bulkformer import paths
from bulkformer.errors import BulkFormerError, CheckpointError
from bulkformer.fetch._registry import preset_name
from bulkformer.inputs import _gene_lengths as gene_lengths
from bulkformer.model._config import BulkFormerConfig
from bulkformer.model._graph import GeneGraph
from bulkformer.model._network import BulkFormer

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
GRAPH_NAMES = ("G_model.pt", "G_model_weight.pt")
FORMAT_TAG = "bulkformer-studio"

_STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")


def read_state_dict(path: Path, *, mmap: bool = False) -> dict[str, Tensor]:
    """Tensors of a checkpoint file, with any ``module.`` prefix stripped.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which refuses pickled objects other than tensors.
    ``mmap``: map the tensors from the file instead of reading them (to check shapes cheaply).
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
            raw = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
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
        family, (n_genes, esm_dim) = "v1", _shape(sd, "gene_emb", 2)
    elif "gene_emb_onehot_layer.weight" in sd:
        family, (n_genes, _), esm_dim = "v2", _shape(sd, "gene_emb_onehot_layer.weight", 2), None
    else:
        raise CheckpointError(
            "This is not a BulkFormer checkpoint: it has neither 'gene_emb' (v1) nor "
            f"'gene_emb_onehot_layer.weight' (v2). First keys: {', '.join(list(sd)[:5]) or 'none'}.",
            hint="Check that you picked the model file (e.g. bulkformer_147M.pt), not a graph or data file.",
        )
    dim, _ = _shape(sd, "x_proj.2.weight", 2)
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"gb_formers\.(\d+)\.", k))}
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"gb_formers\.0\.f\.(\d+)\.", k))}
    _, dim_head = _shape(sd, "gb_formers.0.f.0.net.layers.0.0.fn.fast_attention.projection_matrix", 2)
    if min(n_genes, dim, dim_head) < 1 or dim % dim_head:
        raise CheckpointError(
            f"The checkpoint's tensor shapes do not fit together (genes {n_genes}, width {dim}, "
            f"{dim_head} per attention head).",
            hint="The file is damaged or not a BulkFormer checkpoint; download it again.")
    config = BulkFormerConfig(
        family=family,
        n_genes=n_genes,
        dim=dim,
        p_repeat=len(layers),
        gb_repeat=len(blocks),
        heads=dim // dim_head,
        esm_dim=esm_dim,
    )
    return dataclasses.replace(config, name=name or preset_name(config))


def _shape(state_dict: Mapping[str, Tensor], key: str, ndim: int) -> tuple[int, ...]:
    """The shape of ``state_dict[key]``, which must exist and have ``ndim`` dimensions."""
    if key not in state_dict:
        raise CheckpointError(f"BulkFormer checkpoint is missing {key!r}.",
                              hint="The file is incomplete or from an unsupported release.")
    shape = tuple(state_dict[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(
            f"BulkFormer checkpoint has {key!r} of shape {shape}; a {ndim}-D tensor was expected.",
            hint="The file is damaged or not a BulkFormer checkpoint; download it again.")
    return shape


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
    #: The gene-length table counts inputs were normalised with (``bulkformer.inputs._gene_lengths``).
    gene_lengths: str = gene_lengths.LEGACY_DEFAULT


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
    check_model_folder(directory)
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
        "gene_lengths": info.gene_lengths,
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


#: Longest model folder name: 255 bytes less what the names derived from it add (the training
#: resume file ``.NAME.resume.pt.tmp``, the temporary ``.NAME-xxxxxxxx`` while saving).
_MAX_FOLDER_NAME_BYTES = 255 - len("..resume.pt.tmp")


def check_model_folder(directory: Path) -> None:
    """Refuse, before any work, a place where saving a model would harm other files: an existing
    file, a folder inside a file, or a folder holding anything but a model saved here (saving
    replaces the whole folder)."""
    directory = Path(directory)
    if len(directory.name.encode()) > _MAX_FOLDER_NAME_BYTES:
        raise CheckpointError(
            f"The model folder name {directory.name[:40]}… is too long ({len(directory.name.encode())} "
            f"bytes): the temporary and resume files named after it would pass the 255 bytes a file "
            f"name may have.", hint=f"Use a folder name of at most {_MAX_FOLDER_NAME_BYTES} bytes.")
    existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CheckpointError(f"Cannot save a model as {directory}: {existing} is a file.",
                              hint="Give the name of a new folder (or of a model folder to replace).")
    if existing == directory and any(directory.iterdir()):
        try:
            ours = json.loads((directory / CONFIG_NAME).read_text()).get("format") == FORMAT_TAG
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise CheckpointError(
                f"{directory} is a folder with other files in it; saving a model there would "
                f"replace them.",
                hint="Give the name of a new folder, or of a model folder saved by BulkFormer Studio.")


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
        problem = _config_problem(meta)
        if problem:
            raise ValueError(problem)
        config = BulkFormerConfig.from_dict(meta["model"])
        gene_ids: Sequence[str] = meta["gene_ids"]
        if len(gene_ids) != config.n_genes:
            raise ValueError(f"{len(gene_ids)} gene IDs for a model of {config.n_genes} genes")
        graph_names = meta.get("graph", list(GRAPH_NAMES))
        graph_paths = (paths.safe_child(directory, graph_names[0]), paths.safe_child(directory, graph_names[1]))
    except FileNotFoundError as err:
        raise CheckpointError(
            f"{directory} has no {CONFIG_NAME}.",
            hint="Pick a model folder saved by BulkFormer Studio, or a published .pt checkpoint file.",
        ) from err
    except (ValueError, KeyError, TypeError, BulkFormerError) as err:
        raise CheckpointError(
            f"{config_path} is not a valid model config ({type(err).__name__}: {_first_line(err)}).",
            hint="The model folder is damaged; save or download the model again.",
        ) from err
    info = SavedModelInfo(
        gene_ids=tuple(gene_ids),
        training=meta.get("training", {}),
        package_version=meta.get("package_version", ""),
        gene_lengths=gene_lengths.check_name(meta.get("gene_lengths", gene_lengths.LEGACY_DEFAULT)),
    )
    weights = directory / WEIGHTS_NAME
    return SavedModel(
        config=config,
        state_dict=read_state_dict(weights),
        info=info,
        graph_paths=graph_paths,
        weights_path=weights,
    )


_WHOLE_NUMBERS = ("n_genes", "dim", "p_repeat", "gb_repeat", "heads")


def _config_problem(meta: object) -> str:
    """What is wrong with a parsed ``config.json`` (types, repeated genes), or ``""``: every
    field is checked here, so that no damaged value reaches the network or the pipeline."""
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        return "it must be a JSON object with a 'model' object"
    model = meta["model"]
    for key in _WHOLE_NUMBERS:
        if key in model and (not isinstance(model[key], int) or isinstance(model[key], bool)):
            return f"model.{key} is {model[key]!r}, not a whole number"
    if model.get("esm_dim") is not None and (not isinstance(model["esm_dim"], int) or isinstance(model["esm_dim"], bool)):
        return f"model.esm_dim is {model['esm_dim']!r}, not a whole number"
    for key in ("attn_dropout", "ff_dropout"):
        value = model.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
            return f"model.{key} is {value!r}, not a probability"
    if not all(isinstance(model.get(key, ""), str) for key in ("family", "name")):
        return "model.family and model.name must be text"
    genes = meta.get("gene_ids")
    if not isinstance(genes, list) or not all(isinstance(g, str) and g for g in genes):
        return "'gene_ids' must be a list of gene IDs"
    repeated = [gene for gene, n in collections.Counter(genes).items() if n > 1]
    if repeated:
        return f"gene ID {repeated[0]!r} appears more than once in 'gene_ids'"
    graph = meta.get("graph", list(GRAPH_NAMES))
    if not isinstance(graph, list) or len(graph) != 2 or not all(isinstance(n, str) and n for n in graph):
        return f"'graph' is {graph!r}, not the names of the two graph files"
    if not isinstance(meta.get("training", {}), dict):
        return "'training' must be an object"
    if not isinstance(meta.get("package_version", ""), str):
        return "'package_version' must be text"
    return ""


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
