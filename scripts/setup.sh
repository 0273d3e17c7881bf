#!/usr/bin/env bash
# Set up BulkFormer Studio on a fresh Debian machine: a virtual environment in .venv with
# everything the app, the CLI and the tests need. Safe to run again.
#   bash scripts/setup.sh            # app + CLI
#   bash scripts/setup.sh --tests    # also Chromium + ChromeDriver for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--tests" ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
echo "BulkFormer Studio is set up in .venv"
