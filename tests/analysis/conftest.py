"""Fixtures shared by the prediction tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two settings per hyperparameter instead of four or five: the same nested search, 5× fewer fits."""
    from bulkformer.analysis import predict

    monkeypatch.setattr(predict.models, "C_GRID", (0.1, 1.0))
    monkeypatch.setattr(predict.models, "RIDGE_GRID", (10.0, 1.0))
    monkeypatch.setattr(predict.models, "COX_GRID", (1.0, 0.1))
    monkeypatch.setattr(predict.models, "PCA_GRID", (2, 5))
