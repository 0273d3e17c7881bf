"""The workflows of ``bulkformer.workflows`` against the same steps done by hand, their result cache,
their run facts, and the named sample-embedding columns against the format spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer import workflows as runs
from bulkformer.analysis._holdout import (
    MODEL,
    compare_with_baselines,
    hide_measured,
    verdict,
)
from bulkformer.analysis._projection import project
from bulkformer.export import embedding_frame
from bulkformer.genes import load_annotation
from bulkformer.model._bulkformer_model import BulkFormerModel
from bulkformer.model._inference import InferenceCancelled
from bulkformer.model._run_options import RunOptions
from tests.conftest import random_graph, tiny_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_SAMPLES, N_GENES, N_MEASURED = 8, 150, 120
FP32 = RunOptions(batch_size=3, precision="fp32")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[BulkFormerModel, object]:
    """A tiny v2 model over 150 real genes and a TPM table measuring 120 of them, prepared."""
    root = tmp_path_factory.mktemp("runs")
    genes = list(load_annotation().protein_coding_ids()[:N_GENES])
    model = BulkFormerModel(tiny_network("v2", seed=3, n_genes=N_GENES), random_graph(N_GENES, 600), genes,
                            checksum="abc", source="test", device="cpu")
    rng = np.random.default_rng(7)
    tpm = pd.DataFrame(rng.uniform(0, 200, (N_MEASURED, 1)) * rng.lognormal(0, 0.3, (N_MEASURED, N_SAMPLES)),
                       index=pd.Index(genes[N_GENES - N_MEASURED:], name="gene_id"),
                       columns=[f"S{i}" for i in range(N_SAMPLES)])
    tpm.iloc[:5, :3] = 0.0  # some exact zeros: the non-zero share differs between samples
    tpm.to_csv(root / "tpm.csv")
    return model, model.prepare(Path(root / "tpm.csv"), value_type="tpm")


class DictStore:
    """A result store in memory, as ``jobs.ResultCache`` is on disk."""

    def __init__(self) -> None:
        self.held: dict[str, object] = {}

    def get(self, key: str) -> object | None:
        return self.held.get(key)

    def put(self, key: str, result: object) -> None:
        self.held[key] = result


def test_holdout_check_equals_the_steps_by_hand(setup) -> None:
    model, prepared = setup
    aligned = prepared.aligned
    outcome = runs.holdout_check(model, prepared, RunOptions(batch_size=3, precision="fp32", aggregate="max"),
                                 fraction=0.2, seed=3)
    hidden = hide_measured(aligned.values, aligned.observed, fraction=0.2, seed=3)
    imputed = model.run(hidden.values, aligned.sample_ids, embed=False, batch_size=3, precision="fp32").imputed
    by_hand = compare_with_baselines(aligned.values, hidden, imputed, observed=aligned.observed,
                                     sample_ids=aligned.sample_ids)
    pd.testing.assert_frame_equal(outcome.comparison.table, by_hand.table)
    np.testing.assert_array_equal(outcome.comparison.truth, by_hand.truth)
    assert outcome.verdict.lines() == verdict(by_hand).lines()
    assert (outcome.fraction, outcome.seed, outcome.from_cache) == (0.2, 3, False)
    assert not outcome.options.embed and outcome.options.impute and outcome.options.precision == "fp32"
    assert by_hand.scores[MODEL].n == N_SAMPLES * round(0.2 * N_MEASURED)  # 24 hidden per sample


def test_run_cohort_gives_the_model_output_and_both_maps(setup) -> None:
    model, prepared = setup
    aligned = prepared.aligned
    outcome = runs.run_cohort(model, prepared, FP32)
    by_hand = model.run(aligned.values, aligned.sample_ids, batch_size=3, precision="fp32")
    np.testing.assert_array_equal(outcome.result.sample_embedding, by_hand.sample_embedding)
    np.testing.assert_array_equal(outcome.result.imputed, by_hand.imputed)
    assert set(outcome.projections) == {"umap", "pca"} and not outcome.from_cache and outcome.seconds > 0
    np.testing.assert_allclose(outcome.projections["pca"].coords,
                               project(by_hand.sample_embedding, method="pca").coords, atol=1e-6)
    assert outcome.projections["umap"].method == "pca"  # 8 samples: too few for UMAP, said in a note
    assert runs.run_cohort(model, prepared, FP32, maps=()).projections == {}
    no_embedding = runs.run_cohort(model, prepared, RunOptions(embed=False, batch_size=3))
    assert no_embedding.projections == {} and no_embedding.result.sample_embedding is None


def test_a_cancel_during_the_last_batch_draws_no_map(setup) -> None:
    model, prepared = setup
    done: list[int] = []
    with pytest.raises(InferenceCancelled):
        runs.run_cohort(model, prepared, FP32, progress=lambda d, t: done.append(d),
                        should_stop=lambda: done[-1:] == [N_SAMPLES])
    assert done == [3, 6, 8]


def test_gene_embeddings_are_those_of_the_chosen_genes_only(setup) -> None:
    model, prepared = setup
    chosen = [model.gene_ids[149], model.gene_ids[0], model.gene_ids[60]]
    outcome = runs.gene_embeddings(model, prepared, chosen, RunOptions(batch_size=3, precision="fp32", impute=True))
    by_hand = model.run(prepared.aligned.values, prepared.aligned.sample_ids, embed=False, impute=False,
                        gene_embedding_genes=chosen, batch_size=3, precision="fp32")
    assert outcome.genes == tuple(chosen) and outcome.result.gene_embedding_ids == tuple(chosen)
    assert outcome.result.imputed is None and outcome.result.sample_embedding is None
    assert outcome.result.gene_embedding.shape == (N_SAMPLES, 3, model.config.gene_feature_dim)
    np.testing.assert_array_equal(outcome.result.gene_embedding, by_hand.gene_embedding)


def test_a_cached_result_is_reused_without_running_the_model(setup, monkeypatch) -> None:
    model, prepared = setup
    store = DictStore()
    first = runs.run_cohort(model, prepared, FP32, maps=(), cache=runs.CacheSlot(store, "k1"))
    assert not first.from_cache and store.held == {"k1": first.result}

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran although the result was cached")

    monkeypatch.setattr(model, "run", no_run)
    done: list[tuple[int, int]] = []
    again = runs.run_cohort(model, prepared, FP32, maps=(), progress=lambda d, t: done.append((d, t)),
                            cache=runs.CacheSlot(store, "k1"))
    assert again.from_cache and again.result is first.result and done == [(N_SAMPLES, N_SAMPLES)]
    with pytest.raises(AssertionError, match="model ran"):
        runs.run_cohort(model, prepared, FP32, maps=(), cache=runs.CacheSlot(store, "k2"))


def test_run_facts_record_the_model_options_and_table(setup) -> None:
    model, prepared = setup
    options = RunOptions(aggregate="median", batch_size=4, precision="bf16")
    facts = runs.run_facts(model, prepared, options, extra=[("input", "tpm.csv")], holdout=["Verdict: x"])
    assert (facts.model_name, facts.model_checksum, facts.model_source, facts.is_demo) == (
        model.config.name, "abc", "test", False)
    assert (facts.device, facts.aggregate, facts.batch_size, facts.precision) == ("cpu", "median", 4, "bf16")
    assert (facts.n_samples, facts.n_genes, facts.n_measured_genes) == (N_SAMPLES, N_GENES, N_MEASURED)
    assert facts.extra == (("input", "tpm.csv"),) and facts.holdout == ("Verdict: x",)
    assert facts.qc_summary == tuple(prepared.qc.summary_lines())


def test_a_v2_sample_embedding_names_its_three_sample_features_as_the_spec_defines_them(setup) -> None:
    """spec (bulkformer-format.md, v2 head input): gene embedding ++ [mask_prob, mean of observed x,
    fraction of x != 0]; mask_prob = the share of the model's genes the input lacks (-10)."""
    model, prepared = setup
    x = prepared.aligned.values
    frame = embedding_frame(runs.run_cohort(model, prepared, FP32, maps=()).result,
                            column_names=model.config.feature_names())
    dim = model.config.dim
    assert list(frame.columns[:dim]) == [f"emb_{i}" for i in range(dim)]
    assert list(frame.columns[dim:]) == ["missing_share", "mean_expression", "nonzero_share"]
    measured = x != -10
    np.testing.assert_allclose(frame["missing_share"], 1 - N_MEASURED / N_GENES, rtol=1e-5)
    np.testing.assert_allclose(frame["mean_expression"], [row[m].mean() for row, m in zip(x, measured)], rtol=1e-5)
    np.testing.assert_allclose(frame["nonzero_share"], (x != 0).mean(axis=1), rtol=1e-5)
    assert frame["nonzero_share"].nunique() > 1  # the zeros put in a few samples show
    v1 = tiny_network("v1", n_genes=N_GENES).config
    assert v1.feature_names() == tuple(f"emb_{i}" for i in range(v1.dim))
