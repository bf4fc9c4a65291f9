"""The ratio net's training loop: fixed and freshly drawn snapshots."""

import math

import pytest
import torch

from skqflow._torch.ratio import TimeScoreNet, fit_time_score, log_ratio


def _shifted_chain(n, shifts, generator):
    """Snapshots N(s, 1) in 1-D for each shift s; log p_L/p_0 is linear in x."""
    return [s + torch.randn(n, 1, generator=generator, dtype=torch.float64) for s in shifts]


def test_fresh_snapshots_are_drawn_once_per_epoch_and_learn_the_ratio():
    gen = torch.Generator().manual_seed(0)
    shifts = (0.0, 0.5, 1.0)
    calls = []

    def draw():
        calls.append(1)
        return _shifted_chain(2000, shifts, gen)

    net = TimeScoreNet(1, (32, 32), "softplus").double()
    times = torch.linspace(0.0, 1.0, len(shifts), dtype=torch.float64)
    history = fit_time_score(net, draw, times, n_epochs=15, batch_size=256, learning_rate_init=3e-3, generator=gen)
    assert len(calls) == len(history) == 15
    # log N(x; 1, 1) - log N(x; 0, 1) = x - 1/2
    x = torch.linspace(-1.0, 2.0, 7, dtype=torch.float64).reshape(-1, 1)
    est = log_ratio(net, x, times)
    assert torch.allclose(est, x[:, 0] - 0.5, atol=0.15), est - (x[:, 0] - 0.5)


def test_snapshot_sizes_must_not_change_between_epochs():
    gen = torch.Generator().manual_seed(0)
    sizes = iter([100, 100, 90])

    def draw():
        return _shifted_chain(next(sizes), (0.0, 1.0), gen)

    net = TimeScoreNet(1, (8,), "softplus").double()
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="sizes changed"):
        fit_time_score(net, draw, times, n_epochs=3, batch_size=50, learning_rate_init=1e-3, generator=gen)
    assert math.isfinite(sum(p.sum().item() for p in net.parameters()))
