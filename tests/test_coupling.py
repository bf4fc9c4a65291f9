"""skqflow._torch.coupling: the pairings of a source batch with a target batch."""

import itertools

import numpy as np
import pytest
import torch

from skqflow._torch.coupling import COUPLINGS, decomposed_assignment, exact_assignment, independent


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
    assert COUPLINGS == {"linear": independent, "minibatch_ot": decomposed_assignment}
    from skqflow._torch.coupling import GLOBAL_PAIRINGS, INITS

    assert set(INITS) == {*COUPLINGS, *GLOBAL_PAIRINGS} == {"linear", "minibatch_ot", "block_ot", "brenier"}


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



# ------------------------------------------------------- pairs fixed once
def test_block_assignment_pairs_every_row_once_optimally_in_each_block():
    from skqflow._torch.coupling import GLOBAL_PAIRINGS, block_assignment

    assert GLOBAL_PAIRINGS["block_ot"] is block_assignment
    x0, x1 = _batches(100, seed=3)
    sources, targets, w = block_assignment(x0, x1, batch_size=32, generator=torch.Generator().manual_seed(0))
    assert w is None
    _as_permutation(sources, x0)  # each row of P once (equal sizes)
    _as_permutation(targets, x1)  # each row of Q once
    for a in range(0, 100, 32):  # blocks of 32 (the last one shorter)
        s, t = sources[a:a + 32].double(), targets[a:a + 32].double()
        pair_cost = (s - t).pow(2).sum(1)
        swapped = torch.cdist(s, t).pow(2)
        # 2-cyclical monotonicity: no swap of two partners lowers the cost (exact OT in the block)
        gain = pair_cost[:, None] + pair_cost[None, :] - swapped - swapped.T
        assert gain.max() < 1e-9
    # the blocks are random: the pairing is not the exact assignment of the whole sample
    whole = exact_assignment(x0, x1)
    assert _cost(x0, whole) < _cost(sources, targets)


def test_block_assignment_cycles_the_smaller_sample_and_follows_weights():
    from skqflow._torch.coupling import block_assignment

    x0, x1 = _batches(60, seed=4)
    gen = torch.Generator().manual_seed(1)
    sources, targets, _ = block_assignment(x0, x1[:25], batch_size=16, generator=gen)
    assert len(sources) == len(targets) == 60
    _as_permutation(sources, x0)
    counts = torch.cdist(targets.double(), x1[:25].double()).argmin(1).bincount(minlength=25)
    assert counts.min() >= 2 and counts.max() <= 3  # 60 draws of 25 rows, cycled
    w = torch.zeros(60)
    w[:10] = 1.0  # only the first ten rows of P count
    sources, _, _ = block_assignment(x0, x1, batch_size=16, generator=gen, weights=(w, None))
    assert torch.cdist(sources.double(), x0.double()).argmin(1).max() < 10


def _optimal_cost(x0, x1):
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(x0.double().numpy(), x1.double().numpy(), "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def test_decomposed_assignment_is_exact_up_to_exact_rows():
    x0, x1 = _batches(200, d=3, seed=4)
    assert torch.equal(decomposed_assignment(x0, x1, exact_rows=256), exact_assignment(x0, x1))


@pytest.mark.parametrize(("n", "d"), [(1024, 2), (2048, 8)])
def test_decomposed_assignment_is_a_permutation_near_the_optimal_cost(n, d):
    """Truth: the exact assignment of the whole batch. Random blocks of 128 rows are far above it."""
    x0, x1 = _batches(n, d=d, seed=5)
    perm = _as_permutation(decomposed_assignment(x0, x1, block=128), x1)
    best = _optimal_cost(x0, x1)
    blocks = sum(_cost(a, exact_assignment(a, b)) for a, b in zip(x0.split(128), x1.split(128)))
    assert blocks > 1.04 * best  # what the sweeps start from
    # the sweeps remove over 90% of the excess over the optimum
    assert _cost(x0, x1[perm]) - best < 0.1 * (blocks - best)


def test_decomposed_assignment_sweeps_lower_the_cost_until_it_stops_falling():
    x0, x1 = _batches(1024, d=8, seed=6)
    costs = [_cost(x0, decomposed_assignment(x0, x1, block=128, sweeps=k, tol=0.0)) for k in range(4)]
    assert costs[0] > costs[1] > costs[2] > costs[3]
    # With a tolerance it stops early: never more sweeps than without one, never a higher cost than none.
    early = _cost(x0, decomposed_assignment(x0, x1, block=128, sweeps=8, tol=0.05))
    assert costs[0] > early >= _cost(x0, decomposed_assignment(x0, x1, block=128, sweeps=8, tol=0.0))


def test_decomposed_assignment_recovers_a_shuffled_translation():
    """The optimal pairing of rows with a shuffled small translation of themselves is the translation."""
    x0, _ = _batches(1024, d=2, seed=7)
    x0 = x0.double()
    perm = torch.randperm(1024, generator=torch.Generator().manual_seed(0))
    x1 = (x0 + 1e-3)[perm]
    out = decomposed_assignment(x0, x1, block=128, sweeps=30, tol=0.0)
    np.testing.assert_allclose(out.numpy(), x0.numpy() + 1e-3, rtol=0, atol=1e-12)


def test_decomposed_assignment_is_a_function_of_the_rows():
    x0, x1 = _batches(600, d=4, seed=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        a = decomposed_assignment(x0, x1, block=128)
        torch.manual_seed(1)
        assert torch.equal(a, decomposed_assignment(x0, x1, block=128))


def test_decomposed_assignment_rejects_unequal_batches():
    x0, x1 = _batches(300)
    with pytest.raises(ValueError, match="300 and 299 rows"):
        decomposed_assignment(x0, x1[:-1])
