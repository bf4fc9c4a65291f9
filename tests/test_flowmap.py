"""FlowMap, the one object through which a fitted field is integrated, and prediction memory."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skqflow._torch.flowmap import FlowMap
from skqflow._torch.ode import integrate, uniform_grid


class Linear(torch.nn.Module):
    """dx/dt = A x + b t: smooth, with a closed-form kinetic energy for constant fields."""

    def __init__(self, A, b):
        super().__init__()
        self.A = torch.nn.Parameter(torch.as_tensor(A, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.as_tensor(b, dtype=torch.float64))

    def forward(self, x, t):
        return x @ self.A.T + self.b * torch.as_tensor(t, dtype=x.dtype)


@pytest.fixture
def fmap():
    return FlowMap(Linear([[0.1, -0.4], [0.3, 0.2]], [0.5, -1.0]), n_steps=16, chunk=7)


@pytest.fixture
def z():
    return torch.as_tensor(np.random.default_rng(0).normal(size=(30, 2)))


def test_push_equals_a_plain_integration_whatever_the_chunk(fmap, z):
    expected = integrate(fmap.field, z, uniform_grid(0.0, 1.0, 16, like=z))[-1]
    assert torch.equal(fmap.push(z), FlowMap(fmap.field, 16, chunk=1000).push(z))
    torch.testing.assert_close(fmap.push(z), expected, rtol=0, atol=1e-12)
    assert not fmap.push(z).requires_grad  # prediction never builds a graph


def test_states_match_push_and_grid_states(fmap, z):
    states = fmap.states(z, [0.0, 0.25, 0.5, 1.0])
    assert torch.equal(states[0], z)
    torch.testing.assert_close(states[-1], fmap.push(z), rtol=0, atol=1e-12)
    torch.testing.assert_close(states[2], fmap.push(z, 0.0, 0.5), rtol=0, atol=1e-12)
    grid = fmap.grid_states(z, 5)  # 4 intervals of 4 steps: the same RK4 grid
    torch.testing.assert_close(grid[[0, 1, 2, 4]], states, rtol=0, atol=1e-12)


def test_states_on_both_sides_of_the_start(fmap, z):
    mid = fmap.push(z, 0.0, 0.5)
    both = fmap.states(mid, [0.0, 1.0], start=0.5)
    torch.testing.assert_close(both[0], z, rtol=0, atol=1e-8)  # back to 0 (RK4 inverse error)
    torch.testing.assert_close(both[1], fmap.push(z), rtol=0, atol=1e-8)


def test_backward_grid_states_start_from_q(fmap, z):
    back = fmap.grid_states(z, 3, backward=True)
    assert torch.equal(back[-1], z)
    torch.testing.assert_close(back[0], fmap.push(z, 1.0, 0.0), rtol=0, atol=1e-12)


def test_kinetic_energy_of_a_constant_field(z):
    v = torch.tensor([0.3, -1.2], dtype=torch.float64)
    const = FlowMap(Linear([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]), 4)
    const.field.forward = lambda x, t: v.expand_as(x)
    end, energy = const.transport(z)
    torch.testing.assert_close(end, z + v)
    torch.testing.assert_close(energy, torch.full((len(z),), float(v @ v), dtype=torch.float64))
    torch.testing.assert_close(const.kinetic(z), energy)


def test_round_trip_error_is_small_and_nonnegative(fmap, z):
    err = fmap.round_trip_error(z)
    assert err.shape == (len(z),)
    assert bool((err >= 0).all()) and float(err.max()) < 1e-12


def test_last_only_keeps_no_trajectory(fmap, z):
    """The final state owns only its own memory (a view into a stack of states would keep
    every step alive: the cause of transform's memory growing with the solver steps)."""
    grid = uniform_grid(0.0, 1.0, 16, like=z)
    last = integrate(fmap.field, z, grid, last_only=True)
    assert last.untyped_storage().nbytes() == last.numel() * last.element_size()
    stacked = integrate(fmap.field, z, grid)[-1]
    assert stacked.untyped_storage().nbytes() == 17 * stacked.numel() * stacked.element_size()
    assert torch.equal(last, stacked)


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, numpy as np, torch
    torch.set_num_threads(1)
    from skqflow import OTFlowTransformer, stack
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1)
    flow = OTFlowTransformer(hidden_layer_sizes=(8,), n_time_steps=16, n_substeps=2, init_steps=4,
                             max_iter=0, random_state=0).fit(X, y)
    big = rng.normal(size=(1_000_000, 2))
    flow.transform(big[:10])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = flow.transform(big)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / out.nbytes)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_transform_memory_does_not_grow_with_the_solver_steps():
    """1,000,000 rows (d=2, 32 RK4 steps): extra peak memory within a few times the output
    (it was about 35 times, 530 MB, when each chunk kept its whole trajectory)."""
    ratio = float(subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()[-1])
    assert ratio < 4.0, ratio
