"""Torch losses against closed forms."""

import math

import pytest
import torch

from skqflow._torch.losses import energy_distance, kl_lower_bound, logistic_loss


def _gaussian_pair(mu, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    pushed = torch.randn(n, 1, generator=g, dtype=torch.float64)
    real = mu + torch.randn(n, 1, generator=g, dtype=torch.float64)
    # exact classifier logit log(real / pushed) for N(0, 1) against N(mu, 1)
    logit = lambda x: (mu * x - 0.5 * mu**2).reshape(-1)  # noqa: E731
    return pushed, real, logit


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_kl_lower_bound_exact_classifier_gives_kl(mu):
    pushed, real, logit = _gaussian_pair(mu, 200_000)
    bound = float(kl_lower_bound(logit(pushed), logit(real)))
    assert bound == pytest.approx(0.5 * mu**2, rel=0.05)


def test_kl_lower_bound_never_negative_and_bounds_kl():
    pushed, real, logit = _gaussian_pair(1.0, 50_000)
    # a classifier that "memorised" its rows: large logits on pushed rows
    # make the plain estimate -mean(logit(pushed)) negative
    bad = lambda x: logit(x) + 3.0  # noqa: E731
    assert float(-bad(pushed).mean()) < 0
    assert float(kl_lower_bound(bad(pushed), bad(real))) == pytest.approx(0.5, rel=0.05)
    # a worse-than-useless classifier gives at most the true KL, never below 0
    wrong = lambda x: -5.0 * logit(x)  # noqa: E731
    value = float(kl_lower_bound(wrong(pushed), wrong(real)))
    assert 0.0 <= value <= 0.5 * 1.05


def test_logistic_loss_minimised_by_log_ratio():
    pushed, real, logit = _gaussian_pair(1.0, 100_000)
    best = float(logistic_loss(logit(pushed), logit(real)))
    for scale in (0.5, 1.5):
        other = float(logistic_loss(scale * logit(pushed), scale * logit(real)))
        assert other > best
    assert best < 2 * math.log(2)


def test_energy_distance_zero_for_same_law_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2000, 3, generator=g), torch.randn(2000, 3, generator=g)
    same = float(energy_distance(a, b))
    shifted = float(energy_distance(a, b + 1.0))
    assert abs(same) < 0.02
    # for a shift of the mean, the energy distance grows with the shift
    assert shifted > 0.3 and shifted > float(energy_distance(a, b + 0.5))


# ------------------------------------------------------- epoch selection
from skqflow._torch.ratio import select_epoch  # noqa: E402


def _epochs(levels, n=4000, jitter=0.1, seed=0):
    """Per-row loss terms whose mean is exactly ``level``: row noise shared by
    all epochs plus centred per-epoch noise (paired standard error of a
    difference about ``jitter * sqrt(2 / n)``, 2.2e-3 by default)."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(n, generator=g, dtype=torch.float64)
    rows -= rows.mean()
    out = []
    for level in levels:
        e = torch.randn(n, generator=g, dtype=torch.float64)
        out.append([rows + level + jitter * (e - e.mean())])
    return out


def test_select_epoch_keeps_last_epoch_of_a_flat_loss():
    # differences (at most 2e-3) within one paired standard error: the last epoch wins
    assert select_epoch(_epochs([1.0, 0.999, 1.0005, 0.9995, 1.001])) == 4


def test_select_epoch_stops_before_memorisation():
    # the loss falls, then climbs by far more than its paired standard error
    levels = [1.0, 0.8, 0.7, 0.75, 0.9, 1.2]
    assert select_epoch(_epochs(levels)) == 2


def test_select_epoch_never_picks_a_non_finite_loss():
    epochs = _epochs([1.0, 0.9, 0.95])
    epochs[2] = [torch.full((4000,), float("nan"), dtype=torch.float64)]
    assert select_epoch(epochs) == 1


def test_monge_gap_is_zero_for_optimal_maps_and_positive_otherwise():
    from skqflow._torch.losses import monge_gap

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)  # SPD: the gradient of a convex map
    assert float(monge_gap(x, x @ A + torch.tensor([3.0, -1.0], dtype=torch.float64))) == pytest.approx(0, abs=1e-9)
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)  # a rotation by 90 degrees: not monotone
    gap = float(monge_gap(x, x @ R.T))
    assert gap > 0.5  # its own pairing costs 2 E|x|^2 = 4; the best assignment far less
    # the gap is the own cost minus the optimal assignment cost (brute force on 6 rows)
    import itertools

    small, image = x[:6], (x[:6] @ R.T)
    cost = torch.cdist(small, image).pow(2)
    best = min(float(cost[range(6), list(p)].mean()) for p in itertools.permutations(range(6)))
    assert float(monge_gap(small, image)) == pytest.approx(float(cost.diagonal().mean()) - best, abs=1e-12)
