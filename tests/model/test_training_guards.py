"""Training refuses settings that cannot work, before any work, and stops (saving nothing) when
the loss or the weights stop being numbers (issue #28: ``--lr inf`` saved a model of NaN)."""

from __future__ import annotations

import math

import pytest
import torch

from bulkformer.errors import BulkFormerError
from bulkformer.model import BulkFormerConfig, _training
from bulkformer.model._training import (
    TrainingConfig,
    TrainingDiverged,
    check_trainable,
    state_path_for,
    train,
    training_memory_bytes,
)
from tests.conftest import structured_cohort, tiny_config, tiny_network


@pytest.mark.parametrize("settings", [
    {"lr": math.nan}, {"lr": math.inf}, {"lr": -1.0}, {"lr": 0.0}, {"lr": 1e6},
    {"mask_fraction": 0.0}, {"mask_fraction": math.nan}, {"val_fraction": 1.0},
    {"graph_k": 0}, {"graph_k": 100_000_000}, {"seed": -1}, {"seed": 2**64},
    {"epochs": -1}, {"batch_size": 0}, {"grad_clip": math.inf},
])
def test_impossible_settings_are_refused_when_made(settings: dict) -> None:
    with pytest.raises(BulkFormerError, match="Cannot train with these settings"):
        TrainingConfig(**settings)


def test_the_memory_estimate_is_close_to_the_real_parameter_count() -> None:
    """The formula is checked against networks actually built (the parameter part, 16 bytes each)."""
    for dim, layers, genes in ((16, 2, 50), (32, 1, 400), (64, 3, 300)):
        config = tiny_config("v2", n_genes=genes, dim=dim, p_repeat=layers)
        real = sum(p.numel() for p in tiny_network("v2", n_genes=genes, dim=dim, p_repeat=layers).parameters())
        estimated = (training_memory_bytes(config, batch_size=0)) / 16
        assert 0.6 * real <= estimated <= 1.4 * real, (dim, layers, genes, real, estimated)


def test_a_shape_too_large_for_memory_is_refused_before_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_training, "available_memory_bytes", lambda: 8 * 1024**3)
    huge = BulkFormerConfig(n_genes=20_000, dim=1_000_000_000, p_repeat=2, heads=8)
    with pytest.raises(BulkFormerError, match="GB of memory"):
        check_trainable(huge, TrainingConfig())
    deep = BulkFormerConfig(n_genes=20_000, dim=32, p_repeat=100_000_000, heads=8)
    with pytest.raises(BulkFormerError, match="GB of memory"):
        check_trainable(deep, TrainingConfig())
    check_trainable(tiny_config("v2"), TrainingConfig())  # a small one passes


def test_a_non_finite_loss_stops_training_and_saves_nothing(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = []
    real_step = _training._optimiser_step

    def step_then_nan(run, adjacency, x, config):  # the second step's loss is NaN, as after lr=inf
        steps.append(1)
        loss = real_step(run, adjacency, x, config)
        return float("nan") if len(steps) == 2 else loss

    monkeypatch.setattr(_training, "_optimiser_step", step_then_nan)
    config = TrainingConfig(epochs=2, batch_size=4, device="cpu")
    with pytest.raises(TrainingDiverged, match="Nothing was saved"):
        train(structured_cohort(), output_dir=tmp_path / "m", architecture=tiny_config("v2"), config=config)
    assert len(steps) == 2  # stopped at once
    assert not (tmp_path / "m").exists() and not state_path_for(tmp_path / "m").exists()


def test_weights_turned_nan_by_the_last_step_are_not_saved(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_step = _training._optimiser_step

    def poison(run, adjacency, x, config):  # the loss was finite, the update was not
        loss = real_step(run, adjacency, x, config)
        with torch.no_grad():
            next(run.network.parameters()).fill_(float("nan"))
        return loss

    monkeypatch.setattr(_training, "_optimiser_step", poison)
    config = TrainingConfig(epochs=1, batch_size=64, device="cpu")
    with pytest.raises(TrainingDiverged, match="no longer finite"):
        train(structured_cohort(), output_dir=tmp_path / "m", architecture=tiny_config("v2"), config=config)
    assert list(tmp_path.iterdir()) == []
