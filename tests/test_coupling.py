"""skqflow._torch.coupling: the pairings of a source batch with a target batch."""

import itertools

import numpy as np
import pytest
import torch

from skqflow._torch.coupling import COUPLINGS, exact_assignment, independent


def _batches(n, d=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=g, dtype=dtype)
    x1 = 1.5 * torch.randn(n, d, generator=g, dtype=dtype) + torch.tensor([2.0] + [0.0] * (d - 1), dtype=dtype)
    return x0, x1


def _cost(x0, x1):
    return float((x0.double() - x1.double()).pow(2).sum())


def _as_permutation(out, x1):
    """The indices ``perm`` with ``out == x1[perm]``, checked to be a permutation."""
    d = torch.cdist(out.double(), x1.double())
    perm = d.argmin(1).numpy()
    np.testing.assert_array_equal(out.numpy(), x1[perm].numpy())
    np.testing.assert_array_equal(np.sort(perm), np.arange(len(x1)))
    return perm


def test_couplings_registry():
    assert COUPLINGS == {"linear": independent, "minibatch_ot": exact_assignment}


def test_independent_keeps_the_order():
    x0, x1 = _batches(20)
    assert independent(x0, x1) is x1


@pytest.mark.parametrize(("n", "d", "seed"), [(16, 2, 0), (64, 3, 1), (128, 5, 2)])
def test_exact_assignment_is_a_permutation_that_beats_random_pairings(n, d, seed):
    x0, x1 = _batches(n, d, seed)
    out = exact_assignment(x0, x1)
    assert out.shape == x1.shape and out.dtype == x1.dtype and out.device == x1.device
    perm = _as_permutation(out, x1)
    assert not np.array_equal(perm, np.arange(n))  # it does reorder
    best = _cost(x0, out)
    rng = np.random.default_rng(seed)
    random_costs = [_cost(x0, x1[rng.permutation(n)]) for _ in range(200)]
    assert best <= min(random_costs) + 1e-6
    assert best < _cost(x0, x1)
    # no single swap of two pairs lowers the cost (cyclical monotonicity, 2-cycles)
    y = out.double().numpy()
    x = x0.double().numpy()
    pair = ((x - y) ** 2).sum(1)
    swapped = ((x[:, None] - y[None]) ** 2).sum(-1)  # swapped[i, j] = |x_i - y_j|^2
    saving = pair[:, None] + pair[None] - swapped - swapped.T  # what swapping pairs i and j saves
    assert saving.max() < 1e-4


def test_exact_assignment_equals_brute_force_optimum():
    x0, x1 = _batches(7, 2, seed=3, dtype=torch.float64)
    best = min(_cost(x0, x1[list(p)]) for p in itertools.permutations(range(7)))
    assert _cost(x0, exact_assignment(x0, x1)) == pytest.approx(best, rel=1e-12)


def test_exact_assignment_equals_pot_emd():
    ot = pytest.importorskip("ot")
    x0, x1 = _batches(40, 3, seed=4, dtype=torch.float64)
    M = ot.dist(x0.numpy(), x1.numpy())  # squared Euclidean
    w = np.full(40, 1 / 40)
    optimum = 40 * ot.emd2(w, w, M)
    assert _cost(x0, exact_assignment(x0, x1)) == pytest.approx(optimum, rel=1e-10)


def test_exact_assignment_recovers_a_shuffled_translation():
    """For x1 a shuffled small translate of x0 the optimal pairing undoes the shuffle."""
    x0, _ = _batches(50, 2, seed=5, dtype=torch.float64)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    x1 = (x0 + 1e-3)[perm]
    np.testing.assert_allclose(exact_assignment(x0, x1).numpy(), x0.numpy() + 1e-3, rtol=0, atol=1e-12)

