"""``BulkFormerModel``: the one object users hold.

It owns the network, the gene graph, the model's gene order, the device and the checksum that
identifies the weights; it loads the demo model, the published checkpoints and our own saved
folders, and runs inference on an :class:`~bulkformer.inputs._align.AlignedMatrix`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bulkformer.errors import CheckpointError
from bulkformer.fetch._registry import ESM2_NAME
from bulkformer.inputs._gene_lengths import UPSTREAM, check_name
from bulkformer.inputs._pipeline import PreparedInput, prepare
from bulkformer.io import Source
from bulkformer.model._checkpoint import SavedModelInfo, save_pretrained
from bulkformer.model._config import BulkFormerConfig
from bulkformer.model._files import (
    ModelParts,
    load_parts,
    parts_from_folder,
    parts_from_published,
)
from bulkformer.model._graph import GeneGraph
from bulkformer.model._inference import (
    BatchOutput,
    ForwardPlan,
    ProgressFn,
    choose_device,
    iter_forward,
    resolve_compile,
    resolve_indices,
)
from bulkformer.model._network import BulkFormer
from bulkformer.model._run_options import Compile, RunOptions


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
        #: (:mod:`bulkformer.inputs._gene_lengths`); pass it to :func:`bulkformer.prepare`.
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
    ) -> BulkFormerModel:
        """Load ``"demo"``, a published size (``"37M"`` … ``"147M"``, ``"v1"``), or a path.

        A path is either a folder saved by :meth:`save` or a published ``.pt`` checkpoint; for
        the latter the gene table and graph are looked up in ``data_dir`` (then beside the file).

        Parameters
        ----------
        spec
            ``"demo"``, a published name, a saved folder or a ``.pt`` file.
        device
            ``"auto"`` (a GPU if there is one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        model_dir, data_dir
            Where published checkpoints, and their gene tables and graphs, were downloaded
            (default ``./model`` and ``./data``, or ``BULKFORMER_MODEL_DIR`` / ``BULKFORMER_DATA_DIR``).

        Returns
        -------
        The loaded model, in evaluation mode on ``device``.

        Examples
        --------
        >>> import bulkformer
        >>> model = bulkformer.BulkFormerModel.load("demo", device="cpu")
        >>> model.name, len(model.gene_ids) == model.config.n_genes
        ('demo', True)
        """
        return cls._from_parts(load_parts(spec, model_dir=model_dir, data_dir=data_dir), device=device)

    @classmethod
    def from_folder(cls, folder: Path, *, device: str = "auto", is_demo: bool = False) -> BulkFormerModel:
        """A folder written by :meth:`save` (``model.safetensors`` + ``config.json`` + graph)."""
        return cls._from_parts(parts_from_folder(folder, is_demo=is_demo), device=device)

    @classmethod
    def from_published(
        cls,
        checkpoint: Path,
        *,
        data_dir: Path,
        graph_names: tuple[str, str] | None = None,
        device: str = "auto",
        name: str | None = None,
    ) -> BulkFormerModel:
        """A published ``.pt`` state_dict plus ``bulkformer_gene_info.csv`` and a ``G_*.pt`` pair."""
        parts = parts_from_published(checkpoint, data_dir=data_dir, graph_names=graph_names, name=name)
        return cls._from_parts(parts, device=device)

    @classmethod
    def _from_parts(cls, parts: ModelParts, *, device: str) -> BulkFormerModel:
        return cls(parts.network, parts.graph, parts.gene_ids, checksum=parts.checksum, source=parts.source,
                   is_demo=parts.is_demo, device=device, training=dict(parts.training),
                   gene_lengths=parts.gene_lengths, data_dir=parts.data_dir)

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

        Parameters
        ----------
        values
            ``[samples, genes]`` float32 log1p TPM aligned to :attr:`gene_ids`, ``-10`` where a
            gene was not measured (``prepare(...).aligned.values``).
        sample_ids
            The samples' names, in row order.
        options
            What to compute and how (:class:`~bulkformer.model.RunOptions`; default: all defaults).
        progress, should_stop
            ``progress(samples_done, samples_total)`` after each batch; ``should_stop()`` is
            asked between batches (a true answer raises ``InferenceCancelled``).
        **overrides
            Fields of ``options`` replaced by name: ``model.run(values, ids, embed=False)``.

        Returns
        -------
        :class:`InferenceResult`: ``sample_embedding`` ``[samples, d]`` (d = dim, + 3 sample
        features for v2), ``imputed`` ``[samples, genes]`` log1p TPM in model gene order,
        ``gene_embedding`` ``[samples, k, d]``; ``None`` for what was not asked for.

        Examples
        --------
        >>> import bulkformer
        >>> from bulkformer import paths
        >>> model = bulkformer.BulkFormerModel.load("demo", device="cpu")
        >>> prepared = model.prepare(paths.demo_dir() / "demo_panel_counts.csv.gz")
        >>> result = model.run(prepared.aligned.values[:4], prepared.aligned.sample_ids[:4],
        ...                    bulkformer.RunOptions(precision="fp32", compile="off"))
        >>> result.sample_embedding.shape == (4, len(model.config.feature_names()))
        True
        >>> result.imputed.shape == (4, len(model.gene_ids))
        True
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
