"""The gene graph: published ``G_*.pt`` pairs and co-expression graphs built from a cohort.

File format (as published): ``G_*.pt`` is a LongTensor ``edge_index [2, E]`` and
``G_*_weight.pt`` a float tensor ``[E]``. Upstream builds ``A[g[0], g[1]] = w`` and propagates
``Â @ x`` with ``Â = D^-1/2 A D^-1/2``, ``D`` = row sums of ``A``, no self loops: messages flow
from ``g[1]`` to ``g[0]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from bulkformer.errors import CheckpointError


@dataclass(frozen=True)
class GeneGraph:
    """Weighted directed gene graph in the published orientation.

    Attributes:
        edge_index: ``[2, E]`` int64; entry ``(g[0][e], g[1][e])`` of ``A`` holds ``weight[e]``.
        weight: ``[E]`` float32.
        n_genes: number of nodes (genes in model order).
    """

    edge_index: Tensor
    weight: Tensor
    n_genes: int

    def __post_init__(self) -> None:
        ei, w = self.edge_index, self.weight
        if ei.ndim != 2 or ei.shape[0] != 2 or w.ndim != 1 or w.shape[0] != ei.shape[1]:
            raise CheckpointError(
                f"Gene graph has edge_index {tuple(ei.shape)} and weights {tuple(w.shape)}; "
                "expected [2, E] and [E].",
                hint="Use the matching G_*.pt and G_*_weight.pt pair from the same release.",
            )
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= self.n_genes):
            raise CheckpointError(
                f"Gene graph refers to gene {int(ei.max())}, but the model has {self.n_genes} genes.",
                hint="The graph and the checkpoint come from different releases.",
            )

    def normalized_adjacency(self, *, device: torch.device | str = "cpu") -> Tensor:
        """``Â = D^-1/2 A D^-1/2`` as a sparse CSR ``[n_genes, n_genes]`` float32 tensor.

        Rows with zero degree stay zero, as in torch-geometric's gcn_norm; a row whose signed
        weights sum to a negative degree is treated the same way rather than producing NaN.
        """
        row, col = self.edge_index
        w = self.weight.to(torch.float32)
        deg = torch.zeros(self.n_genes, dtype=torch.float32).index_add_(0, row, w)
        inv_sqrt = torch.where(deg > 0, deg.clamp_min(1e-30).pow(-0.5), torch.zeros_like(deg))
        values = inv_sqrt[row] * w * inv_sqrt[col]
        with warnings.catch_warnings():  # torch's notes on sparse "beta" support are not for users
            warnings.simplefilter("ignore", UserWarning)
            coo = torch.sparse_coo_tensor(self.edge_index, values, (self.n_genes, self.n_genes),
                                          check_invariants=True)
            return coo.coalesce().to_sparse_csr().to(device)

    def save(self, edge_path: Path, weight_path: Path) -> None:
        """Write the published two-file format (tensors only)."""
        torch.save(self.edge_index.clone(), edge_path)
        torch.save(self.weight.clone(), weight_path)


def load_graph(edge_path: Path, weight_path: Path, *, n_genes: int) -> GeneGraph:
    """Read a ``G_*.pt`` + ``G_*_weight.pt`` pair (published or built by :func:`build_coexpression_graph`)."""
    try:
        edge_index = torch.load(edge_path, map_location="cpu", weights_only=True)
        weight = torch.load(weight_path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(
            f"Gene graph file {err.filename} is missing.",
            hint="Run `bulkformer download data` or pass the folder that holds G_*.pt.",
        ) from err
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"Could not read the gene graph ({edge_path.name}, {weight_path.name}): {err}",
            hint="The file is damaged or not a tensor file; download it again.",
        ) from err
    if not isinstance(edge_index, Tensor) or not isinstance(weight, Tensor):
        raise CheckpointError(
            f"{edge_path.name} / {weight_path.name} do not hold plain tensors.",
            hint="Use the G_*.pt and G_*_weight.pt files of a BulkFormer release.",
        )
    return GeneGraph(edge_index.long(), weight.float(), n_genes)


def build_coexpression_graph(log_tpm: np.ndarray, *, k: int = 20) -> GeneGraph:
    """Top-``k`` neighbours per gene by ``|Pearson r|`` across samples; weights = ``r``.

    Each gene ``i`` receives messages from its ``k`` most correlated genes ``j``:
    ``edge (g[0], g[1]) = (i, j)``. Genes that never vary have no neighbours.

    Shapes:
        log_tpm: ``[samples, genes]`` observed values (no ``-10`` placeholders).
    """
    x = np.asarray(log_tpm, dtype=np.float64)
    n_samples, n_genes = x.shape
    k = min(k, n_genes - 1)
    centred = x - x.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    varying = norm > 0
    z = np.zeros_like(centred)
    z[:, varying] = centred[:, varying] / norm[varying]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    block = 2048  # genes per slice: bounds memory at block × n_genes floats
    for start in range(0, n_genes, block):
        stop = min(start + block, n_genes)
        r = z[:, start:stop].T @ z  # [block, n_genes]
        r[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = np.argpartition(-np.abs(r), k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(r, top, axis=1)
        keep = (picked != 0) & varying[start:stop, None]
        rows.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[keep])
        cols.append(top[keep])
        weights.append(picked[keep])
    edge_index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]).astype(np.int64))
    weight = torch.from_numpy(np.concatenate(weights).astype(np.float32))
    return GeneGraph(edge_index, weight, n_genes)
