"""Batched inference: pooling against numpy, batching, gene subsets, cancellation, memory
back-off, compiled layers."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil

import numpy as np
import pytest
import torch

from bulkformer.errors import BulkFormerError
from bulkformer.model import PRESETS
from bulkformer.model._inference import (
    ForwardPlan,
    InferenceCancelled,
    _CompiledLayers,
    aggregate_genes,
    auto_batch_size,
    flop_per_sample,
    iter_forward,
    resolve_compile,
    resolve_indices,
    resolve_precision,
)
from bulkformer.model._run_options import RunOptions
from tests.conftest import random_expression, random_graph, tiny_network


@pytest.mark.parametrize("n_genes", [7, 8])  # odd and even: the median differs
def test_aggregations_match_numpy(n_genes: int) -> None:
    x = np.random.default_rng(0).normal(size=(3, n_genes, 5)).astype(np.float32)
    t = torch.from_numpy(x)
    expected = {
        "max": x.max(axis=1),
        "mean": x.mean(axis=1),
        "median": np.median(x, axis=1),
    }
    expected["all"] = expected["max"] + expected["mean"] + expected["median"]
    for how, want in expected.items():
        np.testing.assert_allclose(aggregate_genes(t, how).numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(BulkFormerError, match="Unknown aggregation"):
        aggregate_genes(t, "sum")


def _collect(network, adjacency, values, plan, batch_size, **options):
    identity = network.gene_identity().detach()
    outs = list(iter_forward(network, adjacency, identity, values, plan,
                             RunOptions(batch_size=batch_size, precision="fp32", **options),
                             device=torch.device("cpu")))
    return outs


def test_batches_cover_the_cohort_and_match_a_direct_forward(family: str) -> None:
    network = tiny_network(family, seed=1)
    adjacency = random_graph(50, 150).normalized_adjacency()
    values = random_expression(5, 50, seed=3)
    subset = np.array([4, 9, 31])
    plan = ForwardPlan(aggregate_index=subset, gene_index=np.array([2, 40]))
    outs = _collect(network, adjacency, values, plan, batch_size=2, aggregate="max")
    assert [(o.start, o.stop) for o in outs] == [(0, 2), (2, 4), (4, 5)]
    emb = np.concatenate([o.sample_embedding for o in outs])
    imputed = np.concatenate([o.imputed for o in outs])
    genes = np.concatenate([o.gene_embedding for o in outs])
    with torch.inference_mode():
        x = torch.from_numpy(values)
        features = network.gene_features(x, network.encode(x, adjacency)).numpy()
        direct_imputed = network.impute(x, torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(emb, features[:, subset].max(axis=1), atol=1e-5)
    np.testing.assert_allclose(genes, features[:, [2, 40]], atol=1e-5)
    np.testing.assert_allclose(imputed, direct_imputed, atol=1e-5)


def test_cancel_stops_before_the_next_batch() -> None:
    network = tiny_network("v2")
    adjacency = random_graph(50, 100).normalized_adjacency()
    seen: list[int] = []
    gen = iter_forward(network, adjacency, network.gene_identity().detach(), random_expression(6, 50),
                       ForwardPlan(), RunOptions(batch_size=2), device=torch.device("cpu"),
                       progress=lambda done, total: seen.append(done), should_stop=lambda: len(seen) >= 1)
    with pytest.raises(InferenceCancelled):
        list(gen)
    assert seen == [2]


def test_unknown_genes_are_a_clear_error() -> None:
    ids = ("ENSG1", "ENSG2", "ENSG3")
    np.testing.assert_array_equal(resolve_indices(ids, ["ENSG3", "ENSG1"], what="x"), [2, 0])
    assert resolve_indices(ids, None, what="x") is None
    with pytest.raises(BulkFormerError, match="ENSG9"):
        resolve_indices(ids, ["ENSG9"], what="gene embeddings")


@pytest.mark.parametrize("half", ["bf16", "fp16"])
def test_half_precision_keeps_the_accuracy_bounds_on_the_demo_model(half: str) -> None:
    """Fast path vs float32 on realistic inputs (demo cohort, demo model):
    sample-embedding cosine >= 0.999, imputation PCC vs the hidden truth within 0.002."""
    from bulkformer import paths
    from bulkformer.model._bulkformer_model import BulkFormerModel
    from bulkformer.model._training import mask_measured

    model = BulkFormerModel.load("demo", device="cpu")
    prepared = model.prepare(paths.demo_dir() / "demo_counts.csv.gz")
    truth = prepared.aligned.values[:8]
    masked, hidden = (t.numpy() for t in mask_measured(torch.tensor(truth), 0.15, torch.Generator().manual_seed(0)))
    ids = prepared.aligned.sample_ids[:8]
    fp32 = model.run(masked, ids, precision="fp32")
    bf16 = model.run(masked, ids, precision=half)
    a, b = fp32.sample_embedding, bf16.sample_embedding
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.999
    pcc32 = np.corrcoef(truth[hidden], fp32.imputed[hidden])[0, 1]
    pcc16 = np.corrcoef(truth[hidden], bf16.imputed[hidden])[0, 1]
    assert abs(pcc32 - pcc16) <= 0.002


def test_precision_names() -> None:
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    assert resolve_precision("fp16", torch.device("cpu")) == "fp16"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"  # upstream's GPU precision, more accurate than bf16
    with pytest.raises(BulkFormerError, match="Unknown precision"):
        resolve_precision("fp8", torch.device("cpu"))


def _fails_above(limit: int, error: Exception, network):
    """Make ``network.encode`` raise ``error`` for batches larger than ``limit``; record sizes."""
    sizes: list[int] = []
    encode = network.encode

    def guarded(x, *args, **kwargs):
        sizes.append(x.shape[0])
        if x.shape[0] > limit:
            raise error
        return encode(x, *args, **kwargs)

    network.encode = guarded
    return sizes


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
])
def test_out_of_memory_halves_the_batch_and_keeps_every_sample(error: Exception, caplog) -> None:
    network = tiny_network("v2", seed=2)
    adjacency = random_graph(50, 120).normalized_adjacency()
    values = random_expression(7, 50, seed=4)
    expected = np.concatenate([o.imputed for o in _collect(network, adjacency, values, ForwardPlan(), 7)])
    sizes = _fails_above(2, error, network)
    done: list[int] = []
    with caplog.at_level(logging.WARNING, logger="bulkformer.model._inference"):
        outs = list(iter_forward(network, adjacency, network.gene_identity().detach(), values, ForwardPlan(),
                                 RunOptions(batch_size=8, precision="fp32"), device=torch.device("cpu"),
                                 progress=lambda d, t: done.append(d)))
    # 7 (the whole cohort) → 4 → 2 on the first batch, then 2 for the rest: 7 = 2 + 2 + 2 + 1.
    assert sizes == [7, 4, 2, 2, 2, 1]
    assert [(o.start, o.stop) for o in outs] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert done == [2, 4, 6, 7]
    np.testing.assert_allclose(np.concatenate([o.imputed for o in outs]), expected, atol=1e-5)
    assert "Out of memory at batch size 7; going on with 4" in caplog.text


def test_one_sample_that_does_not_fit_is_a_clear_error() -> None:
    network = tiny_network("v2")
    adjacency = random_graph(50, 100).normalized_adjacency()
    _fails_above(0, torch.OutOfMemoryError("CUDA out of memory"), network)
    with pytest.raises(BulkFormerError, match="One sample does not fit") as info:
        list(iter_forward(network, adjacency, network.gene_identity().detach(), random_expression(3, 50),
                          ForwardPlan(), RunOptions(batch_size=4), device=torch.device("cpu")))
    assert "--device cpu" in info.value.hint


def test_errors_other_than_memory_are_not_retried() -> None:
    network = tiny_network("v2")
    adjacency = random_graph(50, 100).normalized_adjacency()
    sizes = _fails_above(1, RuntimeError("mat1 and mat2 shapes cannot be multiplied"), network)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        list(iter_forward(network, adjacency, network.gene_identity().detach(), random_expression(3, 50),
                          ForwardPlan(), RunOptions(batch_size=4), device=torch.device("cpu")))
    assert sizes == [3]


def test_flop_count_matches_a_hand_count() -> None:
    # 147M: dim 640, 8 heads of 80, int(80 ln 80) = 350 random features, 12 layers, 20,010 genes.
    assert int(80 * math.log(80)) == 350
    per_layer = 4 * 640 * 640 + 2 * 640 * 2560 + 8 * (2 * 80 * 350 + 2 * 350 * 80)  # MACs per gene
    stem = 2 * 640 * 2560
    assert flop_per_sample(PRESETS["147M"]) == 2 * 20010 * (12 * per_layer + stem)


class _ConfigOnly:
    """Only the config is read by the compile and batch decisions; building a 147M network is not needed."""

    def __init__(self, config) -> None:
        self.config = config


def test_auto_compile_only_where_it_pays_off(monkeypatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    big, small = _ConfigOnly(PRESETS["147M"]), _ConfigOnly(PRESETS["37M"])
    monkeypatch.setattr("bulkformer.model._inference._has_cxx_compiler", lambda: True)
    assert resolve_compile("auto", big, cpu, 3)  # ~90 s of eager work: worth a ~30 s compile
    assert not resolve_compile("auto", big, cpu, 1)
    assert not resolve_compile("auto", small, cpu, 200)
    assert not resolve_compile("auto", big, cuda, 100)  # ~5 s of eager GPU work: not worth ~12 s
    assert resolve_compile("auto", big, cuda, 1000) and not resolve_compile("auto", small, cuda, 1000)
    assert resolve_compile("on", small, cpu, 1) and not resolve_compile("off", big, cpu, 100)
    monkeypatch.setattr("bulkformer.model._inference._has_cxx_compiler", lambda: False)
    assert not resolve_compile("auto", big, cpu, 100)
    with pytest.raises(BulkFormerError, match="Unknown compile setting"):
        resolve_compile("yes", big, cpu, 1)
    assert auto_batch_size(big, cpu, 10) == 1  # one sample at a time is fastest on a CPU


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")), reason="needs a C++ compiler")
def test_compiled_layers_give_the_eager_results(family: str) -> None:
    network = tiny_network(family, seed=5)
    adjacency = random_graph(50, 150).normalized_adjacency()
    values = random_expression(3, 50, seed=6)
    identity = network.gene_identity().detach()
    runs = [list(iter_forward(network, adjacency, identity, values, ForwardPlan(),
                              RunOptions(aggregate="all", batch_size=3, precision="fp32", compile=compiled),
                              device=torch.device("cpu")))[0]
            for compiled in ("off", "on")]
    np.testing.assert_allclose(runs[1].sample_embedding, runs[0].sample_embedding, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(runs[1].imputed, runs[0].imputed, rtol=1e-4, atol=1e-5)


def test_a_failing_compiler_falls_back_to_eager_once(caplog) -> None:
    runner = _CompiledLayers()
    calls: list[int] = []

    def broken(layer, x):
        calls.append(1)
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    runner._fn = broken
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with caplog.at_level(logging.WARNING, logger="bulkformer.model._inference"):
        torch.testing.assert_close(runner(layer, x), layer(x))
        torch.testing.assert_close(runner(layer, x), layer(x))
    assert calls == [1]  # not retried
    assert "torch.compile failed" in caplog.text and "running without it" in caplog.text


def test_running_out_of_memory_inside_a_compiled_layer_is_passed_on() -> None:
    runner = _CompiledLayers()

    def oom(layer, x):
        raise torch.OutOfMemoryError("CUDA out of memory")

    runner._fn = oom
    with pytest.raises(torch.OutOfMemoryError):
        runner(torch.nn.Linear(4, 4), torch.randn(1, 4))
    assert not runner._broken


def test_compiled_runs_pad_the_last_batch_to_one_shape(monkeypatch) -> None:
    """A compiled run sees one batch shape only (no recompiles for a short last batch), and the
    padding rows change nothing: outputs equal an unpadded eager run."""
    network = tiny_network("v2", seed=7)
    adjacency = random_graph(50, 150).normalized_adjacency()
    values = random_expression(7, 50, seed=2)
    identity = network.gene_identity().detach()
    shapes: list[int] = []

    def recording(layer, x):
        shapes.append(x.shape[0])
        return layer(x)

    monkeypatch.setattr("bulkformer.model._inference.compiled_layers", lambda: recording)
    plan = ForwardPlan(gene_index=np.array([1, 30]))
    cpu = torch.device("cpu")
    options = RunOptions(aggregate="all", batch_size=3, precision="fp32")
    padded = list(iter_forward(network, adjacency, identity, values, plan, dataclasses.replace(options, compile="on"),
                               device=cpu))
    plain = list(iter_forward(network, adjacency, identity, values, plan, dataclasses.replace(options, compile="off"),
                              device=cpu))
    assert set(shapes) == {3} and [o.stop - o.start for o in padded] == [3, 3, 1]
    for field in ("sample_embedding", "imputed", "gene_embedding"):
        got = np.concatenate([getattr(o, field) for o in padded])
        want = np.concatenate([getattr(o, field) for o in plain])
        assert got.shape[0] == 7
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
