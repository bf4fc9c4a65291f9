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

The ends of each bridge need not be independent: any coupling of P and Q
gives a path from P to Q. With ``pairing="minibatch_ot"`` (the default of
the estimator) the rows are paired anew every epoch by exact optimal
assignments inside random blocks of ``block_size`` rows of each sample
(:func:`~.coupling.block_assignment`). The pairs are then close, the term
``eps (x1 - x0) / s`` of the target shrinks, and a small noise that keeps
the densities' structure no longer makes the regression noisy (on the 2-D
mixtures of the benchmark the log-ratio error falls by a quarter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from .coupling import block_assignment
from .ratio import held_out_terms, select_epoch
from .train import ParameterAverage, Phase, cosine_schedule, run_with_selection

__all__ = ["BRIDGE_PAIRINGS", "bridge_time_score", "fit_bridge_time_score"]

#: Times are drawn in [T_EPS, 1 - T_EPS], where the bridge's noise is not zero.
T_EPS = 1e-3

#: The weights scored and kept are a running average of the iterates whose
#: horizon (:class:`~.train.ParameterAverage`) is this share of all steps.
AVERAGE_SHARE = 0.1


class IndependentPairs:
    """Batches of independent rows of P and of Q."""

    def __init__(self, x_p: Tensor, x_q: Tensor, generator: torch.Generator, **_: object) -> None:
        self.x_p, self.x_q, self.generator = x_p, x_q, generator

    def batches(self, batch_size: int, steps: int) -> Iterator[tuple[Tensor, Tensor]]:
        """``steps`` batches of ``batch_size`` pairs."""
        for _ in range(steps):
            i0 = torch.randint(len(self.x_p), (batch_size,), generator=self.generator).to(self.x_p.device)
            i1 = torch.randint(len(self.x_q), (batch_size,), generator=self.generator).to(self.x_q.device)
            yield self.x_p[i0], self.x_q[i1]


class AssignedPairs(IndependentPairs):
    """Batches drawn from a pairing by exact assignments in random blocks, new every epoch.

    Each call of :meth:`batches` (an epoch) draws up to ``max_rows`` rows of
    each sample at random and pairs them by exact assignments inside blocks
    of ``block_size`` rows (:func:`~.coupling.block_assignment`); the
    epoch's batches are drawn from those pairs. A new pairing every epoch
    matters: pairs kept for several epochs let the net learn the path of
    those few pairs (at d=8 the error doubles). ``max_rows`` caps the cost
    (an assignment of 1024 rows takes 0.2-0.4 s on one core) whatever the
    number of rows.
    """

    def __init__(
        self, x_p: Tensor, x_q: Tensor, generator: torch.Generator, *, block_size: int, max_rows: int
    ) -> None:
        super().__init__(x_p, x_q, generator)
        self.block_size, self.max_rows, self.pairs = block_size, max_rows, None

    def batches(self, batch_size: int, steps: int) -> Iterator[tuple[Tensor, Tensor]]:
        """``steps`` batches of ``batch_size`` pairs of a new pairing."""
        x_p, x_q = (x[torch.randperm(len(x), generator=self.generator)[: self.max_rows].to(x.device)]
                    if len(x) > self.max_rows else x for x in (self.x_p, self.x_q))
        self.pairs = block_assignment(x_p, x_q, batch_size=self.block_size, generator=self.generator)
        sources, targets, _ = self.pairs
        for _ in range(steps):
            i = torch.randint(len(sources), (batch_size,), generator=self.generator).to(sources.device)
            yield sources[i], targets[i]


#: How the ends of the bridges are paired (``pairing``).
BRIDGE_PAIRINGS: dict[str, type[IndependentPairs]] = {
    "independent": IndependentPairs,
    "minibatch_ot": AssignedPairs,
}


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
    pairing: str = "independent",
    block_size: int = 1024,
    max_rows: int = 4096,
    quadrature: str = "gauss",
    weight_decay: float = 0.0,
    validation: Sequence[Tensor] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train ``net`` (a :class:`~.ratio.TimeScoreNet` with ``d`` components) by time-score matching.

    ``n_epochs`` epochs of ``steps_per_epoch`` Adam steps, each on
    ``batch_size`` pairs of rows of P and Q (paired as ``pairing`` says, a
    key of :data:`BRIDGE_PAIRINGS`; ``block_size`` rows per assignment, up
    to ``max_rows`` rows of each sample paired anew every epoch) and one
    bridge draw per pair; the learning rate decays on a cosine schedule. The
    weights scored and kept are a running average of the iterates
    (:class:`~.train.ParameterAverage`, horizon :data:`AVERAGE_SHARE` of all
    steps): the regression's targets are noisy, and where the net starts to
    memorise the rows early (d=8, 4000 rows: after about 1600 steps) the
    held-out choice otherwise lands on a single noisy early iterate. With
    ``validation = (p_rows, q_rows)`` the epoch kept is chosen as for the
    other ratio nets: by the held-out logistic loss of ``int_0^1 r`` (on the
    grid ``times``) as a classifier of Q against P (:func:`~.ratio.select_epoch`).

    Returns
    -------
    history : list of dict, one per epoch (see :func:`~.train.run_with_selection`).
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate_init, weight_decay=weight_decay)

    pairs = BRIDGE_PAIRINGS[pairing](x_p, x_q, generator, block_size=block_size, max_rows=max_rows)

    def batches():
        for x0, x1 in pairs.batches(batch_size, steps_per_epoch):
            yield bridge_time_score(x0, x1, sigma, generator)

    def loss(batch):
        x_t, t, target, weight = batch
        pred = net.components(x_t, t).reshape(len(x_t), -1)  # (n, d), also when d = 1
        return (weight * (pred - target).pow(2).sum(1)).mean()

    phase = Phase(
        modules=[net], optimizer=optimizer, batches=batches, loss=loss,
        scheduler=cosine_schedule(optimizer, n_epochs * steps_per_epoch), max_grad_norm=10.0,
        average=ParameterAverage(net, AVERAGE_SHARE * n_epochs * steps_per_epoch),
    )
    held_out = None if validation is None else (lambda: list(held_out_terms(net, times, *validation, quadrature)))
    return run_with_selection(net, phase, n_epochs, held_out=held_out, select=select_epoch, on_epoch=on_epoch)
