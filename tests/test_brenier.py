"""The Brenier-potential pairing (``init="brenier"``) and the non-linear OT pair it is measured on."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from skqflow import OTFlowTransformer, stack
from skqflow._torch.brenier import ConvexPotential, brenier_pairs, bures_map, fit_brenier, solve_conjugate
from skqflow.datasets import make_convex_map_pair, make_gaussian_pair


def _rel_error(T_hat, T, X):
    return float(np.mean(np.linalg.norm(T_hat - T, axis=1) / np.linalg.norm(T - X, axis=1)))


def _plug_in(X_p, X_q, X):
    A, m_p, m_q = bures_map(torch.as_tensor(X_p), torch.as_tensor(X_q))
    return ((torch.as_tensor(X) - m_p) @ A + m_q).numpy()


# ------------------------------------------------------------- the dataset
@pytest.mark.parametrize("d", [2, 5])
def test_convex_map_pair_map_is_a_gradient_of_a_convex_function(d):
    pair = make_convex_map_pair(d, random_state=3)
    rng = np.random.default_rng(0)
    X, _ = pair.sample(20, random_state=1)
    h = 1e-5
    for x in X:
        J = np.stack([(pair.ot_map([x + h * e]) - pair.ot_map([x - h * e]))[0] / (2 * h) for e in np.eye(d)])
        np.testing.assert_allclose(J, J.T, atol=1e-6)  # a gradient field
        assert np.linalg.eigvalsh((J + J.T) / 2).min() > 0.4  # of a strictly convex function
    # Cyclical monotonicity: the exact assignment between rows and their images is the identity.
    X = pair.sample(150, random_state=rng.integers(1 << 30))[0]
    cost = ((X[:, None, :] - pair.ot_map(X)[None, :, :]) ** 2).sum(-1)
    _, cols = linear_sum_assignment(cost)
    np.testing.assert_array_equal(cols, np.arange(len(X)))


def test_convex_map_pair_is_not_affine_and_w2_matches_samples():
    pair = make_convex_map_pair(3, random_state=0)
    X_p, X_q = pair.sample(4000, random_state=1)
    T = pair.ot_map(X_p)
    design = np.c_[X_p, np.ones(len(X_p))]
    affine = design @ np.linalg.lstsq(design, T, rcond=None)[0]
    assert _rel_error(affine, T, X_p) > 0.08  # no affine map fits it
    cost = np.sum((T - X_p) ** 2, axis=1)
    assert abs(cost.mean() - pair.w2_squared) < 4 * cost.std() / np.sqrt(len(cost))
    # Q's rows are images of rows independent of X_p: same law as T(X_p), different rows.
    assert not np.allclose(X_q, T)
    np.testing.assert_allclose(X_q.mean(0), T.mean(0), atol=0.2)


def test_convex_map_pair_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_features"):
        make_convex_map_pair(0)
    with pytest.raises(ValueError, match="n_components"):
        make_convex_map_pair(2, n_components=0)


# -------------------------------------------------------- the torch pieces
def test_bures_map_pushes_sample_covariance_exactly():
    pair = make_gaussian_pair(4, random_state=0)
    X_p, X_q = pair.sample(3000, random_state=1)
    A, m_p, m_q = bures_map(torch.as_tensor(X_p), torch.as_tensor(X_q))
    A, S_p, S_q = A.numpy(), np.cov(X_p.T, bias=True), np.cov(X_q.T, bias=True)
    np.testing.assert_allclose(A, A.T)
    assert np.linalg.eigvalsh(A).min() > 0
    np.testing.assert_allclose(A @ S_p @ A, S_q, atol=1e-5)  # the moment-matching identity
    np.testing.assert_allclose(m_p.numpy(), X_p.mean(0))
    np.testing.assert_allclose(A, pair.ot_matrix, atol=0.1)  # and near the population's map


def test_bures_map_ignores_zero_weight_rows():
    pair = make_gaussian_pair(3, random_state=0)
    X_p, X_q = pair.sample(500, random_state=1)
    polluted = np.vstack([X_p, X_p[:50] + 100.0])
    w = torch.cat([torch.ones(500), torch.zeros(50)]).double()
    A_w, m_w, _ = bures_map(torch.as_tensor(polluted), torch.as_tensor(X_q), w, None)
    A, m, _ = bures_map(torch.as_tensor(X_p), torch.as_tensor(X_q))
    np.testing.assert_allclose(A_w.numpy(), A.numpy(), atol=1e-10)
    np.testing.assert_allclose(m_w.numpy(), m.numpy(), atol=1e-10)


def _random_potential(d, seed=0, scale=1.0):
    torch.manual_seed(seed)
    A = torch.eye(d, dtype=torch.float64) * 0.8
    phi = ConvexPotential(A, torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64))
    with torch.no_grad():  # a residual with weights of both signs before projection
        for name, p in phi.named_parameters():
            if name != "L":
                p.add_(scale * torch.randn_like(p))
    phi.project_()
    return phi


def test_potential_starts_at_the_bures_map_and_stays_convex():
    pair = make_gaussian_pair(3, random_state=1)
    X_p, X_q = pair.sample(800, random_state=2)
    A, m_p, m_q = bures_map(torch.as_tensor(X_p), torch.as_tensor(X_q))
    phi = ConvexPotential(A, m_p, m_q)
    x = torch.as_tensor(X_p[:100])
    np.testing.assert_allclose(phi.gradient(x).numpy(), ((x - m_p) @ A + m_q).numpy(), atol=0.02)
    phi = _random_potential(3)
    assert all((U >= 0).all() for U in phi.hidden) and (phi.out >= 0).all()
    x, y = torch.randn(500, 3, dtype=torch.float64), torch.randn(500, 3, dtype=torch.float64)
    monotone = ((phi.gradient(x) - phi.gradient(y)) * (x - y)).sum(1)
    assert monotone.min() > 0  # the gradient of a convex function is monotone


def test_conjugate_solves_the_inverse_map():
    phi = _random_potential(4, seed=1, scale=0.1)  # residual Hessian of the size a fit reaches
    y = phi.gradient(torch.randn(300, 4, dtype=torch.float64) * 2)
    assert (phi.gradient(torch.zeros_like(y)) - y).norm(dim=1).min() > 0.1  # the start is wrong
    x, residual = solve_conjugate(phi, y, torch.zeros_like(y), 100)
    assert residual.max() < 1e-6
    np.testing.assert_allclose(phi.gradient(x).numpy(), y.numpy(), atol=1e-6)


def test_fitted_potential_beats_the_plug_in_on_a_non_linear_map():
    pair = make_convex_map_pair(2, random_state=0)
    X_p, X_q = pair.sample(2000, random_state=1)
    X_t, _ = pair.sample(2000, random_state=2, n_samples_q=1)
    T = pair.ot_map(X_t)
    torch.manual_seed(0)
    phi, pulled, residual = fit_brenier(
        torch.as_tensor(X_p, dtype=torch.float32), torch.as_tensor(X_q, dtype=torch.float32),
        steps=400, generator=torch.Generator().manual_seed(0),
    )
    fitted = _rel_error(phi.gradient(torch.as_tensor(X_t, dtype=torch.float32)).double().numpy(), T, X_t)
    plug_in = _rel_error(_plug_in(X_p, X_q, X_t), T, X_t)
    assert fitted < 0.8 * plug_in
    # The pulled-back rows of Q are (to solver accuracy) pre-images under grad phi.
    solved = (residual < 1e-3).numpy()
    assert solved.mean() > 0.99
    np.testing.assert_allclose(phi.gradient(pulled).numpy()[solved], X_q[solved], atol=1e-3)


def test_pairs_keep_each_side_share_and_weights():
    X_p, X_q = make_gaussian_pair(2, random_state=0).sample(300, random_state=1, n_samples_q=200)
    x_p, x_q = torch.as_tensor(X_p, dtype=torch.float32), torch.as_tensor(X_q, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    sources, targets, w = brenier_pairs(x_p, x_q, steps=20, generator=gen)
    assert w is None and sources.shape == targets.shape == (500, 2)
    torch.testing.assert_close(sources[:300], x_p)  # P's rows are sources
    torch.testing.assert_close(targets[300:], x_q)  # Q's rows are targets
    w_p = torch.rand(300, generator=gen) + 0.5
    _, _, w = brenier_pairs(x_p, x_q, steps=20, generator=gen, weights=(w_p, None))
    torch.testing.assert_close(w[:300].sum(), torch.tensor(300.0))
    torch.testing.assert_close(w[:300] / w_p, w[:1].expand(300) / w_p[:1])  # relative weights kept
    torch.testing.assert_close(w[300:], torch.ones(200))


# ------------------------------------------------------------ the estimator
def test_brenier_init_reaches_the_gaussian_plug_in():
    pair = make_gaussian_pair(2, random_state=0)
    X_p, X_q = pair.sample(1000, random_state=1)
    X_t, _ = pair.sample(2000, random_state=2, n_samples_q=1)
    T = pair.ot_map(X_t)
    est = OTFlowTransformer(init="brenier", init_steps=300, random_state=0).fit(*stack(X_p, X_q))
    fitted = _rel_error(est.transform(X_t), T, X_t)
    plug_in = _rel_error(_plug_in(X_p, X_q, X_t), T, X_t)
    assert fitted < 1.2 * plug_in + 0.01
    np.testing.assert_allclose(est.inverse_transform(est.transform(X_t[:50])), X_t[:50], atol=1e-4)


@pytest.mark.parametrize("init", ["brenier", "block_ot"])
def test_global_pairings_on_tiny_unequal_weighted_samples(init):
    rng = np.random.default_rng(0)
    X_p, X_q = rng.normal(size=(7, 3)), rng.normal(1.0, 2.0, size=(4, 3))
    X, y = stack(X_p, X_q)
    w = rng.uniform(0.5, 2.0, size=len(X))
    est = OTFlowTransformer(init=init, init_steps=20, random_state=0).fit(X, y, sample_weight=w)
    out = est.transform(X_p)
    assert np.isfinite(out).all() and out.shape == X_p.shape
    np.testing.assert_allclose(est.inverse_transform(out), X_p, atol=1e-4)
