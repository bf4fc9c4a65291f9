"""Bad input gets a clear error and changes nothing."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skqflow import OTFlowTransformer, stack

from .conftest import FAST


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return stack(rng.normal(size=(60, 3)), rng.normal(2.0, 1.0, size=(50, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(data, bad):
    X, y = data
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        OTFlowTransformer(**FAST).fit(X, y)


def test_label_count(data):
    X, y = data
    with pytest.raises(ValueError, match="y holds one domain label \\(0\\); rows of both domains"):
        OTFlowTransformer(**FAST).fit(X, np.zeros_like(y))
    y3 = y.copy()
    y3[:10] = 2
    with pytest.raises(ValueError, match="exactly two distinct"):
        OTFlowTransformer(**FAST).fit(X, y3)


def test_too_few_rows_of_a_domain(data):
    X, y = data
    y1 = np.zeros_like(y)
    y1[0] = 1
    with pytest.raises(ValueError, match="has 1 row"):
        OTFlowTransformer(**FAST).fit(X, y1)


def test_wrong_number_of_features(data):
    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    for method in (flow.transform, flow.inverse_transform, flow.transport_cost):
        with pytest.raises(ValueError, match="features"):
            method(X[:, :2])
    with pytest.raises(ValueError, match="features"):
        flow.interpolate(X[:, :2], 0.5)


def test_sparse_input(data):
    X, y = data
    with pytest.raises(TypeError, match="[Ss]parse"):
        OTFlowTransformer(**FAST).fit(sp.csr_matrix(X), y)


def test_not_fitted(data):
    X, _ = data
    flow = OTFlowTransformer(**FAST)
    for call in (lambda: flow.transform(X), lambda: flow.inverse_transform(X),
                 lambda: flow.interpolate(X, 0.5), lambda: flow.score(X),
                 lambda: flow.transport_cost(X)):
        with pytest.raises(NotFittedError):
            call()


def test_bad_parameters_are_named(data):
    X, y = data
    with pytest.raises(ValueError, match="activation"):
        OTFlowTransformer(activation="relu").fit(X, y)
    with pytest.raises(ValueError, match="init"):
        OTFlowTransformer(init="magic").fit(X, y)
    with pytest.raises(ValueError, match="gamma"):
        OTFlowTransformer(gamma=-1.0).fit(X, y)


def test_inputs_are_not_modified(data):
    X, y = data
    X_copy, y_copy = X.copy(), y.copy()
    flow = OTFlowTransformer(**FAST)
    params = flow.get_params()
    flow.fit(X, y)
    flow.transform(X)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    assert flow.get_params() == params


def test_divergence_restores_weights_and_warns(data, monkeypatch):
    """A non-finite loss stops training, restores the last finite weights, warns."""
    import skqflow._torch.flow as flow_module

    real = flow_module.flow_matching_loss
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        loss = real(*args)
        return loss * np.nan if calls["n"] > 3 else loss

    monkeypatch.setattr(flow_module, "flow_matching_loss", poisoned)
    X, y = data
    with pytest.warns(ConvergenceWarning, match="diverged"):
        flow = OTFlowTransformer(**{**FAST, "init_steps": 100, "batch_size": 32}).fit(X, y)
    out = flow.transform(X)
    assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(flow.inverse_transform(X)))


def test_reference_without_sample_method(data):
    X, _ = data
    with pytest.raises(TypeError, match="sample"):
        OTFlowTransformer(**FAST, reference=object()).fit(X)


def test_reference_of_wrong_width(data):
    from skqflow._base import StandardNormal

    X, _ = data
    with pytest.raises(ValueError, match="expected"):
        OTFlowTransformer(**FAST, reference=StandardNormal(5)).fit(X)


def test_device_cuda_missing(data):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    X, y = data
    for device in ("cuda", "cuda:1", torch.device("cuda", 0)):
        with pytest.raises(ValueError, match="cuda.*not available"):
            OTFlowTransformer(**FAST, device=device).fit(X, y)


def test_device_accepts_what_torch_accepts(data):
    import torch

    X, y = data
    reference = OTFlowTransformer(**FAST, device="cpu").fit(X, y).transform(X[:5])
    for device in (torch.device("cpu"), "cpu:0"):
        flow = OTFlowTransformer(**FAST, device=device).fit(X, y)
        assert flow.device_.startswith("cpu")
        np.testing.assert_array_equal(flow.transform(X[:5]), reference)
    with pytest.raises(ValueError, match="not a torch device"):
        OTFlowTransformer(**FAST, device="gpu").fit(X, y)
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="mps.*not available"):
            OTFlowTransformer(**FAST, device="mps").fit(X, y)
