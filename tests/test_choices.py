"""One list per choice: the Literal types, the checks, the CLI and the pages all agree with it."""

from __future__ import annotations

import typing

import pytest

from bulkformer import choices
from bulkformer.errors import BulkFormerError

PAIRS = [
    (choices.Aggregate, choices.AGGREGATION),
    (choices.Precision, choices.PRECISION),
    (choices.Compile, choices.COMPILE),
    (choices.Orientation, choices.ORIENTATION),
    (choices.IdType, choices.ID_TYPE),
    (choices.ValueType, choices.VALUE_TYPE),
    (choices.ImputeMode, choices.IMPUTE_MODE),
    (choices.OutputFormat, choices.OUTPUT_FORMAT),
]


@pytest.mark.parametrize(("literal", "choice"), PAIRS, ids=lambda x: getattr(x, "what", ""))
def test_each_literal_type_lists_exactly_the_choice_names(literal, choice) -> None:
    assert typing.get_args(literal) == choice.names
    assert len(set(choice.names)) == len(choice.names)
    assert len({choice.label(n) for n in choice}) == len(choice.names), "two options would look alike"


def test_a_name_outside_the_list_is_refused_naming_the_ones_inside() -> None:
    with pytest.raises(BulkFormerError) as info:
        choices.AGGREGATION.check("sum")
    assert str(info.value) == "Unknown aggregation 'sum'.\n→ Use one of mean, max, median, all."


def test_run_options_and_inference_check_against_the_same_lists() -> None:
    from bulkformer.model import RunOptions
    from bulkformer.model._inference import check_aggregate

    for name in choices.AGGREGATION:
        RunOptions(aggregate=name)
    with pytest.raises(BulkFormerError, match="Unknown precision"):
        RunOptions(precision="fp8")
    with pytest.raises(BulkFormerError, match="Unknown aggregation"):
        check_aggregate("sum")


def test_the_cli_offers_every_name_with_its_meaning() -> None:
    from typer.testing import CliRunner

    from bulkformer.cli import app

    text = CliRunner().invoke(app, ["extract", "--help"], env={"COLUMNS": "400"}).output
    for choice in (choices.AGGREGATION, choices.PRECISION, choices.VALUE_TYPE, choices.IMPUTE_MODE):
        for name in choice:
            assert name in text
    assert choices.AGGREGATION.help("max") in " ".join(text.split())
