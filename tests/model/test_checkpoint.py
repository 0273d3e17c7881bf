"""Checkpoint files: published state_dicts, our safetensors folders, and damaged files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from bulkformer.errors import CheckpointError
from bulkformer.model import PRESETS, BulkFormer
from bulkformer.model._checkpoint import (
    SavedModelInfo,
    build_module,
    infer_config,
    read_pretrained,
    read_state_dict,
    save_pretrained,
)
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


_PROJECTION = "gb_formers.0.f.0.net.layers.0.0.fn.fast_attention.projection_matrix"


@pytest.mark.parametrize(("key", "tensor", "message"), [
    (_PROJECTION, torch.zeros(3), r"projection_matrix' of shape \(3,\); a 2-D tensor"),
    (_PROJECTION, torch.zeros(3, 0), r"do not fit together \(genes 50, width 16, 0 per attention head\)"),
    (_PROJECTION, torch.zeros(3, 5), r"width 16, 5 per attention head"),
    ("x_proj.2.weight", torch.zeros(()), r"'x_proj\.2\.weight' of shape \(\)"),
    ("gene_emb_onehot_layer.weight", torch.zeros(4), r"'gene_emb_onehot_layer\.weight' of shape \(4,\)"),
])
def test_badly_shaped_tensors_are_a_checkpoint_error(key: str, tensor: torch.Tensor, message: str) -> None:
    sd = dict(tiny_network("v2").state_dict())
    sd[key] = tensor
    with pytest.raises(CheckpointError, match=message) as err:
        infer_config(sd)
    assert "download it again" in err.value.hint


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["gene_ids"].__setitem__(1, c["gene_ids"][0]), "'ENSG00000000000' appears more than once"),
    (lambda c: c.__setitem__("graph", 5), "'graph' is 5, not the names"),
    (lambda c: c.__setitem__("graph", ["../../outside.pt", "G.pt"]), "not a plain file name"),
    (lambda c: c["model"].__setitem__("dim", 32.0), r"model\.dim is 32\.0, not a whole number"),
    (lambda c: c["model"].__setitem__("heads", True), r"model\.heads is True"),
    (lambda c: c.__setitem__("training", []), "'training' must be an object"),
    (lambda c: c["gene_ids"].pop(), "49 gene IDs for a model of 50 genes"),
    (lambda c: c["model"].__setitem__("ff_dropout", "high"), r"model\.ff_dropout is 'high', not a probability"),
    (lambda c: c.__setitem__("gene_ids", "ENSG1"), "'gene_ids' must be a list"),
    (lambda c: c.clear(), "must be a JSON object with a 'model' object"),
])
def test_damaged_config_json_is_a_checkpoint_error(tmp_path, change, message: str) -> None:
    ids = tuple(f"ENSG{i:011d}" for i in range(50))
    save_pretrained(tiny_network("v2"), tmp_path / "m", graph=random_graph(50, 80), info=SavedModelInfo(ids))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    change(config)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message) as err:
        read_pretrained(tmp_path / "m")
    assert "damaged" in err.value.hint


def test_saving_never_replaces_other_files(tmp_path) -> None:
    ids = tuple(f"ENSG{i:011d}" for i in range(50))

    def save(target) -> None:
        save_pretrained(tiny_network("v2"), target, graph=random_graph(50, 80), info=SavedModelInfo(ids))

    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="notes.txt is a file"):
        save(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="notes.txt is a file"):
        save(tmp_path / "notes.txt" / "model")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "data.csv").write_text("precious")
    with pytest.raises(CheckpointError, match="folder with other files in it"):
        save(tmp_path / "work")
    assert (tmp_path / "notes.txt").read_text() == "precious"
    assert (tmp_path / "work" / "data.csv").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "work"]  # nothing renamed or left
    with pytest.raises(CheckpointError, match="too long"):
        save(tmp_path / ("m" * 250))  # legal, but its resume and temporary files would not be
    (tmp_path / "empty").mkdir()
    save(tmp_path / "empty")  # an empty folder, and a model folder saved here, are fine
    save(tmp_path / "empty")
    assert read_pretrained(tmp_path / "empty").info.gene_ids == ids
