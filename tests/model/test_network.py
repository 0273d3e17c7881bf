"""The BulkFormer network: published key layout, determinism, batch invariance, v2 correction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bulkformer.model import MISSING, BulkFormer
from tests.conftest import (
    SHARED,
    random_expression,
    random_graph,
    tiny_config,
    tiny_network,
)

SPEC = SHARED / "spec"


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_tiny_model_has_published_key_names_and_shapes(family: str) -> None:
    listing = SPEC / f"statedict_keys_{family}_tiny.txt"
    if not listing.is_file():
        pytest.skip(f"{listing} is absent: the shared spec folder is not beside this checkout")
    network = BulkFormer(tiny_config(family, n_genes=50, dim=16, p_repeat=2))
    ours = [f"{k} {tuple(v.shape)} {v.dtype}" for k, v in network.state_dict().items()]
    assert ours == listing.read_text().strip().splitlines()


def _run(network: BulkFormer, x: np.ndarray, adjacency: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        h = network.encode(xt, adjacency)
        features = network.gene_features(xt, h)
        return features.numpy(), network.impute(xt, features).numpy()


def test_deterministic_and_batch_invariant(family: str) -> None:
    network = tiny_network(family, seed=3)
    adjacency = random_graph(50, 200).normalized_adjacency()
    x = random_expression(4, 50, seed=5)
    features, imputed = _run(network, x, adjacency)
    again, imputed_again = _run(network, x, adjacency)
    np.testing.assert_array_equal(features, again)
    np.testing.assert_array_equal(imputed, imputed_again)
    for i in range(4):
        f_i, imp_i = _run(network, x[i : i + 1], adjacency)
        np.testing.assert_allclose(f_i[0], features[i], atol=1e-5, rtol=0)
        np.testing.assert_allclose(imp_i[0], imputed[i], atol=1e-5, rtol=0)


def test_missing_placeholder_zeroes_the_expression_embedding() -> None:
    network = tiny_network("v2")
    x = torch.tensor(random_expression(2, 50, seed=1))
    emb = network.expr_emb(x)
    missing = x == MISSING
    assert missing.any()
    assert torch.all(emb[missing] == 0)
    assert torch.all(emb[~missing].abs().sum(-1) > 0)


def test_v2_aux_features_and_mean_correction_match_hand_computation() -> None:
    network = tiny_network("v2", seed=7)
    adjacency = random_graph(50, 200).normalized_adjacency()
    x = random_expression(3, 50, seed=2)
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        h = network.encode(xt, adjacency)
        features = network.gene_features(xt, h)
        raw = network.head(features).squeeze(-1).numpy()
        corrected = network.impute(xt, features).numpy()

    observed = x != MISSING
    # Auxiliary features by hand: [fraction missing, mean observed value, fraction != 0].
    aux = features[:, 0, -3:].numpy()
    np.testing.assert_allclose(aux[:, 0], 1 - observed.mean(1), rtol=1e-6)
    np.testing.assert_allclose(aux[:, 1], [x[s][observed[s]].mean() for s in range(3)], rtol=1e-5)
    np.testing.assert_allclose(aux[:, 2], (x != 0).mean(1), rtol=1e-6)

    # Observed genes keep the raw prediction; missing ones shift by (mean pred - mean x) over observed.
    for s in range(3):
        o = observed[s]
        np.testing.assert_array_equal(corrected[s][o], raw[s][o])
        gap = raw[s][o].mean() - x[s][o].mean()
        np.testing.assert_allclose(corrected[s][~o], raw[s][~o] - gap, atol=1e-5)


def test_v1_offers_plain_embedding_and_uncorrected_head() -> None:
    network = tiny_network("v1", seed=1)
    adjacency = random_graph(50, 100).normalized_adjacency()
    xt = torch.from_numpy(random_expression(2, 50))
    with torch.inference_mode():
        h = network.encode(xt, adjacency)
        features = network.gene_features(xt, h)
        assert features.shape == (2, 50, 16)
        np.testing.assert_array_equal(network.impute(xt, features).numpy(),
                                      network.head(h).squeeze(-1).numpy())


def test_identity_precomputation_gives_the_same_encoding(family: str) -> None:
    network = tiny_network(family, seed=4)
    adjacency = random_graph(50, 100).normalized_adjacency()
    xt = torch.from_numpy(random_expression(2, 50))
    with torch.inference_mode():
        np.testing.assert_array_equal(
            network.encode(xt, adjacency).numpy(),
            network.encode(xt, adjacency, identity=network.gene_identity()).numpy(),
        )
