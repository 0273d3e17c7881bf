"""Training: masking, loss going down, exact resume after an interruption."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bulkformer.model import MISSING
from bulkformer.model._training import (
    TrainingConfig,
    mask_measured,
    state_path_for,
    train,
)
from tests.conftest import structured_cohort, tiny_config


def test_mask_hides_the_requested_share_of_measured_genes_only() -> None:
    values = torch.tensor(structured_cohort(4, 40).values)
    masked, hidden = mask_measured(values, 0.25, torch.Generator().manual_seed(0))
    measured = values != MISSING
    assert not (hidden & ~measured).any()
    assert hidden.sum(1).tolist() == [round(37 * 0.25)] * 4
    assert torch.all(masked[hidden] == MISSING) and torch.equal(masked[~hidden], values[~hidden])


def _masked_loss(model, cohort) -> float:
    x = torch.tensor(cohort.values)
    masked, hidden = mask_measured(x, 0.15, torch.Generator().manual_seed(123))
    with torch.inference_mode():
        pred = model.network(masked, model.graph.normalized_adjacency())
    return float(((pred - x)[hidden] ** 2).mean())


def test_ten_steps_lower_the_masked_loss(tmp_path) -> None:
    cohort = structured_cohort()
    config = TrainingConfig(epochs=10, batch_size=22, lr=2e-2, warmup_steps=2, val_fraction=0.1, graph_k=4, device="cpu")
    first = train(cohort, output_dir=tmp_path / "m0", architecture=tiny_config("v2"),
                  config=TrainingConfig(**{**config.__dict__, "epochs": 0}))
    steps: list[int] = []
    result = train(cohort, output_dir=tmp_path / "m", architecture=tiny_config("v2"), config=config,
                   progress=lambda p: steps.append(p.step))
    assert steps == list(range(1, 11))  # 22 training samples in one batch: one step an epoch
    assert _masked_loss(result.model, cohort) < 0.95 * _masked_loss(first.model, cohort)
    assert len(result.history) == 10 and np.isfinite(result.history[-1].val_pcc)
    facts = result.model.training
    assert facts["data"]["n_val"] == 2 and facts["data"]["measured_genes"] == 47


def test_resume_after_an_interruption_is_exact(tmp_path) -> None:
    cohort = structured_cohort(seed=1)
    config = TrainingConfig(epochs=3, batch_size=8, lr=2e-3, warmup_steps=1, graph_k=4, device="cpu")
    straight = train(cohort, output_dir=tmp_path / "a", architecture=tiny_config("v2"), config=config)

    class Stop(Exception):
        pass

    def interrupt(report) -> None:
        if report.epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(cohort, output_dir=tmp_path / "b", architecture=tiny_config("v2"), config=config, on_epoch=interrupt)
    assert state_path_for(tmp_path / "b").is_file() and not (tmp_path / "b").exists()
    steps: list[int] = []
    resumed = train(cohort, output_dir=tmp_path / "b", architecture=tiny_config("v2"), config=config,
                    progress=lambda p: steps.append(p.step))
    per_epoch = -(-22 // 8)
    assert steps[0] == per_epoch + 1  # continued after the saved epoch
    assert [h.epoch for h in resumed.history] == [1, 2, 3]
    for (k, a), (_, b) in zip(straight.model.network.state_dict().items(),
                              resumed.model.network.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_simulated_panels_keep_at_least_500_genes_and_renormalise_their_tpm() -> None:
    from bulkformer.model._training import simulate_panels

    values = torch.tensor(np.random.default_rng(0).uniform(0, 5, size=(200, 3000)).astype(np.float32))
    values[:, :100] = MISSING
    shown = simulate_panels(values, 0.5, torch.Generator().manual_seed(0))
    kept = (shown != MISSING).sum(1)
    panels = kept < 2900
    assert 70 < int(panels.sum()) < 130  # about half the samples
    assert int(kept.min()) >= 500 and torch.all(kept[~panels] == 2900)
    assert torch.equal(shown[~panels], values[~panels])  # samples not chosen are untouched
    assert torch.all(shown[:, :100] == MISSING)
    # A panel's TPM is renormalised over its genes: it sums to a million again.
    tpm = torch.expm1(shown[panels].clamp_min(0)).masked_fill(shown[panels] == MISSING, 0).double()
    torch.testing.assert_close(tpm.sum(1), torch.full((int(panels.sum()),), 1e6, dtype=torch.float64), rtol=1e-4, atol=0)


def test_damaged_resume_file_is_a_clear_error(tmp_path) -> None:
    from bulkformer.errors import BulkFormerError

    cohort = structured_cohort(8, seed=2)
    config = TrainingConfig(epochs=1, batch_size=4, graph_k=4, device="cpu")
    state_path_for(tmp_path / "m").write_bytes(b"not a torch file" * 64)
    with pytest.raises(BulkFormerError, match="cannot be resumed") as err:
        train(cohort, output_dir=tmp_path / "m", architecture=tiny_config("v2"), config=config)
    assert "--restart" in err.value.hint and not (tmp_path / "m").exists()
    # --restart ignores the damaged state and overwrites it
    done = train(cohort, output_dir=tmp_path / "m", architecture=tiny_config("v2"), config=config, resume=False)
    assert len(done.history) == 1
