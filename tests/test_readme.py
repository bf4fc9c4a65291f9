"""Every ```python block of README.md runs on its own as a script and prints its result.

Each block is written to a file and run in a fresh interpreter (``sys.executable``) with a
temporary directory as working directory and ``OMP_NUM_THREADS=1``, ``MPLBACKEND=Agg``; the
test checks that it exits with status 0, prints something, and prints no NaN or infinity. The
blocks are parametrized by their index and the README section they sit in, e.g.
``block0-quick-start``.

Run times on a 2-core CPU (each block's prose in the README says its own; all blocks together
take about 3 minutes): the quick start about 12 s, mutual information about 7 s, domain
adaptation about 6 s, plotting about 8 s, saving about 6 s. Those run in the default suite
(about 40 s together). The two blocks in ``SLOW`` take 50-80 s each and are marked ``slow``
(``python -m pytest -m slow tests/test_readme.py`` runs them):

* ``block1-in-scikit-learn-workflows``: the ``GridSearchCV`` over ``gamma`` (about 80 s),
* ``block2-density-ratios-and-mutual-information``: the density ratio (about 50 s).

A block that imports skada or matplotlib is skipped when that package is missing.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"

SLOW = {
    "block1-in-scikit-learn-workflows",
    "block2-density-ratios-and-mutual-information",
}
OPTIONAL = ("skada", "matplotlib")

_FENCE = re.compile(r"^```python\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{2,3} (.+)$", re.MULTILINE)
_NOT_FINITE = re.compile(r"\b(nan|inf)\b", re.IGNORECASE)


def _slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def readme_blocks():
    """``(id, code)`` for every ```python block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    headings = [(m.start(), m.group(1)) for m in _HEADING.finditer(text)]
    blocks = []
    for i, match in enumerate(_FENCE.finditer(text)):
        section = [title for start, title in headings if start < match.start()]
        name = _slug(section[-1]) if section else "top"
        blocks.append((f"block{i}-{name}", match.group(1)))
    return blocks


BLOCKS = readme_blocks()


def test_readme_has_blocks_and_slow_names_exist():
    ids = [name for name, _ in BLOCKS]
    assert len(ids) >= 5, ids
    assert len(set(ids)) == len(ids), ids
    assert SLOW <= set(ids), f"SLOW names blocks that are not in the README: {SLOW - set(ids)}"


@pytest.mark.parametrize(
    "code",
    [pytest.param(code, id=name, marks=[pytest.mark.slow] if name in SLOW else []) for name, code in BLOCKS],
)
def test_readme_block_runs(code, tmp_path):
    for module in OPTIONAL:
        if re.search(rf"^\s*(from|import) {module}\b", code, re.MULTILINE) and not importlib.util.find_spec(module):
            pytest.skip(f"needs {module}")
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    report = f"--- code\n{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"the block exited with status {result.returncode}\n{report}"
    assert result.stdout.strip(), f"the block printed nothing\n{report}"
    assert not _NOT_FINITE.search(result.stdout), f"the block printed a non-finite number\n{report}"
