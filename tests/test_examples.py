"""The gallery examples run (headless) and print their key numbers."""

import re
import runpy
from pathlib import Path

import pytest
import sklearn

pytest.importorskip("matplotlib")

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))

# Words that each example's printed report must contain (besides finite numbers).
EXPECTED = {
    "plot_gaussian_ot.py": ["map error", "Gaussian plug-in", "W2^2"],
    "plot_moons_checkerboard.py": ["transport cost", "optimal assignment", "energy distance"],
    "plot_density_ratio_mixture.py": ["MAE", "flow chain", "single classifier"],
    "plot_mutual_info_dims.py": ["true MI", "relative error"],
    "plot_digits_density.py": ["bits per dimension", "Gaussian + skqflow"],
    "plot_select_gamma.py": ["chosen gamma", "exact W2^2"],
    "plot_domain_adaptation.py": ["target accuracy without adaptation", "skada's OTMapping", "chosen gamma"],
}
NEEDS = {"plot_domain_adaptation.py": "skada"}


def _value(out, pattern):
    return float(re.search(pattern, out).group(1))


# Loose checks against the truth, where an example prints one.
TRUTHS = {
    "plot_gaussian_ot.py": lambda out: _value(out, r"map error[^:]*: ([\d.]+)") < 0.25,
    "plot_domain_adaptation.py": lambda out: (  # adaptation helps, and the flow keeps up with skada's
        _value(out, r"accuracy with the flow: ([\d.]+)")
        > max(_value(out, r"accuracy without adaptation: ([\d.]+)") + 0.2,
              _value(out, r"accuracy with skada's OTMapping: ([\d.]+)") - 0.03)
    ),
    "plot_digits_density.py": lambda out: (  # the improved model has fewer test bits per dimension
        _value(out, r"Gaussian \+ skqflow\s+[\d.]+\s+([\d.]+)") < _value(out, r"Gaussian\s+[\d.]+\s+([\d.]+)")
    ),
}

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:e[-+]?\d+)?|(?<![\w.])[-+]?\d+e[-+]?\d+", re.IGNORECASE)
_NOT_FINITE = re.compile(r"\b(nan|inf)\b", re.IGNORECASE)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive:UserWarning")
@pytest.mark.filterwarnings("ignore:The `return_X_y` parameter is deprecated:DeprecationWarning")  # skada
def test_example_runs(path, monkeypatch, capsys):
    if path.name in NEEDS:
        pytest.importorskip(NEEDS[path.name])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    plt.switch_backend("Agg")
    # an example may change scikit-learn's global configuration (importing
    # skada turns metadata routing on): restore it afterwards
    with sklearn.config_context():
        try:
            runpy.run_path(str(path), run_name="__main__")
        finally:
            plt.close("all")
    out = capsys.readouterr().out
    for words in EXPECTED.get(path.name, []):
        assert words in out, f"{path.name} did not print {words!r}:\n{out}"
    numbers = [float(m) for m in _NUMBER.findall(out)]
    assert numbers, f"{path.name} printed no number:\n{out}"
    assert not _NOT_FINITE.search(out), f"{path.name} printed a non-finite number:\n{out}"
    if path.name in TRUTHS:
        assert TRUTHS[path.name](out), f"{path.name} is off the truth:\n{out}"

