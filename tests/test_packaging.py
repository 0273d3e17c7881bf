"""What ``pip install`` promises: ranges in pyproject.toml that hold the exact set we test
(requirements.txt), and a package that imports without the app's optional dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
APP_ONLY = ("streamlit", "plotly", "umap-learn")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _declared() -> dict[str, list[Requirement]]:
    """Every requirement pyproject.toml declares (core and extras), by normalised name."""
    project = _project()
    found: dict[str, list[Requirement]] = {}
    for line in [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]:
        requirement = Requirement(line)
        found.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    found.pop(canonicalize_name(project["name"]))  # the [test] extra names [app]
    return found


def _pinned() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [Requirement(text) for line in lines if (text := line.split("#")[0].strip())]
    return {canonicalize_name(r.name): r for r in requirements}


def test_requirements_txt_and_pyproject_name_the_same_packages() -> None:
    declared, pinned = _declared(), _pinned()
    assert sorted(set(pinned) - set(declared)) == [], "pinned in requirements.txt but not declared in pyproject.toml"
    assert sorted(set(declared) - set(pinned)) == [], "declared in pyproject.toml but not pinned in requirements.txt"


def test_every_tested_pin_lies_within_the_published_range() -> None:
    declared = _declared()
    for name, pin in _pinned().items():
        for spec in pin.specifier:
            assert spec.operator == "==", f"requirements.txt pins exact versions: {pin}"
            outside = [str(r) for r in declared[name] if not r.specifier.contains(spec.version, prereleases=True)]
            assert outside == [], f"{pin} is outside {outside}"


def test_app_packages_are_an_extra_not_a_core_dependency() -> None:
    project = _project()
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    app = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["app"]}
    assert set(APP_ONLY) <= app and not set(APP_ONLY) & core


def test_every_package_goes_into_the_wheel_with_the_assets() -> None:
    """pyproject.toml lists the packages (so that assets/ can be mapped into the wheel as
    ``bulkformer.assets``): a new subpackage must be listed there too."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bulkformer").rglob("__init__.py")}
    assert sorted(setuptools["packages"]) == sorted(found | {"bulkformer.assets"})
    assert setuptools["package-dir"] == {"bulkformer.assets": "assets"}


PROBE = r"""
import importlib, importlib.abc, json, pkgutil, sys
BLOCKED = {"streamlit", "plotly", "umap"}

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
import bulkformer
failed = {}
for info in pkgutil.walk_packages(bulkformer.__path__, "bulkformer."):
    try:
        importlib.import_module(info.name)
    except Exception as err:
        failed[info.name] = f"{type(err).__name__}: {err}"
print(json.dumps(failed))
"""


def test_package_imports_without_the_app_extras() -> None:
    """``pip install bulkformer-studio`` (no ``[app]``): every module imports; UMAP, plots and
    the web app are loaded only where they are used."""
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}
