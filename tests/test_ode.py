"""skqflow._torch.ode: fixed-grid RK4 against closed forms, its order, kinetic energy,
backward integration, the partial steps of ``integrate_to`` and the adjoint path."""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from skqflow._torch.ode import integrate, integrate_to, uniform_grid

RNG = np.random.default_rng(0)
A = np.array([[-0.4, 1.3, 0.0], [-1.1, -0.2, 0.5], [0.3, -0.6, 0.1]])  # rotation-like, not symmetric
B = np.array([[0.2, -0.9, 0.4], [0.8, -0.3, 0.0], [-0.5, 0.1, -0.6]])
X0 = RNG.normal(size=(5, 3))


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def linear(M):
    """dx/dt = M x (autonomous); x(t) = expm(t M) x(0)."""
    Mt = _t(M)
    return lambda x, t: x @ Mt.T


def time_linear(M):
    """dx/dt = t M x; the matrices t M commute, so x(t) = expm((t^2 - s^2) / 2 M) x(s)."""
    Mt = _t(M)
    return lambda x, t: t * (x @ Mt.T)


def exact_time_linear(x, s, t):
    return x @ expm((t**2 - s**2) / 2 * B).T


class MLPField(torch.nn.Module):
    """A small nonlinear time-dependent field f(x, t) with parameters (for the adjoint)."""

    def __init__(self, d=3, width=16, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.nn.Parameter(0.7 * torch.randn(d + 1, width, generator=g, dtype=torch.float64))
        self.b1 = torch.nn.Parameter(0.1 * torch.randn(width, generator=g, dtype=torch.float64))
        self.w2 = torch.nn.Parameter(0.5 * torch.randn(width, d, generator=g, dtype=torch.float64))

    def forward(self, x, t):
        tt = t.expand(x.shape[0], 1) if torch.is_tensor(t) else x.new_full((x.shape[0], 1), t)
        return torch.tanh(torch.cat([x, tt], 1) @ self.w1 + self.b1) @ self.w2


# --------------------------------------------------------------------------- uniform_grid


def test_uniform_grid():
    like = torch.zeros(2, dtype=torch.float64)
    g = uniform_grid(0.25, 1.0, 3, like=like)
    assert g.dtype == torch.float64 and g.shape == (4,)
    np.testing.assert_allclose(g.numpy(), [0.25, 0.5, 0.75, 1.0], rtol=0, atol=1e-15)
    back = uniform_grid(1.0, 0.0, 4, like=like.float())
    assert back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-7)


# --------------------------------------------------------------------------- closed forms


def test_linear_autonomous_matches_expm_at_every_grid_time():
    grid = uniform_grid(0.0, 1.0, 4, like=_t(X0))
    states = integrate(linear(A), _t(X0), grid, n_substeps=32)
    assert states.shape == (5, *X0.shape)
    np.testing.assert_array_equal(states[0].numpy(), X0)
    for k, t in enumerate(grid.numpy()):
        np.testing.assert_allclose(states[k].numpy(), X0 @ expm(t * A).T, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("s", "t"), [(0.0, 1.0), (0.3, 1.2), (1.0, 0.0), (0.9, 0.2)])
def test_time_dependent_linear_matches_closed_form(s, t):
    """Forward and backward, from a start other than 0: the field sees the right times."""
    grid = uniform_grid(s, t, 3, like=_t(X0))
    states = integrate(time_linear(B), _t(X0), grid, n_substeps=16)
    for k, tk in enumerate(grid.numpy()):
        np.testing.assert_allclose(states[k].numpy(), exact_time_linear(X0, s, tk), rtol=0, atol=1e-9)


def _end_error(n_steps):
    grid = uniform_grid(0.0, 1.5, n_steps, like=_t(X0))
    end = integrate(time_linear(B), _t(X0), grid)[-1].numpy()
    return np.abs(end - exact_time_linear(X0, 0.0, 1.5)).max()


def test_rk4_is_fourth_order():
    """Halving the step divides the global error by 2^4 = 16."""
    errors = np.array([_end_error(n) for n in (8, 16, 32, 64)])
    assert errors[-1] > 1e-11  # still far from round-off
    orders = np.log2(errors[:-1] / errors[1:])
    np.testing.assert_allclose(orders, 4.0, atol=0.25)


def test_substeps_are_finer_steps():
    """n_substeps=m on a grid equals one step on the m-times finer grid."""
    x = _t(X0)
    coarse = integrate(time_linear(B), x, uniform_grid(0.0, 1.0, 2, like=x), n_substeps=4)
    fine = integrate(time_linear(B), x, uniform_grid(0.0, 1.0, 8, like=x))
    np.testing.assert_allclose(coarse.numpy(), fine[::4].numpy(), rtol=0, atol=1e-13)


def _symmetric_kinetic_truth(S, x0, t0, t1):
    """int_{t0}^{t1} ||S expm(t S) x0||^2 dt for symmetric S = V diag(lam) V^T, per row."""
    lam, V = np.linalg.eigh(S)
    c2 = (x0 @ V) ** 2
    per_mode = lam**2 * (np.exp(2 * lam * t1) - np.exp(2 * lam * t0)) / (2 * lam)
    return c2 @ per_mode


def test_kinetic_energy_matches_closed_form_both_directions():
    S = np.array([[-0.8, 0.3, 0.1], [0.3, 0.5, -0.2], [0.1, -0.2, 0.2]])
    x = _t(X0)
    grid = uniform_grid(0.0, 1.0, 4, like=x)
    states, energy = integrate(linear(S), x, grid, n_substeps=8, kinetic=True)
    truth = _symmetric_kinetic_truth(S, X0, 0.0, 1.0)
    assert energy.shape == (len(X0),)
    np.testing.assert_allclose(energy.numpy(), truth, rtol=1e-7)
    # the same path run backwards has the same (positive) kinetic energy
    back, energy_b = integrate(linear(S), states[-1], grid.flip(0), n_substeps=8, kinetic=True)
    np.testing.assert_allclose(energy_b.numpy(), truth, rtol=1e-7)
    # kinetic=False returns the states alone, the same ones
    np.testing.assert_array_equal(integrate(linear(S), x, grid, n_substeps=8).numpy(), states.numpy())


def test_last_only_returns_the_final_state():
    import inspect

    if "last_only" not in inspect.signature(integrate).parameters:
        pytest.skip("integrate has no last_only")
    x, f = _t(X0), MLPField(seed=7)
    grid = uniform_grid(0.0, 1.0, 4, like=x)
    with torch.no_grad():
        states, energy = integrate(f, x, grid, n_substeps=2, kinetic=True)
        last, energy_last = integrate(f, x, grid, n_substeps=2, kinetic=True, last_only=True)
        alone = integrate(f, x, grid, n_substeps=2, last_only=True)
    assert last.shape == X0.shape
    np.testing.assert_array_equal(last.numpy(), states[-1].numpy())
    np.testing.assert_array_equal(alone.numpy(), states[-1].numpy())
    np.testing.assert_array_equal(energy_last.numpy(), energy.numpy())


def test_backward_integration_inverts_forward():
    f = MLPField(seed=1)
    x = _t(X0)
    grid = uniform_grid(0.0, 1.0, 4, like=x)
    with torch.no_grad():
        fwd = integrate(f, x, grid, n_substeps=8)
        back = integrate(f, fwd[-1], grid.flip(0), n_substeps=8)
    assert np.abs(fwd[-1].numpy() - X0).max() > 0.1  # the field does move the points
    # not exact: RK4 backwards is not the inverse of RK4 forwards, only to O(h^4)
    np.testing.assert_allclose(back.numpy(), fwd.flip(0).numpy(), rtol=0, atol=2e-7)


# --------------------------------------------------------------------------- integrate_to


def _direct(f, x, start, target, n_steps_unit):
    """Full steps of 1/n on the grid start + k/n up to the target, then one partial step."""
    step = 1.0 / n_steps_unit
    sign = 1.0 if target >= start else -1.0
    n_full = int(np.floor(abs(target - start) / step + 1e-9))
    times = [start + sign * k * step for k in range(n_full + 1)]
    if abs(target - times[-1]) > 1e-12:
        times.append(target)
    return integrate(f, x, _t(times))[-1]


@pytest.mark.parametrize(
    ("start", "targets"),
    [(0.0, [0.37, 0.1, 0.9, 0.5, 1.0]), (1.0, [0.0, 0.63, 0.95]), (0.3, [0.31, 0.8]), (0.7, [0.05])],
)
def test_integrate_to_partial_steps_equal_direct_integration(start, targets):
    f, x, n = MLPField(seed=2), _t(X0), 4
    with torch.no_grad():
        out = integrate_to(f, x, start, _t(targets), n)
        assert out.shape == (len(targets), *X0.shape)
        for i, target in enumerate(targets):
            expected = _direct(f, x, start, target, n)
            np.testing.assert_allclose(out[i].numpy(), expected.numpy(), rtol=0, atol=1e-13)
            # the same state when this target is asked for alone
            alone = integrate_to(f, x, start, _t([target]), n)[0]
            np.testing.assert_array_equal(alone.numpy(), out[i].numpy())


def test_integrate_to_does_not_depend_on_the_other_targets():
    f, x = MLPField(seed=3), _t(X0)
    with torch.no_grad():
        a = integrate_to(f, x, 0.0, _t([0.45]), 8)[0]
        b = integrate_to(f, x, 0.0, _t([0.9, 0.45, 0.2, 0.44]), 8)
    np.testing.assert_array_equal(b[1].numpy(), a.numpy())
    assert not np.allclose(b[3].numpy(), a.numpy())  # and each target gets its own state


def test_integrate_to_grid_target_reproduces_uniform_integration():
    f, x = MLPField(seed=4), _t(X0)
    with torch.no_grad():
        got = integrate_to(f, x, 0.0, _t([0.5, 1.0]), 8)
        plain = integrate(f, x, uniform_grid(0.0, 1.0, 8, like=x))
        back = integrate_to(f, plain[-1], 1.0, _t([0.0]), 8)[0]
        plain_back = integrate(f, plain[-1], uniform_grid(1.0, 0.0, 8, like=x))[-1]
    np.testing.assert_allclose(got[0].numpy(), plain[4].numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(got[1].numpy(), plain[8].numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(back.numpy(), plain_back.numpy(), rtol=0, atol=1e-14)


def test_integrate_to_target_at_start_is_the_input():
    f, x = MLPField(seed=5), _t(X0)
    with torch.no_grad():
        out = integrate_to(f, x, 0.4, _t([0.4, 0.9]), 4)
    np.testing.assert_array_equal(out[0].numpy(), X0)


def test_integrate_to_matches_closed_form_between_grid_points():
    x = _t(X0)
    targets = [0.05, 0.33, 0.71, 1.0]
    out = integrate_to(time_linear(B), x, 0.0, _t(targets), 32)
    for i, t in enumerate(targets):
        np.testing.assert_allclose(out[i].numpy(), exact_time_linear(X0, 0.0, t), rtol=0, atol=1e-8)
    back = integrate_to(time_linear(B), x, 1.0, _t([0.52, 0.0]), 32)
    np.testing.assert_allclose(back[0].numpy(), exact_time_linear(X0, 1.0, 0.52), rtol=0, atol=1e-8)
    np.testing.assert_allclose(back[1].numpy(), exact_time_linear(X0, 1.0, 0.0), rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- adjoint


@pytest.mark.parametrize("backward", [False, True])
def test_adjoint_matches_backprop(backward):
    pytest.importorskip("torchdiffeq")
    grid = uniform_grid(0.0, 1.0, 4, like=_t(X0))
    if backward:
        grid = grid.flip(0)
    results = []
    for adjoint in (False, True):
        f = MLPField(seed=6)
        x = _t(X0).requires_grad_(True)
        states, energy = integrate(f, x, grid, n_substeps=16, kinetic=True, adjoint=adjoint)
        loss = states[-1].pow(2).sum() + states[2].sin().sum() + 0.5 * energy.sum()
        loss.backward()
        results.append(
            (states.detach().numpy(), energy.detach().numpy(), x.grad.numpy(),
             [p.grad.numpy() for p in f.parameters()])
        )
    (s0, e0, gx0, gp0), (s1, e1, gx1, gp1) = results
    assert s1.shape == s0.shape and e1.shape == e0.shape
    # torchdiffeq's "rk4" is the 3/8-rule variant: same order, slightly different numbers
    np.testing.assert_allclose(s1, s0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(e1, e0, rtol=1e-6)
    np.testing.assert_allclose(gx1, gx0, rtol=0, atol=1e-6 * np.abs(gx0).max())
    for a, b in zip(gp1, gp0):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())
