"""An interrupted fit (Ctrl-C in any phase) leaves the estimator exactly as it was."""

import copy

import numpy as np
import pytest
import torch

import skqflow._torch.flow as torch_flow
import skqflow._torch.train as torch_train
from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair

from .conftest import FAST, fast_ratio


@pytest.fixture(scope="module")
def data():
    pair = make_gaussian_pair(2, random_state=0)
    return stack(*pair.sample(300, random_state=1))


def _interrupt_on_call(monkeypatch, module, n):
    """Make the ``n``-th call (1-based) of ``module.run_epochs`` raise KeyboardInterrupt."""
    real, calls = module.run_epochs, {"n": 0}

    def run_epochs(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "run_epochs", run_epochs)
    return calls


def _snapshot(est):
    """Every attribute, with torch modules as their weights."""
    out = {}
    for key, value in vars(est).items():
        if isinstance(value, torch.nn.Module):
            out[key] = {k: v.clone() for k, v in value.state_dict().items()}
        elif isinstance(value, list) and value and isinstance(value[0], torch.nn.Module):
            out[key] = [{k: v.clone() for k, v in m.state_dict().items()} for m in value]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict) and x and all(isinstance(v, torch.Tensor) for v in x.values()):
            assert all(torch.equal(x[k], y[k]) for k in x), key
        elif isinstance(x, list) and x and isinstance(x[0], dict) and "weight" in str(list(x[0])):
            assert all(torch.equal(m[k], n[k]) for m, n in zip(x, y) for k in m), key
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=key)
        elif isinstance(x, (OTFlowTransformer, InfinitesimalDensityRatio)):
            _assert_same(_snapshot(x), _snapshot(y))
        else:
            assert x == y if not isinstance(x, float) or not np.isnan(x) else np.isnan(y), key


# The flow's phases call run_epochs in this order (FAST: 1 round, 1 refinement epoch a direction):
# 1 initial flow, 2-3 the two classifier warm-ups, 4 P->Q flow epoch, 5 its inner classifier,
# 6 Q->P flow epoch, 7 its inner classifier.
FLOW_CALLS = range(1, 8)


@pytest.mark.parametrize("call", FLOW_CALLS)
@pytest.mark.parametrize("warm", [False, True])
def test_interrupted_flow_fit_keeps_the_previous_state(data, monkeypatch, call, warm):
    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    flow.set_params(gamma=0.5, warm_start=warm)
    before, out_before = _snapshot(flow), flow.transform(X[:20])
    if warm and call == 1:
        pytest.skip("a warm start has no initial flow phase")
    calls = _interrupt_on_call(monkeypatch, torch_flow, call - 1 if warm else call)
    with pytest.raises(KeyboardInterrupt):
        flow.fit(X[::-1].copy(), y[::-1].copy())
    assert calls["n"] >= 1
    _assert_same(_snapshot(flow), before)
    np.testing.assert_array_equal(flow.transform(X[:20]), out_before)


def test_interrupted_first_fit_leaves_an_unfitted_estimator(data, monkeypatch):
    X, y = data
    flow = OTFlowTransformer(**FAST)
    _interrupt_on_call(monkeypatch, torch_flow, 2)
    with pytest.raises(KeyboardInterrupt):
        flow.fit(X, y)
    assert vars(flow) == vars(OTFlowTransformer(**FAST))


def test_interrupted_fitted_metrics_keep_the_previous_state(data, monkeypatch):
    """Ctrl-C after training, while the fitted metrics are computed."""
    from skqflow._torch.flowmap import FlowMap

    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X, y).set_params(max_iter=0)
    before = _snapshot(flow)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FlowMap, "round_trip_error", interrupted)
    with pytest.raises(KeyboardInterrupt):
        flow.fit(X, y)
    _assert_same(_snapshot(flow), before)


@pytest.mark.parametrize("phase", ["flow", "ratio net"])
def test_interrupted_density_ratio_fit_keeps_the_previous_state(data, monkeypatch, phase):
    X, y = data
    est = InfinitesimalDensityRatio(**fast_ratio()).fit(X, y).set_params(n_epochs=3)
    before, out_before = _snapshot(est), est.predict_log_ratio(X[:20])
    module = torch_flow if phase == "flow" else torch_train  # the ratio net runs in train
    _interrupt_on_call(monkeypatch, module, 1)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X[::3], y[::3])
    _assert_same(_snapshot(est), before)
    np.testing.assert_array_equal(est.predict_log_ratio(X[:20]), out_before)


@pytest.mark.parametrize("phase", ["flow", "ratio net"])
def test_interrupted_mutual_info_fit_keeps_the_previous_state(monkeypatch, phase):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    y = x[:, 0] + rng.normal(size=200)
    est = MutualInformationEstimator(
        flow=OTFlowTransformer(**FAST), hidden_layer_sizes=(16,), n_epochs=2, batch_size=64, random_state=0
    ).fit(x, y)
    mi, std, pmi = est.mutual_info_, est.mutual_info_std_, est.pointwise_mutual_info(x[:10], y[:10])
    inner = est.density_ratio_
    _interrupt_on_call(monkeypatch, torch_flow if phase == "flow" else torch_train, 1)
    with pytest.raises(KeyboardInterrupt):
        est.fit(x[:100] * 2, y[:100])
    assert (est.mutual_info_, est.mutual_info_std_) == (mi, std)
    assert est.density_ratio_ is inner
    np.testing.assert_array_equal(est.pointwise_mutual_info(x[:10], y[:10]), pmi)


def test_interrupted_copula_mutual_info_fit_keeps_the_previous_state(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = x[:, :1] ** 3 + rng.normal(size=(300, 1))
    est = MutualInformationEstimator(hidden_layer_sizes=(16,), n_epochs=2, random_state=0).fit(x, y)
    assert est.method_ == "copula"
    before = (est.mutual_info_, est.mutual_info_std_, est.pointwise_mutual_info(x[:10], y[:10]).tolist())
    _interrupt_on_call(monkeypatch, torch_train, 1)  # the first correction net
    with pytest.raises(KeyboardInterrupt):
        est.fit(x[:150] * 2, y[:150])
    after = (est.mutual_info_, est.mutual_info_std_, est.pointwise_mutual_info(x[:10], y[:10]).tolist())
    assert after == before

