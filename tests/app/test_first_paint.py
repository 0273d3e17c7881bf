"""Home appears without the heavy libraries; the model code and the map code are warmed up in the
background after it is drawn, and the app says so while they are.

Runs the app in a fresh Python process (AppTest), since this test process has torch loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bulkformer import paths

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (paths.demo_model_dir() / "config.json").is_file(), reason="the demo model (assets/demo/model) is not built"
)

PROBE = r"""
import json, sys, threading
from streamlit.testing.v1 import AppTest
import bulkformer.analysis._projection
import ui.session as session

HEAVY = ("torch", "umap", "sklearn", "anndata", "numba")
report = {"warm_up_calls": 0}
start_warm_up = session.start_warm_up

def recorded_start():
    report.setdefault("loaded_when_warm_up_starts", [m for m in HEAVY if m in sys.modules])
    report["warm_up_calls"] += 1

def shown(at):
    return [e.value for e in [*at.caption, *at.markdown, *at.warning]]

session.start_warm_up = recorded_start
at = AppTest.from_file(sys.argv[1], default_timeout=1800).run()
report["exceptions"] = [str(e.value) for e in at.exception]
report["loaded_after_home"] = [m for m in HEAVY if m in sys.modules]
report["home"] = shown(at)
report["warm_up_calls_by_home"] = report["warm_up_calls"]

maps_may_finish = threading.Event()
bulkformer.analysis._projection.project = lambda *args, **kwargs: maps_may_finish.wait(1800)
start_warm_up()
session._WARM_UP.code.wait(1800)
report["loaded_by_warm_up"] = [m for m in HEAVY if m in sys.modules]
at.run()
report["home_while_maps_warm_up"] = shown(at)
sidebar_line = AppTest.from_string("from ui import session\nsession.warm_up_status()").run()
report["status_while_maps_warm_up"] = shown(sidebar_line)
maps_may_finish.set()
session._WARM_UP.maps.wait(1800)
report["status_after_warm_up"] = shown(sidebar_line.run())
report["exceptions"] += [str(e.value) for app in (at, sidebar_line) for e in app.exception]
print(json.dumps(report))
"""


def test_home_is_drawn_before_the_heavy_libraries_which_load_after_it(tmp_path: Path) -> None:
    env = {**os.environ, "BULKFORMER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "app.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exceptions"] == []
    # Home was drawn with none of them, and the warm-up was asked for once, after the page
    assert report["loaded_when_warm_up_starts"] == [] and report["loaded_after_home"] == []
    assert report["warm_up_calls_by_home"] == 1
    assert ":material/hourglass_top: Loading the model in the background…" in report["home"]
    assert not any(line.startswith("**Loaded:**") for line in report["home"])
    # the warm-up loaded the model code (torch): Home then shows the model; the sidebar's line says
    # what the warm-up is doing, and goes once it is done
    assert "torch" in report["loaded_by_warm_up"]
    assert any(line.startswith("**Loaded:**") for line in report["home_while_maps_warm_up"])
    assert report["status_while_maps_warm_up"] == [
        ":material/hourglass_top: Getting ready in the background: preparing the sample maps "
        "(the first time on this server: up to a minute)…"]
    assert report["status_after_warm_up"] == []
