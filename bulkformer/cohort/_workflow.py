"""Writing the Snakemake workflow shipped with the package into a user's folder.

The files live in ``bulkformer/cohort/workflow/`` (package data): a ``Snakefile`` (plan → one
``run-shard`` job per shard → gather), its ``config.yaml`` and two profiles, ``local`` and
``slurm`` (``snakemake-executor-plugin-slurm``). Settings given here replace the config's values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from bulkformer.errors import BulkFormerError

#: The workflow's files, relative to its folder.
WORKFLOW_FILES = ("Snakefile", "config.yaml", "profiles/local/config.yaml", "profiles/slurm/config.yaml")


def write_workflow(folder: Path, *, settings: Mapping[str, object] | None = None, overwrite: bool = False) -> list[Path]:
    """Write the workflow into ``folder``; ``settings`` replace values of its ``config.yaml``.

    Existing files are refused unless ``overwrite`` (a user's edited config is never lost silently).
    """
    from bulkformer.export import written_in_full

    folder = Path(folder)
    targets = [folder / name for name in WORKFLOW_FILES]
    present = [t for t in targets if t.exists()]
    if present and not overwrite:
        raise BulkFormerError(f"{folder} already holds a workflow ({present[0].name}).",
                              hint="Choose a new folder, or add --overwrite to replace its files.")
    shipped = resources.files("bulkformer.cohort") / "workflow"
    written = []
    for name, target in zip(WORKFLOW_FILES, targets, strict=True):
        text = (shipped / name).read_text(encoding="utf-8")
        if name == "config.yaml":
            text = set_config(text, settings or {})
        with written_in_full(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def set_config(text: str, settings: Mapping[str, object]) -> str:
    """``config.yaml`` text with the top-level ``key: value`` lines of ``settings`` replaced (values
    written as JSON, which YAML reads; comments kept)."""
    for key, value in settings.items():
        if value is None:
            continue
        pattern = re.compile(rf"^{re.escape(key)}:[^#\n]*?(\s*#.*)?$", re.MULTILINE)
        if not pattern.search(text):
            raise BulkFormerError(f"The workflow has no setting {key!r}.")
        encoded = json.dumps(str(value) if isinstance(value, Path) else value)
        text = pattern.sub(lambda m, key=key, encoded=encoded: f"{key}: {encoded}{m.group(1) or ''}", text, count=1)
    return text
