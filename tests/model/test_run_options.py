"""``RunOptions``: refusals with clear errors, normalised gene lists, cache keys, overrides."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bulkformer import RunOptions
from bulkformer.errors import BulkFormerError
from bulkformer.model._bulkformer_model import BulkFormerModel
from tests.conftest import random_expression, random_graph, tiny_network


@pytest.mark.parametrize(("field", "value", "message"), [
    ("aggregate", "sum", "Unknown aggregation 'sum'"),
    ("precision", "fp64", "Unknown precision 'fp64'"),
    ("compile", "yes", "Unknown compile setting 'yes'"),
    ("batch_size", 0, "batch size must be a whole number of at least 1"),
    ("batch_size", -3, "batch size"),
    ("batch_size", 2.5, "batch size"),
    ("batch_size", True, "batch size"),
    ("embed", "yes", "embed must be True or False"),
    ("with_esm2", 1, "with_esm2 must be True or False"),
    ("aggregate_genes", "ENSG00000141510", "must be a list of Ensembl gene IDs"),
    ("gene_embedding_genes", {"ENSG1", "ENSG2"}, "must be a list"),
])
def test_bad_values_are_refused_with_a_clear_error(field: str, value: object, message: str) -> None:
    with pytest.raises(BulkFormerError, match=message):
        RunOptions(**{field: value})


def test_every_choice_offered_is_accepted_and_lists_become_tuples() -> None:
    for aggregate in ("max", "mean", "median", "all"):
        assert RunOptions(aggregate=aggregate).aggregate == aggregate
    for precision in ("auto", "fp32", "bf16", "fp16"):
        assert RunOptions(precision=precision).precision == precision
    options = RunOptions(batch_size=np.int64(4), aggregate_genes=["A", "B"],
                         gene_embedding_genes=np.array(["C"]))
    assert options.batch_size == 4 and type(options.batch_size) is int
    assert options.aggregate_genes == ("A", "B") and options.gene_embedding_genes == ("C",)
    assert hash(options) == hash(RunOptions(batch_size=4, aggregate_genes=("A", "B"), gene_embedding_genes=("C",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.aggregate = "max"  # type: ignore[misc]


def test_as_dict_round_trips_through_json_and_key_ignores_speed_settings() -> None:
    options = RunOptions(embed=False, aggregate="median", aggregate_genes=("A", "B"), batch_size=8,
                         precision="fp32", compile="off")
    text = json.dumps(options.as_dict())
    assert json.loads(text)["aggregate_genes"] == ["A", "B"]
    assert RunOptions(**json.loads(text)) == options
    assert set(options.key()) == {f.name for f in dataclasses.fields(RunOptions)} - {"batch_size", "compile"}
    assert options.key() == dataclasses.replace(options, batch_size=None, compile="on").key()
    for changed in ({"precision": "bf16"}, {"aggregate": "max"}, {"aggregate_genes": ("A",)}, {"impute": False}):
        assert dataclasses.replace(options, **changed).key() != options.key(), changed


def test_build_applies_overrides_by_name() -> None:
    base = RunOptions(aggregate="max", batch_size=2)
    assert RunOptions.build(None) == RunOptions()
    assert RunOptions.build(base) is base
    assert RunOptions.build(base, precision="fp32", embed=False) == RunOptions(
        aggregate="max", batch_size=2, precision="fp32", embed=False)
    with pytest.raises(TypeError):
        RunOptions.build(base, aggregation="max")
    with pytest.raises(BulkFormerError, match="Unknown aggregation"):
        RunOptions.build(base, aggregate="sum")


def test_keyword_overrides_give_the_same_run_as_explicit_options() -> None:
    model = BulkFormerModel(tiny_network("v2", seed=4), random_graph(50, 150), [f"G{i}" for i in range(50)],
                            checksum="x", source="test", device="cpu")
    values, ids = random_expression(3, 50, seed=5), ["a", "b", "c"]
    chosen = ["G3", "G40"]
    by_keyword = model.run(values, ids, aggregate="max", gene_embedding_genes=chosen, batch_size=2, precision="fp32")
    explicit = RunOptions(aggregate="max", gene_embedding_genes=tuple(chosen), batch_size=2, precision="fp32")
    by_options = model.run(values, ids, explicit)
    mixed = model.run(values, ids, RunOptions(aggregate="max", batch_size=2), precision="fp32",
                      gene_embedding_genes=chosen)
    for result in (by_options, mixed):
        assert result.aggregate == "max" and result.gene_embedding_ids == tuple(chosen)
        for field in ("sample_embedding", "imputed", "gene_embedding"):
            np.testing.assert_array_equal(getattr(result, field), getattr(by_keyword, field))
    streamed = list(model.iter_batches(values, explicit))
    assert [(b.start, b.stop) for b in streamed] == [(0, 2), (2, 3)]
    np.testing.assert_array_equal(np.concatenate([b.imputed for b in streamed]), by_options.imputed)
