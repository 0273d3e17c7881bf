"""The package never imports Streamlit: it must work in scripts, notebooks and the CLI alone."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import bulkformer

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib, json, pkgutil, sys
import bulkformer
after_package = sorted(m for m in sys.modules if m == "streamlit" or m.startswith("streamlit."))
names = sorted(m.name for m in pkgutil.walk_packages(bulkformer.__path__, "bulkformer."))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as err:  # reported, so a broken module is not mistaken for a clean one
        failed[name] = f"{type(err).__name__}: {err}"
after_all = sorted(m for m in sys.modules if m == "streamlit" or m.startswith("streamlit."))
print(json.dumps({"after_package": after_package, "names": names, "failed": failed, "after_all": after_all}))
"""


def _probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_bulkformer_and_every_submodule_pulls_in_no_streamlit() -> None:
    found = _probe()
    expected = sorted(m.name for m in pkgutil.walk_packages(bulkformer.__path__, "bulkformer."))
    assert found["names"] == expected and len(expected) > 10
    assert found["failed"] == {}
    assert found["after_package"] == []
    assert found["after_all"] == [], f"streamlit imported by the package: {found['after_all'][:5]}"
