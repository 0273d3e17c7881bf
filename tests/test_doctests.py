"""The examples in the public entry points' docstrings run, and give what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "bulkformer.choices",
    "bulkformer.inputs._pipeline",
    "bulkformer.model._run_options",
    "bulkformer.model._bulkformer_model",
    "bulkformer.export._files",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, one_torch_thread) -> None:
    module = importlib.import_module(name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert outcome.attempted > 0, f"{name} has no example"
    assert outcome.failed == 0
