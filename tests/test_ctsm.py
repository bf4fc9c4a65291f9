"""Time-score matching on a noisy bridge (``InfinitesimalDensityRatio(method="ctsm")``)."""

import math

import numpy as np
import pytest
import torch

from skqflow import InfinitesimalDensityRatio, OTFlowTransformer, stack
from skqflow._torch.ctsm import bridge_time_score
from skqflow.datasets import make_gaussian_pair


def _log_bridge_density(x, x0, x1, t, sigma):
    """log N(x; (1 - t) x0 + t x1, sigma² t (1 - t) I), summed per coordinate."""
    var = sigma**2 * t * (1 - t)
    mean = (1 - t) * x0 + t * x1
    return -0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var))


def test_bridge_target_is_the_conditional_time_score():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(50, 3, dtype=torch.float64, generator=gen), torch.randn(50, 3, dtype=torch.float64) + 2
    sigma = 0.7
    x_t, t, target, weight = bridge_time_score(x0, x1, sigma, gen)
    h = 1e-6
    tt = t[:, None]
    # d/dt log p_t(x | x0, x1) at the drawn x, by central differences, coordinate by coordinate
    up, down = _log_bridge_density(x_t, x0, x1, tt + h, sigma), _log_bridge_density(x_t, x0, x1, tt - h, sigma)
    numeric = (up - down) / (2 * h)
    np.testing.assert_allclose(target.numpy(), numeric.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weight.numpy(), (t * (1 - t)).numpy())


def test_bridge_score_has_mean_zero_at_fixed_time():
    gen = torch.Generator().manual_seed(2)
    x0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(100_000, 2)
    x1 = torch.tensor([[2.0, -1.0]], dtype=torch.float64).expand(100_000, 2)
    _, t, target, weight = bridge_time_score(x0, x1, 0.5, gen)
    # E[weight * target] = E_t[t (1 - t) E[target | t]] = 0; the weight keeps the variance finite
    terms = (weight[:, None] * target).numpy()
    se = terms.std(0) / np.sqrt(len(terms))
    assert np.all(np.abs(terms.mean(0)) < 4 * se)


def test_ctsm_recovers_a_gaussian_log_ratio():
    pair = make_gaussian_pair(2, random_state=0)
    X_p, X_q = pair.sample(1500, random_state=1)
    E_p, E_q = pair.sample(1000, random_state=2)
    E = np.concatenate([E_p, E_q])
    flow = OTFlowTransformer(init_steps=30, random_state=0)
    est = InfinitesimalDensityRatio(flow=flow, method="ctsm", n_epochs=8, random_state=0).fit(*stack(X_p, X_q))
    assert est.method_ == "ctsm" and len(est.times_) == 17
    assert {r["direction"] for r in est.history_} == {"ctsm"}
    truth = pair.log_ratio(E)
    err = np.abs(est.predict_log_ratio(E) - truth)
    assert err.mean() < 0.4 * np.abs(truth).mean()  # the zero map scores 1.0; this fit about 0.3
    # the integral splits over time: [0, 1/2] + [1/2, 1] = [0, 1]
    half = est.predict_log_ratio(E[:50], t_end=0.5) + est.predict_log_ratio(E[:50], t_start=0.5)
    np.testing.assert_allclose(half, est.predict_log_ratio(E[:50]), rtol=1e-4, atol=1e-4)


def test_ctsm_rejects_bad_noise():
    X, y = stack(np.zeros((5, 2)) + np.arange(5)[:, None], np.ones((5, 2)) + np.arange(5)[:, None])
    with pytest.raises(ValueError, match="bridge_noise"):
        InfinitesimalDensityRatio(method="ctsm", bridge_noise=0.0).fit(X, y)


def test_ctsm_model_saves_and_loads(tmp_path):
    import skqflow

    X_p, X_q = make_gaussian_pair(2, random_state=0).sample(300, random_state=1)
    flow = OTFlowTransformer(init_steps=20, random_state=0)
    est = InfinitesimalDensityRatio(flow=flow, method="ctsm", n_epochs=1, random_state=0).fit(*stack(X_p, X_q))
    path = tmp_path / "ctsm.skq"
    skqflow.save(est, path)
    loaded = skqflow.load(path)
    assert loaded.net_.init_args["n_components"] == 2
    np.testing.assert_array_equal(loaded.predict_log_ratio(X_p[:20]), est.predict_log_ratio(X_p[:20]))
