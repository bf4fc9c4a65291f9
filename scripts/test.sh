#!/usr/bin/env bash
# Install skqflow with its test extras (CPU build of torch first) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test,plot,da]"
python -m ruff check .
python -m pytest -q
