"""Losses and discrepancies on tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = [
    "logistic_loss", "logistic_terms", "kl_lower_bound", "path_cost", "energy_distance",
    "flow_matching_loss", "monge_gap", "probabilities",
]


def logistic_terms(logit_pushed: Tensor, logit_real: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row terms of :func:`logistic_loss`: ``softplus(r(pushed))``, ``softplus(-r(real))``."""
    return F.softplus(logit_pushed), F.softplus(-logit_real)


def logistic_loss(logit_pushed: Tensor, logit_real: Tensor) -> Tensor:
    """Logistic loss whose optimum is ``logit = log(real / pushed)``.

    ``mean softplus(r(pushed)) + mean softplus(-r(real))``: paper eq. (5).
    """
    pushed, real = logistic_terms(logit_pushed, logit_real)
    return pushed.mean() + real.mean()


def kl_lower_bound(logit_pushed: Tensor, logit_real: Tensor) -> Tensor:
    """Donsker-Varadhan lower bound on ``KL(pushed || real)`` from a classifier.

    With ``h = -logit`` (an estimate of ``log(pushed / real)``) the bound is
    ``mean h(pushed) - log mean exp(h(real))``, clipped at 0 (the value of
    ``h = 0``). When the classifier is exact it equals the plain estimate
    ``-mean logit(pushed)``; unlike that estimate it cannot be driven below
    zero by a classifier that has memorised its training rows, which makes
    it a safe held-out criterion.
    """
    h_real = -logit_real.reshape(-1)
    log_mean_exp = torch.logsumexp(h_real, 0) - torch.log(h_real.new_tensor(float(h_real.numel())))
    return (-logit_pushed.mean() - log_mean_exp).clamp_min(0.0)


def path_cost(states: Tensor, times: Tensor) -> Tensor:
    """Discrete W2 cost ``sum_k mean ||x(t_k) - x(t_{k-1})||^2 / h_k`` (paper eq. 7)."""
    h = (times[1:] - times[:-1]).abs().to(states.dtype)
    steps = (states[1:] - states[:-1]).pow(2).sum(-1).mean(-1)
    return (steps / h).sum()


def flow_matching_loss(field, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """Regress ``f(x_t, t)`` on ``x1 - x0`` along ``x_t = (1 - t) x0 + t x1``."""
    tt = t.reshape(-1, 1)
    xt = (1.0 - tt) * x0 + tt * x1
    return (field(xt, t.reshape(-1, 1)) - (x1 - x0)).pow(2).sum(-1).mean()


def _mean_distance(a: Tensor, b: Tensor, pa: Tensor | None = None, pb: Tensor | None = None,
                   chunk: int = 2048) -> Tensor:
    """Mean distance between the rows of ``a`` and ``b``, weighted by ``pa`` and ``pb`` (sum one) if given."""
    total = a.new_zeros(())
    for i in range(0, a.shape[0], chunk):
        d = torch.cdist(a[i : i + chunk], b)
        total = total + (d.sum() if pa is None else pa[i : i + chunk] @ d @ pb)
    return total / (a.shape[0] * b.shape[0]) if pa is None else total


def probabilities(weights: Tensor | None, n: int, like: Tensor) -> Tensor:
    """``weights`` scaled to sum to one (uniform when None), as ``like``'s dtype and device."""
    if weights is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    w = weights.to(like).reshape(-1)
    return w / w.sum()


def energy_distance(x: Tensor, y: Tensor, weights: tuple[Tensor | None, Tensor | None] = (None, None)) -> Tensor:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (V-statistic).

    Non-negative, zero only for equal samples, no bandwidth to tune.
    ``weights`` (one tensor or None for each of ``x`` and ``y``) make the
    samples weighted empirical measures; without any it is the plain mean.
    """
    if weights[0] is None and weights[1] is None:
        return 2.0 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y)
    px, py = probabilities(weights[0], len(x), x), probabilities(weights[1], len(y), y)
    return 2.0 * _mean_distance(x, y, px, py) - _mean_distance(x, x, px, px) - _mean_distance(y, y, py, py)


def monge_gap(x: Tensor, mapped: Tensor) -> Tensor:
    """Discrete Monge gap of a map on rows ``x`` with images ``mapped``.

    ``mean ||x_i - T(x_i)||^2 - min_sigma mean ||x_i - T(x_sigma(i))||^2``: the
    cost of the map's own pairing minus that of the optimal assignment between
    the rows and their images (exact, Hungarian method, cubic in the number of
    rows). Never negative; zero exactly when the pairing is optimal, i.e. the
    map is cyclically monotone on these rows (as the gradient of a convex
    function, an optimal transport map, is). It measures how far a map is
    from optimal, whatever its target.
    """
    cost = torch.cdist(x.detach().double(), mapped.detach().double()).pow(2)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    own = cost.diagonal().mean()
    best = cost[torch.as_tensor(rows), torch.as_tensor(cols)].mean()
    return (own - best).clamp_min(0.0)

