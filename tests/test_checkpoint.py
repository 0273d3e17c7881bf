"""Checkpoint files: published state_dicts, our safetensors folders, and damaged files."""

from __future__ import annotations

import pickle

import pytest
import torch

from bulkformer.checkpoint import (
    SavedModelInfo,
    build_module,
    infer_config,
    read_pretrained,
    read_state_dict,
    save_pretrained,
)
from bulkformer.errors import CheckpointError
from bulkformer.model import PRESETS, BulkFormer
from tests.conftest import random_graph, tiny_config, tiny_network


def test_plain_state_dict_with_module_prefix_loads_strictly(tmp_path, family: str) -> None:
    network = tiny_network(family, seed=2)
    torch.save({f"module.{k}": v for k, v in network.state_dict().items()}, tmp_path / "ckpt.pt")
    sd = read_state_dict(tmp_path / "ckpt.pt")
    config = infer_config(sd)
    assert (config.family, config.n_genes, config.dim, config.p_repeat, config.heads) == (family, 50, 16, 2, 8)
    loaded = build_module(sd, config)
    for (k, a), (k2, b) in zip(network.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


def test_save_pretrained_round_trip_is_bit_identical(tmp_path, family: str) -> None:
    network = tiny_network(family, seed=5)
    graph = random_graph(50, 80)
    ids = tuple(f"ENSG{i:011d}" for i in range(50))
    save_pretrained(network, tmp_path / "m", graph=graph, info=SavedModelInfo(ids, {"epochs": 3}, "0.1.0"))
    saved = read_pretrained(tmp_path / "m")
    assert saved.config == network.config and saved.info.gene_ids == ids and saved.info.training == {"epochs": 3}
    loaded = build_module(saved.state_dict, saved.config)
    for (k, a), (_, b) in zip(network.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    # Saving again over an existing folder replaces it and leaves no temporary folders behind.
    save_pretrained(network, tmp_path / "m", graph=graph, info=SavedModelInfo(ids))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize("name", ["37M", "50M", "93M", "127M", "147M", "v1"])
def test_presets_are_recognised_from_shapes(name: str) -> None:
    network = BulkFormer(PRESETS[name])
    config = infer_config(network.state_dict())
    assert config.name == name and config == PRESETS[name]


class _Exploit:
    """A pickle that would create a file when unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


def test_damaged_and_unsafe_files_are_refused(tmp_path) -> None:
    good = tiny_network("v2").state_dict()
    torch.save(good, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        read_state_dict(tmp_path / "cut.pt")

    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"x": _Exploit(str(marker))}, fh)
    with pytest.raises(CheckpointError, match="for safety"):
        read_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()  # the payload never ran

    torch.save({"something.else": torch.ones(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a BulkFormer checkpoint"):
        infer_config(read_state_dict(tmp_path / "other.pt"))

    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "absent.pt")


def test_shape_mismatch_names_the_tensor() -> None:
    sd = dict(tiny_network("v2").state_dict())
    sd["x_proj.0.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError, match=r"x_proj\.0\.bias has shape \(7,\)"):
        build_module(sd, tiny_config("v2"))
