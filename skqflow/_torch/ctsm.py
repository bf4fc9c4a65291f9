"""Time-score matching on a noisy bridge between P and Q (``method="ctsm"``).

Between independent rows ``x0`` of P and ``x1`` of Q the bridge
``x_t = (1 - t) x0 + t x1 + s_t eps`` (``s_t = sigma sqrt(t (1 - t))``,
``eps`` standard normal) has, given its ends, a Gaussian law whose time score
``d/dt log p_t(x | x0, x1)`` is known in closed form, one term per coordinate:
``(s_t' / s_t) (eps_j² - 1) + eps_j (x1_j - x0_j) / s_t``. Regressing a net on
these terms (each output on its own coordinate's term, the vectorised form of
conditional time-score matching, Yu et al. 2025) makes the sum of its outputs
estimate the time score ``d/dt log p_t(x)`` of the marginal path, whose
integral over ``t`` in [0, 1] is ``log q(x) - log p(x)``. Unlike a classifier
between P and Q, or between neighbouring snapshots of a flow, the noisy
bridge puts mass at every point for every ``0 < t < 1``, so the net is
trained wherever it is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .ratio import held_out_terms, select_epoch
from .train import Phase, cosine_schedule, run_with_selection

__all__ = ["bridge_time_score", "fit_bridge_time_score"]

#: Times are drawn in [T_EPS, 1 - T_EPS], where the bridge's noise is not zero.
T_EPS = 1e-3


def bridge_time_score(
    x0: Tensor, x1: Tensor, sigma: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One draw of the bridge for each pair: ``(x_t, t, target, weight)``.

    ``target`` (n, d) holds each coordinate's term of the conditional time
    score; ``weight`` (n,) is ``t (1 - t)``, which evens out the terms'
    variance (it grows like ``1 / t`` and ``1 / (1 - t)`` at the ends).
    """
    n, d = x0.shape
    t = (T_EPS + (1 - 2 * T_EPS) * torch.rand(n, 1, generator=generator)).to(x0)
    eps = torch.randn(n, d, generator=generator).to(x0)
    s = sigma * torch.sqrt(t * (1 - t))
    ds = sigma * (1 - 2 * t) / (2 * torch.sqrt(t * (1 - t)))
    x_t = (1 - t) * x0 + t * x1 + s * eps
    target = (ds / s) * (eps**2 - 1) + eps * (x1 - x0) / s
    return x_t, t.squeeze(1), target, (t * (1 - t)).squeeze(1)


def fit_bridge_time_score(
    net: nn.Module,
    x_p: Tensor,
    x_q: Tensor,
    times: Tensor,
    *,
    n_epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    learning_rate_init: float,
    sigma: float,
    generator: torch.Generator,
    quadrature: str = "gauss",
    weight_decay: float = 0.0,
    validation: Sequence[Tensor] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train ``net`` (a :class:`~.ratio.TimeScoreNet` with ``d`` components) by time-score matching.

    ``n_epochs`` epochs of ``steps_per_epoch`` Adam steps, each on
    ``batch_size`` independent pairs of rows of P and Q and one bridge draw
    per pair; the learning rate decays on a cosine schedule. With
    ``validation = (p_rows, q_rows)`` the epoch kept is chosen as for the
    other ratio nets: by the held-out logistic loss of ``int_0^1 r`` (on the
    grid ``times``) as a classifier of Q against P (:func:`~.ratio.select_epoch`).

    Returns
    -------
    history : list of dict, one per epoch (see :func:`~.train.run_with_selection`).
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate_init, weight_decay=weight_decay)

    def batches():
        for _ in range(steps_per_epoch):
            i0 = torch.randint(len(x_p), (batch_size,), generator=generator).to(x_p.device)
            i1 = torch.randint(len(x_q), (batch_size,), generator=generator).to(x_q.device)
            yield bridge_time_score(x_p[i0], x_q[i1], sigma, generator)

    def loss(batch):
        x_t, t, target, weight = batch
        pred = net.components(x_t, t).reshape(len(x_t), -1)  # (n, d), also when d = 1
        return (weight * (pred - target).pow(2).sum(1)).mean()

    phase = Phase(
        modules=[net], optimizer=optimizer, batches=batches, loss=loss,
        scheduler=cosine_schedule(optimizer, n_epochs * steps_per_epoch), max_grad_norm=10.0,
    )
    held_out = None if validation is None else (lambda: list(held_out_terms(net, times, *validation, quadrature)))
    return run_with_selection(net, phase, n_epochs, held_out=held_out, select=select_epoch, on_epoch=on_epoch)
