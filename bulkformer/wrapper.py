"""``BulkFormerModel``: the one object users hold.

It owns the network, the gene graph, the model's gene order, the device and the checksum that
identifies the weights; it loads the demo model, the published checkpoints and our own saved
folders, and runs inference on an :class:`~bulkformer.align.AlignedMatrix`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from bulkformer import paths
from bulkformer.checkpoint import (
    SavedModelInfo,
    build_module,
    file_sha256,
    infer_config,
    read_pretrained,
    read_state_dict,
    save_pretrained,
)
from bulkformer.errors import CheckpointError
from bulkformer.gene_lengths import UPSTREAM, check_name
from bulkformer.graph import GeneGraph, load_graph
from bulkformer.io import Source
from bulkformer.inference import (
    BatchOutput,
    ForwardPlan,
    ProgressFn,
    choose_device,
    iter_forward,
    resolve_compile,
    resolve_indices,
)
from bulkformer.model.bulkformer import BulkFormer
from bulkformer.model.config import BulkFormerConfig
from bulkformer.pipeline import PreparedInput, prepare
from bulkformer.registry import ESM2_NAME, GENE_INFO_NAME, MODELS, for_family
from bulkformer.run_options import Compile, RunOptions

#: Published file names: (checkpoint in the model folder, graph pair in the data folder).
PUBLISHED_FILES: dict[str, tuple[str, str, str]] = {m.name: (m.checkpoint, *m.graph) for m in MODELS.values()}


@dataclass(frozen=True)
class InferenceResult:
    """Everything one pass produced, rows in ``sample_ids`` order.

    Attributes:
        sample_embedding: ``[samples, d]`` pooled embeddings, or ``None``.
        imputed: ``[samples, genes]`` predicted log1p TPM in model gene order, or ``None``.
        gene_embedding: ``[samples, k, d]`` per-gene embeddings of ``gene_embedding_ids``, or ``None``.
    """

    sample_ids: tuple[str, ...]
    gene_ids: tuple[str, ...]
    sample_embedding: np.ndarray | None
    imputed: np.ndarray | None
    gene_embedding: np.ndarray | None
    gene_embedding_ids: tuple[str, ...]
    aggregate: str


class BulkFormerModel:
    """A loaded BulkFormer with its gene graph and gene order, ready for inference.

    Thread-safe for concurrent :meth:`run` calls (the app shares one instance across sessions):
    inference never mutates the network.
    """

    def __init__(
        self,
        network: BulkFormer,
        graph: GeneGraph,
        gene_ids: Sequence[str],
        *,
        checksum: str,
        source: str,
        is_demo: bool = False,
        device: str = "auto",
        training: dict | None = None,
        gene_lengths: str = UPSTREAM,
        data_dir: Path | None = None,
    ) -> None:
        if len(gene_ids) != network.config.n_genes or graph.n_genes != network.config.n_genes:
            raise CheckpointError(
                f"Model has {network.config.n_genes} genes, gene table {len(gene_ids)}, graph {graph.n_genes}.",
                hint="The checkpoint, gene table and graph must come from the same release.",
            )
        self.network = network.eval()
        self.graph = graph
        self.gene_ids: tuple[str, ...] = tuple(gene_ids)
        self.checksum = checksum
        self.source = source
        self.is_demo = is_demo
        self.training = dict(training or {})
        #: Name of the gene-length table this model's counts inputs are normalised with
        #: (:mod:`bulkformer.gene_lengths`); pass it to :func:`bulkformer.prepare`.
        self.gene_lengths = check_name(gene_lengths)
        #: The folder of the model's gene table and graph (its ESM2 table is looked up there).
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self.device = choose_device(device)
        self.network.to(self.device)
        self._adjacency = graph.normalized_adjacency(device=self.device)
        self._identity: Tensor | None = None

    @property
    def config(self) -> BulkFormerConfig:
        return self.network.config

    @property
    def name(self) -> str:
        return "demo" if self.is_demo else self.config.name

    def describe(self) -> str:
        """One line for people: which model, its size, its device."""
        n_params = sum(p.numel() for p in self.network.parameters())
        kind = "demo model trained on simulated data" if self.is_demo else f"BulkFormer {self.config.family}"
        return (f"{kind} ({self.config.name}, {n_params / 1e6:.1f}M parameters, dim {self.config.dim}, "
                f"{self.config.n_genes} genes) on {self.device.type}")

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        spec: str | Path = "demo",
        *,
        device: str = "auto",
        model_dir: Path | None = None,
        data_dir: Path | None = None,
    ) -> "BulkFormerModel":
        """Load ``"demo"``, a published size (``"37M"`` … ``"147M"``, ``"v1"``), or a path.

        A path is either a folder saved by :meth:`save` or a published ``.pt`` checkpoint; for
        the latter the gene table and graph are looked up in ``data_dir`` (then beside the file).
        """
        model_dir = Path(model_dir or paths.model_dir())
        data_dir = Path(data_dir or paths.data_dir())
        spec_str = str(spec)
        if spec_str == "demo":
            return cls.from_folder(paths.demo_model_dir(), device=device, is_demo=True)
        if spec_str in PUBLISHED_FILES:
            ckpt, g_edges, g_weights = PUBLISHED_FILES[spec_str]
            return cls.from_published(model_dir / ckpt, data_dir=data_dir, graph_names=(g_edges, g_weights),
                                      device=device, name=spec_str)
        path = Path(spec_str)
        if path.is_dir():
            return cls.from_folder(path, device=device)
        if path.is_file():
            return cls.from_published(path, data_dir=data_dir, device=device)
        raise CheckpointError(
            f"No model called {spec_str!r}: it is neither a known name nor an existing file or folder.",
            hint=f"Use 'demo', one of {', '.join(PUBLISHED_FILES)}, or the path of a checkpoint.",
        )

    @classmethod
    def from_folder(cls, folder: Path, *, device: str = "auto", is_demo: bool = False) -> "BulkFormerModel":
        """A folder written by :meth:`save` (``model.safetensors`` + ``config.json`` + graph)."""
        saved = read_pretrained(folder)
        network = build_module(saved.state_dict, saved.config)
        graph = load_graph(*saved.graph_paths, n_genes=saved.config.n_genes)
        is_demo = is_demo or saved.info.training.get("demo", False)
        return cls(network, graph, saved.info.gene_ids, checksum=file_sha256(saved.weights_path),
                   source=str(folder), is_demo=bool(is_demo), device=device, training=dict(saved.info.training),
                   gene_lengths=saved.info.gene_lengths, data_dir=Path(folder))

    @classmethod
    def from_published(
        cls,
        checkpoint: Path,
        *,
        data_dir: Path,
        graph_names: tuple[str, str] | None = None,
        device: str = "auto",
        name: str | None = None,
    ) -> "BulkFormerModel":
        """A published ``.pt`` state_dict plus ``bulkformer_gene_info.csv`` and a ``G_*.pt`` pair."""
        state_dict = read_state_dict(checkpoint)
        config = infer_config(state_dict, name=name)
        published = MODELS[name] if name in MODELS else for_family(config.family)
        graph_names = graph_names or published.graph
        folders = [Path(data_dir), Path(checkpoint).parent]
        gene_info = _find(GENE_INFO_NAME, folders)
        gene_ids = read_gene_order(gene_info)
        graph = load_graph(_find(graph_names[0], folders), _find(graph_names[1], folders), n_genes=config.n_genes)
        network = build_module(state_dict, config)
        return cls(network, graph, gene_ids, checksum=file_sha256(checkpoint), source=str(checkpoint), device=device,
                   gene_lengths=published.gene_lengths, data_dir=gene_info.parent)

    def save(self, directory: Path, *, training: dict | None = None, package_version: str = "") -> None:
        """Write ``model.safetensors`` + ``config.json`` + graph, loadable by :meth:`from_folder`."""
        info = SavedModelInfo(gene_ids=self.gene_ids, training={**self.training, **(training or {})},
                              package_version=package_version, gene_lengths=self.gene_lengths)
        save_pretrained(self.network, Path(directory), graph=self.graph, info=info)

    def prepare(self, source: Source, **options: Any) -> PreparedInput:
        """:func:`bulkformer.prepare` for this model: its gene order, and its gene-length table
        for counts (the normalisation its training data had). ``options``: as ``prepare``'s."""
        return prepare(source, gene_order=self.gene_ids, gene_lengths=self.gene_lengths, **options)

    # --------------------------------------------------------------------------- inference
    def compiles(self, n_samples: int, *, compile: Compile = "auto") -> bool:
        """Whether a run of ``n_samples`` compiles the model first (its first sample then takes
        ~30 s longer on a CPU; every later one is faster)."""
        return resolve_compile(compile, self.network, self.device, n_samples)

    def identity(self) -> Tensor:
        """Projected gene identities ``[genes, dim]``, computed once per model (input-independent)."""
        with self._lock:
            if self._identity is None:
                with torch.inference_mode():
                    self._identity = self.network.gene_identity()
            return self._identity

    def run(
        self,
        values: np.ndarray,
        sample_ids: Sequence[str],
        options: RunOptions | None = None,
        *,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        **overrides: Any,
    ) -> InferenceResult:
        """Sample embeddings, imputed expression and chosen gene embeddings in one pass.

        ``options`` (:class:`~bulkformer.run_options.RunOptions`) say what to compute and how;
        ``overrides`` replace its fields by name (``model.run(values, ids, embed=False)``).

        Shapes:
            values: ``[samples, genes]`` aligned to :attr:`gene_ids`, ``-10`` where missing.
        """
        options = RunOptions.build(options, **overrides)
        outputs = list(self.iter_batches(values, options, progress=progress, should_stop=should_stop))

        def stack(attr: str) -> np.ndarray | None:
            parts = [getattr(o, attr) for o in outputs]
            return np.concatenate(parts) if parts and parts[0] is not None else None

        return InferenceResult(
            sample_ids=tuple(sample_ids),
            gene_ids=self.gene_ids,
            sample_embedding=stack("sample_embedding"),
            imputed=stack("imputed"),
            gene_embedding=stack("gene_embedding"),
            gene_embedding_ids=options.gene_embedding_genes or (),
            aggregate=options.aggregate,
        )

    def iter_batches(
        self,
        values: np.ndarray,
        options: RunOptions | None = None,
        *,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        **overrides: Any,
    ) -> Iterator[BatchOutput]:
        """Like :meth:`run`, but yields each batch's :class:`BatchOutput` (for streaming to disk)."""
        options = RunOptions.build(options, **overrides)
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != len(self.gene_ids):
            raise CheckpointError(
                f"Input has shape {values.shape}; this model expects [samples, {len(self.gene_ids)}].",
                hint="Align the table to this model's genes first (bulkformer.prepare).",
            )
        gene_index = resolve_indices(self.gene_ids, options.gene_embedding_genes, what="gene embeddings")
        plan = ForwardPlan(
            aggregate_index=resolve_indices(self.gene_ids, options.aggregate_genes, what="aggregation"),
            gene_index=gene_index,
            gene_table=self._esm2_rows(gene_index) if options.with_esm2 and gene_index is not None else None,
        )
        return iter_forward(self.network, self._adjacency, self.identity(), values, plan, options,
                            device=self.device, progress=progress, should_stop=should_stop)

    def esm2_table(self) -> Tensor:
        """The ESM2 protein embeddings of the model's genes, ``[genes, D_esm]``.

        v1 carries them as its gene identities; a v2 model reads ``esm2_feature_concat.pt``
        from its own data folder (where its gene table was found when it was loaded).
        """
        if self.config.family == "v1":
            return self.network.gene_emb.detach()
        path = self.data_dir / ESM2_NAME if self.data_dir is not None else None
        table = torch.load(path, map_location="cpu", weights_only=True) if path and path.is_file() else None
        if not isinstance(table, Tensor) or table.ndim != 2 or table.shape[0] != len(self.gene_ids):
            where = str(self.data_dir) if self.data_dir is not None else "this model's folder"
            raise CheckpointError(
                f"The ESM2 gene table ({ESM2_NAME}) for this model is not in {where}.",
                hint="Run `bulkformer download data` (it goes beside the gene table), or leave out the ESM2 option.",
            )
        return table

    def _esm2_rows(self, gene_index: np.ndarray) -> np.ndarray:
        """ESM2 protein embeddings of the chosen genes, ``[k, D_esm]`` float32."""
        return self.esm2_table()[torch.as_tensor(gene_index)].float().cpu().numpy()


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


def _find(name: str, folders: Sequence[Path]) -> Path:
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"{name} was not found in {' or '.join(str(f) for f in folders)}.",
        hint="Run `bulkformer download data` (gene table and graphs), or place the file there.",
    )
