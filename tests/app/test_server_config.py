"""The settings the app is served with: ``.streamlit/config.toml`` next to ``app.py``, as
``streamlit run app.py`` reads it (wherever the server is started from).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What `streamlit run FILE` does before serving (streamlit/web/cli.py): name the main script,
# so that the .streamlit/config.toml beside it counts, then load every config source.
_READ_OPTION = """
import sys
from streamlit import config
from streamlit.web import bootstrap
config._main_script_path = sys.argv[1]
bootstrap.load_config_options(flag_options={})
print(repr(config.get_option(sys.argv[2])))
"""


def served_option(name: str, *, cwd: Path) -> object:
    """The value of Streamlit option ``name`` for ``streamlit run <checkout>/app.py`` started in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    done = subprocess.run([sys.executable, "-c", _READ_OPTION, str(ROOT / "app.py"), name], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_no_full_garbage_collection_after_every_script_run(where: str, tmp_path: Path) -> None:
    """While a job runs, each session's progress panel reruns every second. Streamlit's default
    is a full ``gc.collect()`` after every run: ~0.25 s holding the GIL over the server's
    objects, so 4 sessions' panels starved their jobs (17-50x slower runs, issue 14)."""
    assert served_option("runner.postScriptGC", cwd=ROOT if where == "checkout" else tmp_path) is False


def test_the_readme_states_the_upload_limit_the_server_is_given() -> None:
    """One number, one home (issue #28): the app's upload limit is ``server.maxUploadSize`` in
    .streamlit/config.toml (the upload box reads it); the README must quote that number."""
    import re
    import tomllib

    limit_mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(r"an upload of at most ([\d,]+) MB", readme)
    assert quoted, "README no longer states the app's upload limit"
    assert int(quoted.group(1).replace(",", "")) == limit_mb
    assert "`server.maxUploadSize`" in readme
