"""Failures are never silent: blow-ups, absurd fits, overflowing input, NaN outputs, bad arguments."""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import check_transformer_n_iter

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer, stack
from skqflow._torch.train import BLOWUP_FACTOR, Phase, TrainingDiverged, run_epochs
from skqflow.datasets import make_gaussian_pair

from .conftest import FAST, fast_ratio


@pytest.fixture(scope="module")
def data():
    pair = make_gaussian_pair(2, random_state=0)
    return pair, stack(*pair.sample(400, random_state=1))


@pytest.fixture(scope="module")
def fitted(data):
    return OTFlowTransformer(**FAST).fit(*data[1])


# ------------------------------------------------------------------ blow-ups
def test_finite_blow_up_is_caught_and_the_weights_restored():
    net = torch.nn.Linear(1, 1)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    losses = iter([1.0, 2.0, 0.5 * BLOWUP_FACTOR, 3.0 * BLOWUP_FACTOR])

    def loss(_):
        out = net(torch.ones(1, 1)).sum()
        return out - out.detach() + next(losses)  # value from the list, gradient of the net

    phase = Phase([net], torch.optim.SGD(net.parameters(), lr=0.1), lambda: [0, 1], loss)
    run_epochs(phase, 1)  # 1.0 then 2.0: sound
    after_first = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="grew from 1 to 3e\\+03"):
        run_epochs(phase, 1)  # 500 is within the band, 3000 > 1000 * (1 + 1) is not
    for k, v in net.state_dict().items():  # back to the start of the failing epoch
        assert torch.equal(v, after_first[k])
    assert not all(torch.equal(start[k], after_first[k]) for k in start)  # epoch 1 did train


def test_huge_learning_rate_warns_for_the_flow(data):
    _, (X, y) = data
    with pytest.warns(ConvergenceWarning, match="diverged.*grew from"):
        OTFlowTransformer(**{**FAST, "init_steps": 50}, learning_rate_init=1e3).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        OTFlowTransformer(**{**FAST, "refine_epochs": 3}, refine_learning_rate=1e4).fit(X, y)


def test_huge_learning_rate_warns_for_mutual_info():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    with pytest.warns(ConvergenceWarning, match="ratio net diverged"):
        est = MutualInformationEstimator(
            flow=OTFlowTransformer(**FAST), hidden_layer_sizes=(16,), n_epochs=3, batch_size=64,
            learning_rate_init=1e3, random_state=0,
        ).fit(x, x + rng.normal(size=(400, 2)))
    assert abs(est.mutual_info_) < 10  # the restored net, not -2.4e9 nats


def test_absurd_flow_is_reported(data, monkeypatch):
    """A flow whose push-forward lands far from Q gives a ConvergenceWarning."""
    import skqflow._transport as transport

    _, (X, y) = data

    def runaway(field, *args, **kwargs):  # a "trained" field that moves everything far away
        with torch.no_grad():
            field.layers[-1].shift.weight.fill_(1e3)
        return [0.0]

    monkeypatch.setattr(transport, "fit_flow_matching", runaway)
    with pytest.warns(ConvergenceWarning, match="not a sound map.*transport cost.*mean of T\\(P\\)"):
        OTFlowTransformer(**{**FAST, "max_iter": 0}).fit(X, y)


def test_sound_fit_gives_no_warning(data):
    _, (X, y) = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OTFlowTransformer(**{**FAST, "init_steps": 200}).fit(X, y)


# ------------------------------------------------------------ bad input scale
@pytest.mark.parametrize(
    "value, dtype", [(1e300, "float64"), (1e39, "float32"), (1e20, "float32")]
)
def test_input_that_overflows_the_dtype_is_refused(data, value, dtype):
    _, (X, y) = data
    X = X * value / np.abs(X).max()
    with pytest.raises(ValueError, match="squared distances overflow"):
        OTFlowTransformer(**FAST, dtype=dtype).fit(X, y)


def test_large_but_safe_scale_still_works(data):
    _, (X, y) = data
    flow = OTFlowTransformer(**FAST, dtype="float64").fit(X * 1e100, y)
    np.testing.assert_allclose(flow.transform(X[:5] * 1e100) / 1e100, OTFlowTransformer(
        **FAST, dtype="float64").fit(X, y).transform(X[:5]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "method", [
        lambda f, X: f.transform(X), lambda f, X: f.inverse_transform(X),
        lambda f, X: f.interpolate(X, [0.3, 0.6]), lambda f, X: f.transport_cost(X),
    ],
)
def test_non_finite_outputs_warn(fitted, data, method):
    _, (X, _) = data
    broken = copy.deepcopy(fitted)
    with torch.no_grad():
        broken.field_.layers[0].linear.weight[0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        method(broken, X[:5])
    with warnings.catch_warnings():  # the sound model stays silent
        warnings.simplefilter("error")
        method(fitted, X[:5])


def test_ratio_overflow_warns(data):
    _, (X, y) = data
    est = InfinitesimalDensityRatio(**fast_ratio()).fit(X, y)
    with torch.no_grad():
        est.net_.mlp.net[-1].bias.fill_(1e4)  # log ratio ~ 1e4 (5e3 averaged with the bridge): exp overflows
    with pytest.warns(RuntimeWarning, match="overflows"):
        est.predict_ratio(X[:3])


@pytest.mark.parametrize("offset", [0.5, -0.5])
def test_negative_mutual_info_warns(monkeypatch, offset):
    """The estimate is minus the mean log ratio: force its sign and check the warning."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 1)), rng.normal(size=300)
    monkeypatch.setattr(
        InfinitesimalDensityRatio, "predict_log_ratio", lambda self, X, **kw: np.full(len(X), offset)
    )
    est = MutualInformationEstimator(
        flow=OTFlowTransformer(**FAST), hidden_layer_sizes=(16,), n_epochs=1, batch_size=64, random_state=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(x, y)
    assert est.mutual_info_ == -offset
    assert any("negative" in str(w.message) for w in caught) == (offset > 0)


# ------------------------------------------------------------------ messages
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda f, X: f.interpolate(X, 0.5, start=[0, 1]), "start must be a scalar time"),
        (lambda f, X: f.interpolate(X, None), "t must be a time"),
        (lambda f, X: f.interpolate(X, [[0.1, 0.2]]), "t must be a time"),
        (lambda f, X: f.interpolate(X, "soon"), "t must be a time"),
        (lambda f, X: f.interpolate(X, 0.5, start=None), "start must be a scalar time"),
        (lambda f, X: f.interpolate(X, True), "t must be a time"),
        (lambda f, X: f.interpolate(X, 0.5, start="0.5"), "start must be a scalar time"),
    ],
)
def test_interpolate_messages_name_the_argument(fitted, data, call, match):
    _, (X, _) = data
    with pytest.raises(ValueError, match=match):
        call(fitted, X[:4])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"t_start": np.array([0.0, 0.5])}, "t_start must be a scalar time"),
        ({"t_start": None}, "t_start must be a scalar time"),
        ({"t_end": 1.5}, "t_end must be a scalar time in \\[0, 1\\]"),
    ],
)
def test_predict_log_ratio_messages(data, kwargs, match):
    _, (X, y) = data
    est = InfinitesimalDensityRatio(**fast_ratio()).fit(X, y)
    with pytest.raises(ValueError, match=match):
        est.predict_log_ratio(X[:4], **kwargs)


def test_two_column_y_in_score_is_named(fitted, data):
    _, (X, y) = data
    y2 = np.column_stack([y, y])
    with pytest.raises(ValueError, match="y must be 1-D domain labels.*shape \\(800, 2\\)"):
        fitted.score(X, y2)
    est = InfinitesimalDensityRatio(**fast_ratio()).fit(X, y)
    with pytest.raises(ValueError, match="y must be 1-D domain labels.*shape \\(800, 2\\)"):
        est.score(X, y2)


def test_score_without_y_after_labelled_fit_raises(fitted, data):
    _, (X, _) = data
    with pytest.raises(ValueError, match="y is required"):
        fitted.score(X)


def test_n_iter_is_at_least_one_after_any_fit(data):
    _, (X, y) = data
    flow = OTFlowTransformer(**{**FAST, "max_iter": 0, "init_steps": 3, "batch_size": 800}).fit(X, y)
    assert flow.n_iter_ == 3  # one step a pass over the 800 rows
    flow = OTFlowTransformer(**{**FAST, "init_steps": 2, "batch_size": 800, "refine_epochs": 2}).fit(X, y)
    assert flow.n_iter_ == 2 + 2 * 2  # initial epochs + both directions' refinement epochs
    check_transformer_n_iter("OTFlowTransformer", OTFlowTransformer(**{**FAST, "max_iter": 0}))


def test_a_small_domain_fits_without_held_out_rows():
    """Too few rows of one domain to hold any out: the refinement runs unmonitored."""
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(200, 2)), rng.normal(size=(15, 2)) + 1)
    flow = OTFlowTransformer(**FAST).fit(X, y)
    refinement = [r for r in flow.history_ if r["phase"] == "refinement"]
    assert refinement and "criterion" not in refinement[0]
    assert [r["kept"] for r in refinement] == [False] * (len(refinement) - 1) + [True]


def test_divergence_keeps_the_records_of_the_work_done(data):
    _, (X, y) = data
    with pytest.warns(ConvergenceWarning, match="diverged"):
        flow = OTFlowTransformer(**{**FAST, "refine_epochs": 3}, refine_learning_rate=1e4).fit(X, y)
    initial = [r for r in flow.history_ if r["phase"] == "initial flow"]
    refinement = [r for r in flow.history_ if r["phase"] == "refinement"]
    assert len(initial) == -(-FAST["init_steps"] // -(-400 // FAST["batch_size"]))
    assert refinement[-1]["diverged"] and np.isnan(refinement[-1]["loss"])
    assert sum(r["kept"] for r in refinement) == 1  # the best held-out state, never the diverged one
    assert not refinement[-1]["kept"]
    assert flow.n_iter_ == len(initial) + len(refinement) - 1  # the "initial" held-out record is no epoch
    with pytest.warns(ConvergenceWarning, match="diverged"):
        flow = OTFlowTransformer(**FAST, learning_rate_init=1e3).fit(X, y)
    assert flow.history_[-1]["diverged"] and flow.n_iter_ >= 1


@pytest.mark.parametrize(
    "change, match",
    [
        ({"hidden_layer_sizes": (4,)}, "hidden_layer_sizes or activation"),
        ({"dtype": "float64"}, "dtype"),
        ({"classifier_hidden_layer_sizes": (3,)}, "classifier_hidden_layer_sizes"),
    ],
)
def test_warm_start_refuses_changes_it_cannot_honour(data, change, match):
    _, (X, y) = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=f"warm_start=True continues.*{match}"):
        flow.set_params(warm_start=True, **change).fit(X, y)
    with pytest.raises(ValueError, match="domain labels"):
        flow.set_params(warm_start=True, **{k: FAST.get(k, "float32") for k in change}).fit(X, y + 5)


def test_warm_start_keeps_one_kept_record(data):
    _, (X, y) = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    flow.set_params(warm_start=True).fit(X, y)
    assert sum(bool(r.get("kept")) for r in flow.history_) == 1


def test_a_blow_up_stops_training_within_a_few_steps():
    """The host reads the losses every CHECK_EVERY steps, not only at the end of an epoch."""
    from skqflow._torch.train import CHECK_EVERY

    net = torch.nn.Linear(1, 1)
    seen = {"n": 0}

    def loss(_):
        seen["n"] += 1
        out = net(torch.ones(1, 1)).sum()
        return out - out.detach() + (1.0 if seen["n"] < 3 else 1e9)  # blows up at the 3rd batch

    phase = Phase([net], torch.optim.SGD(net.parameters(), lr=0.1), lambda: range(10 * CHECK_EVERY), loss)
    with pytest.raises(TrainingDiverged):
        run_epochs(phase, 1)
    assert seen["n"] <= CHECK_EVERY  # stopped at the first check, not after all 160 batches
