#!/usr/bin/env bash
# Set up BulkFormer Studio on a fresh Debian machine: a virtual environment in .venv with
# everything the app, the CLI and the tests need. Safe to run again.
#   bash scripts/setup.sh            # app + CLI
#   bash scripts/setup.sh --tests    # also Chromium + ChromeDriver for the browser test
#   bash scripts/setup.sh --latest   # .venv-latest: the package with the newest versions pyproject.toml
#                                    # allows (+ test tools), to test against today's stack; torch stays
#                                    # at requirements.txt's CPU build (any other pulls GBs of CUDA)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ " $* " == *" --latest "* ]]; then
  [[ -x .venv-latest/bin/python ]] || python3 -m venv .venv-latest
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  grep -E '^torch==' requirements.txt >"$constraints"
  .venv-latest/bin/python -m pip install -q --upgrade --upgrade-strategy eager -c "$constraints" -e ".[test]"
  # anndata 0.12, the newest for Python 3.11, asks for pandas < 3 (0.13 allows 3 but needs Python
  # 3.12): install pandas 3 over that, as many users' environments have it, so it is tested too.
  .venv-latest/bin/python -m pip install -q --upgrade --no-deps "pandas>=3,<4"
  echo "BulkFormer Studio is set up in .venv-latest (newest allowed versions)"
  exit 0
fi

if [[ " $* " == *" --tests "* ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
echo "BulkFormer Studio is set up in .venv"
