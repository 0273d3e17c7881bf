"""Our modules against the upstream BulkFormer code's own outputs (``../shared/reference``).

The upstream code was run on tiny random checkpoints of both families (README in
``upstream_tiny/``); here the same files go through our published-format loader
(:meth:`BulkFormerModel.from_published`: ``module.``-prefixed state_dict, gene table, graph
pair) and our inference path, and must give upstream's imputed values and gene embeddings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bulkformer.fetch._registry import GENE_INFO_NAME
from bulkformer.model import BulkFormerModel
from tests.conftest import SHARED

REFERENCE = SHARED / "reference" / "upstream_tiny"
pytestmark = pytest.mark.skipif(
    not (REFERENCE / "input.pt").is_file(),
    reason=f"upstream reference outputs not found at {REFERENCE} (the ../shared folder is absent)")

#: float32 on a CPU: upstream's arithmetic and ours agree to about 1e-6; the bound leaves room.
FP32_TOL = 1e-5
#: bf16 autocast (``precision="auto"`` where the hardware has bf16) on these tiny models: the
#: bounds the app states for bf16 are cosine >= 0.999 of embeddings and imputation r >= 0.999.
BF16_MIN_COSINE = 0.999
BF16_MIN_R = 0.999


def _published_folder(tmp_path: Path, family: str) -> tuple[Path, Path]:
    """The reference files laid out as a user's download: checkpoint, gene table, graph pair."""
    n_genes = torch.load(REFERENCE / "input.pt", weights_only=True).shape[1]
    data = tmp_path / "data"
    data.mkdir()
    ids = [f"ENSG{i:011d}" for i in range(n_genes)]
    pd.DataFrame({"gene_symbol": [f"G{i}" for i in range(n_genes)], "ensg_id": ids,
                  "gene_type": "protein_coding"}).to_csv(data / GENE_INFO_NAME, index=False)
    shutil.copy(REFERENCE / "G_tiny.pt", data / "G_tiny.pt")
    shutil.copy(REFERENCE / "G_tiny_weight.pt", data / "G_tiny_weight.pt")
    checkpoint = tmp_path / f"ckpt_{family}.pt"
    shutil.copy(REFERENCE / f"ckpt_{family}.pt", checkpoint)
    return checkpoint, data


def _run(tmp_path: Path, family: str, precision: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    checkpoint, data = _published_folder(tmp_path, family)
    model = BulkFormerModel.from_published(checkpoint, data_dir=data, graph_names=("G_tiny.pt", "G_tiny_weight.pt"),
                                           device="cpu")
    x = torch.load(REFERENCE / "input.pt", weights_only=True).numpy()
    ids = [f"S{i}" for i in range(x.shape[0])]
    result = model.run(x, ids, embed=False, impute=True, gene_embedding_genes=model.gene_ids,
                       precision=precision, compile="off", batch_size=x.shape[0])
    expected = torch.load(REFERENCE / f"expected_{family}.pt", weights_only=True)
    got = {"imputed": result.imputed, "gene_embedding": result.gene_embedding}
    return got, {k: v.numpy() for k, v in expected.items()}


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_published_format_files_give_upstreams_numbers_in_float32(tmp_path: Path, family: str) -> None:
    got, expected = _run(tmp_path, family, "fp32")
    for key in ("imputed", "gene_embedding"):
        assert got[key].shape == expected[key].shape, key
        np.testing.assert_allclose(got[key], expected[key], atol=FP32_TOL, rtol=0, err_msg=key)


@pytest.mark.parametrize("precision", ["auto", "bf16"])
@pytest.mark.parametrize("family", ["v1", "v2"])
def test_bf16_autocast_stays_within_the_stated_bounds_of_upstream(tmp_path: Path, family: str, precision: str) -> None:
    got, expected = _run(tmp_path, family, precision)
    a = got["gene_embedding"].reshape(-1, got["gene_embedding"].shape[-1])
    b = expected["gene_embedding"].reshape(a.shape)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= BF16_MIN_COSINE
    r = np.corrcoef(got["imputed"].ravel(), expected["imputed"].ravel())[0, 1]
    assert r >= BF16_MIN_R


def test_v1_checkpoint_reads_as_three_blocks_of_performer_layers() -> None:
    """The first release is gb_repeat blocks of p_repeat layers; the v1 preset says 3 × 4."""
    from bulkformer.model import PRESETS
    from bulkformer.model._checkpoint import infer_config, read_state_dict

    config = infer_config(read_state_dict(REFERENCE / "ckpt_v1.pt"))
    assert (config.family, config.gb_repeat, config.p_repeat) == ("v1", 3, 1)
    assert (PRESETS["v1"].gb_repeat, PRESETS["v1"].p_repeat) == (3, 4)
