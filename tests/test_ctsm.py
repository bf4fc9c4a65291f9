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


# ------------------------------------------------------------ pairing of the bridge's ends
def test_assigned_pairs_keep_both_samples_pair_optimally_in_blocks_and_renew():
    from skqflow._torch.ctsm import AssignedPairs, IndependentPairs

    gen = torch.Generator().manual_seed(0)
    x_p = torch.randn(300, 2, dtype=torch.float64, generator=gen)
    x_q = 1.5 * torch.randn(300, 2, dtype=torch.float64, generator=gen) + 1.0
    pairs = AssignedPairs(x_p, x_q, gen, block_size=100, max_rows=1000)
    batch = next(pairs.batches(64, 1))
    sources, targets, _ = pairs.pairs
    # every row of each sample once: the coupling has the two samples as marginals
    for rows, sample in ((sources, x_p), (targets, x_q)):
        assert torch.equal(torch.sort(rows, dim=0).values, torch.sort(sample, dim=0).values)
    # inside each block of 100 the pairing is optimal, hence cyclically monotone for every two pairs
    for a, b in zip(sources.split(100), targets.split(100)):
        direct = (a - b).pow(2).sum(1)
        swapped = torch.cdist(a, b).pow(2)
        assert torch.all(direct[:, None] + direct[None, :] <= swapped + swapped.T + 1e-9)
    # and much shorter than independent pairs
    x0, x1 = next(IndependentPairs(x_p, x_q, gen).batches(300, 1))
    assert (sources - targets).pow(2).sum(1).mean() < 0.5 * (x0 - x1).pow(2).sum(1).mean()
    assert batch[0].shape == (64, 2)
    # a new pairing every epoch, of at most max_rows rows of each sample
    list(pairs.batches(8, 1))
    assert not torch.equal(pairs.pairs[0], sources)
    capped = AssignedPairs(x_p, x_q, gen, block_size=100, max_rows=200)
    list(capped.batches(8, 1))
    assert len(capped.pairs[0]) == 200
    assert torch.isin(capped.pairs[1], x_q).all(1).all()  # rows of Q, each at most once
    assert len(torch.unique(capped.pairs[1], dim=0)) == 200


# ------------------------------------------------------------ method="auto": the mean of two estimates
def test_auto_is_the_mean_of_the_classifier_and_the_bridge(tmp_path):
    import skqflow
    from skqflow._torch.ratio import log_ratio

    pair = make_gaussian_pair(2, random_state=0)
    X_p, X_q = pair.sample(1500, random_state=1)
    E = np.concatenate(pair.sample(1000, random_state=2))
    flow = OTFlowTransformer(init_steps=30, random_state=0)
    est = InfinitesimalDensityRatio(flow=flow, n_epochs=6, random_state=0).fit(*stack(X_p, X_q))
    assert est.method_ in ("single classifier + ctsm", "chain + ctsm")
    assert est.method_ in est.held_out_loss_ and "ctsm" in est.held_out_loss_
    assert {r["direction"] for r in est.history_ if r.get("selected")} == set(est.method_.split(" + "))
    # the estimate is the mean of the two nets' integrals, each on its own grid
    from skqflow._transport import torch_view

    Z = torch_view(est.flow_)[1].to_tensor(E)
    parts = [log_ratio(est.net_, Z, torch.as_tensor(est.times_)),
             log_ratio(est.bridge_net_, Z, torch.as_tensor(est.bridge_times_))]
    np.testing.assert_allclose(est.predict_log_ratio(E), (0.5 * (parts[0] + parts[1])).numpy(), rtol=1e-6, atol=1e-6)
    truth = pair.log_ratio(E)
    assert np.abs(est.predict_log_ratio(E) - truth).mean() < 0.4 * np.abs(truth).mean()
    # the two estimates follow different paths: only the whole interval is defined
    with pytest.raises(ValueError, match="different paths"):
        est.predict_log_ratio(E, t_start=0.25, t_end=0.5)
    # saved and loaded with both nets
    path = tmp_path / "auto.skq"
    skqflow.save(est, path)
    np.testing.assert_array_equal(skqflow.load(path).predict_log_ratio(E[:20]), est.predict_log_ratio(E[:20]))
    # a refit with one estimate leaves no second net behind
    est.set_params(method="classifier", n_epochs=2).fit(*stack(X_p, X_q))
    assert not hasattr(est, "bridge_net_") and " + " not in est.method_
