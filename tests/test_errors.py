"""The one wording of a refused choice."""

from __future__ import annotations

import pytest

from bulkformer.errors import BulkFormerError, InputError, check_choice


def test_check_choice_names_every_option() -> None:
    assert check_choice("mean", ("max", "mean"), what="aggregation") == "mean"
    with pytest.raises(InputError) as info:
        check_choice("sum", ("max", "mean"), what="aggregation", error=InputError)
    assert str(info.value) == "Unknown aggregation 'sum'.\n→ Use one of max, mean."
    with pytest.raises(BulkFormerError, match="Unknown precision 'fp8'"):
        check_choice("fp8", ("auto", "fp32"), what="precision")
