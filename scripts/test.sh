#!/usr/bin/env bash
# Install skqflow with its test extras (CPU build of torch first), lint, and run the suite
# without the heavy accuracy tests (those: python -m pytest -q -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test,plot,da,cluster]"
python -m ruff check .
python -m pytest -q -m "not slow"
