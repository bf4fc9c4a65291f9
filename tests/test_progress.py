"""verbose=0 writes nothing; verbose=1 shows one progress bar per phase with the live loss."""

import re

import numpy as np
import pytest

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer, stack

from .conftest import FAST

# the one tiny configuration (tests/conftest.py), with epoch counts that the bars must show
FLOW = {**FAST, "init_steps": 3, "batch_size": 10_000, "refine_epochs": 2}  # one step a pass


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return stack(rng.normal(size=(120, 2)), rng.normal(size=(120, 2)) + 1.0)


def _ratio(verbose):
    return InfinitesimalDensityRatio(flow=OTFlowTransformer(**FLOW), hidden_layer_sizes=(8,), n_epochs=2,
                                     random_state=0, verbose=verbose)


@pytest.mark.parametrize("make", [lambda v: OTFlowTransformer(**FLOW, verbose=v), _ratio])
def test_silent_by_default(make, data, capfd):
    make(0).fit(*data)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_mutual_info_silent(capfd):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 1))
    MutualInformationEstimator(flow=OTFlowTransformer(**FLOW), hidden_layer_sizes=(8,), n_epochs=1,
                               random_state=0).fit(X, X + rng.normal(size=(80, 1)))
    assert capfd.readouterr() == ("", "")


def test_one_bar_per_phase_with_the_loss(data, capfd):
    pytest.importorskip("tqdm")
    _ratio(1).fit(*data)
    out, err = capfd.readouterr()
    assert out == ""
    # tqdm redraws with carriage returns; the final state of each bar ends with its total
    final = re.compile(r"([A-Za-z][^:\r\n]*?): 100%\|[^\r\n]*?\| (\d+/\d+)")
    finals = {m.group(1): m.group(2) for m in final.finditer(err)}
    assert finals == {
        "initial flow": "3/3",
        "classifier P->Q round 1": "1/1",
        "classifier Q->P round 1": "1/1",
        "refinement P->Q round 1": "2/2",
        "refinement Q->P round 1": "2/2",
        "ratio net chain": "2/2",
        "ratio net single classifier": "2/2",
        "ratio net ctsm": "2/2",
    }, err
    assert re.search(r"loss=[-0-9.e]+", err)
