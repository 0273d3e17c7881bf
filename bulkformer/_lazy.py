"""Re-exports loaded on first use, so that importing a stage needs none of its heavy modules.

Each stage package (``inputs``, ``model``, ``analysis``, ``fetch``, …) lists its public names
and the private module that holds each; ``import bulkformer.model`` then costs nothing until
``bulkformer.model.BulkFormerModel`` is touched (the app's Home page paints without torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, table: Mapping[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any],
                                                                         Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    ``table`` maps a private module name (``"_inference"``) to the public names it holds.
    """
    where = {name: module for module, names in table.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = module if "." in module else f"{package}.{module}"
        return getattr(importlib.import_module(target), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return sorted(where), __getattr__, __dir__
