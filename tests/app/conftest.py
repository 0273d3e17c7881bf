"""App tests leave no background work running when they end (issue #28: a loaded run ended in
"terminate called without an active exception", a job or warm-up thread still inside torch
while the interpreter shut down)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.waiting import join_background_work


@pytest.fixture(autouse=True, scope="module")
def _background_work_ends_with_the_module() -> Iterator[None]:
    yield
    left = join_background_work()
    assert not left, f"background threads still running after the tests: {left}"
