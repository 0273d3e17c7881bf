"""Finding and reading a model's files: which checkpoint, gene table and graph a name means.

:class:`~bulkformer.model.BulkFormerModel` asks :func:`load_parts` for the pieces of a model
(network, graph, gene order, checksum) and only puts them together; where they come from lives
here, as ``scvi``'s ``base/_save_load.py`` keeps loading apart from the model class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bulkformer import paths
from bulkformer.errors import CheckpointError
from bulkformer.fetch._registry import GENE_INFO_NAME, MODELS, for_family
from bulkformer.model._checkpoint import (
    build_module,
    file_sha256,
    infer_config,
    read_pretrained,
    read_state_dict,
)
from bulkformer.model._graph import GeneGraph, load_graph
from bulkformer.model._network import BulkFormer

#: Published file names: (checkpoint in the model folder, graph pair in the data folder).
PUBLISHED_FILES: dict[str, tuple[str, str, str]] = {m.name: (m.checkpoint, *m.graph) for m in MODELS.values()}


@dataclass(frozen=True)
class ModelParts:
    """What a model is made of, read from its files, before it is put on a device."""

    network: BulkFormer
    graph: GeneGraph
    gene_ids: tuple[str, ...]
    checksum: str
    source: str
    gene_lengths: str
    data_dir: Path
    is_demo: bool = False
    training: Mapping[str, Any] = field(default_factory=dict)


def load_parts(spec: str | Path, *, model_dir: Path | None = None, data_dir: Path | None = None) -> ModelParts:
    """The parts of ``"demo"``, a published name, a saved folder or a published ``.pt`` file."""
    model_dir = Path(model_dir or paths.model_dir())
    data_dir = Path(data_dir or paths.data_dir())
    spec_str = str(spec)
    if spec_str == "demo":
        return parts_from_folder(paths.demo_model_dir(), is_demo=True)
    if spec_str in PUBLISHED_FILES:
        ckpt, g_edges, g_weights = PUBLISHED_FILES[spec_str]
        return parts_from_published(model_dir / ckpt, data_dir=data_dir, graph_names=(g_edges, g_weights),
                                    name=spec_str)
    path = Path(spec_str)
    if path.is_dir():
        return parts_from_folder(path)
    if path.is_file():
        return parts_from_published(path, data_dir=data_dir)
    raise CheckpointError(
        f"No model called {spec_str!r}: it is neither a known name nor an existing file or folder.",
        hint=f"Use 'demo', one of {', '.join(PUBLISHED_FILES)}, or the path of a checkpoint.",
    )


def parts_from_folder(folder: Path, *, is_demo: bool = False) -> ModelParts:
    """A folder written by ``BulkFormerModel.save`` (``model.safetensors`` + ``config.json`` + graph)."""
    saved = read_pretrained(folder)
    network = build_module(saved.state_dict, saved.config)
    graph = load_graph(*saved.graph_paths, n_genes=saved.config.n_genes)
    return ModelParts(network, graph, tuple(saved.info.gene_ids), checksum=file_sha256(saved.weights_path),
                      source=str(folder), gene_lengths=saved.info.gene_lengths, data_dir=Path(folder),
                      is_demo=bool(is_demo or saved.info.training.get("demo", False)),
                      training=dict(saved.info.training))


def parts_from_published(checkpoint: Path, *, data_dir: Path, graph_names: tuple[str, str] | None = None,
                         name: str | None = None) -> ModelParts:
    """A published ``.pt`` state_dict plus ``bulkformer_gene_info.csv`` and a ``G_*.pt`` pair."""
    state_dict = read_state_dict(checkpoint)
    config = infer_config(state_dict, name=name)
    published = MODELS[name] if name in MODELS else for_family(config.family)
    graph_names = graph_names or published.graph
    folders = [Path(data_dir), Path(checkpoint).parent]
    gene_info = find_file(GENE_INFO_NAME, folders)
    gene_ids = read_gene_order(gene_info)
    graph = load_graph(find_file(graph_names[0], folders), find_file(graph_names[1], folders),
                       n_genes=config.n_genes)
    network = build_module(state_dict, config)
    return ModelParts(network, graph, gene_ids, checksum=file_sha256(checkpoint), source=str(checkpoint),
                      gene_lengths=published.gene_lengths, data_dir=gene_info.parent)


def read_gene_order(path: Path) -> tuple[str, ...]:
    """The model's gene order: the ``ensg_id`` column of ``bulkformer_gene_info.csv``, in row order."""
    try:
        table = pd.read_csv(path, usecols=["ensg_id"])
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise CheckpointError(
            f"{path.name} is not a BulkFormer gene table ({err}).",
            hint="Download it again with `bulkformer download data`.",
        ) from err
    return tuple(table["ensg_id"].astype(str).str.split(".").str[0])


def find_file(name: str, folders: Sequence[Path]) -> Path:
    """``name`` in the first of ``folders`` that has it, or a :class:`CheckpointError`."""
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"{name} was not found in {' or '.join(str(f) for f in folders)}.",
        hint="Run `bulkformer download data` (gene table and graphs), or place the file there.",
    )
