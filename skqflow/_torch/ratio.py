"""The time-score (infinitesimal density-ratio) net and its training.

A net ``r(x, t)`` estimates ``d/dt log p_t(x)`` along a chain of snapshots
``x_0, ..., x_L`` (samples of ``p_{t_0}, ..., p_{t_L}``). Its integral over
an interval, ``R_k(x) = int_{t_{k-1}}^{t_k} r(x, s) ds``, is trained as the
logit of a classifier of ``x_k`` (label 1) against ``x_{k-1}`` (label 0), so
that at the optimum ``R_k = log p_{t_k} - log p_{t_{k-1}}`` and
``int_0^1 r = log p_1 - log p_0``.

Nothing here imports scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .losses import logistic_terms
from .nn import MLP
from .train import Phase, cosine_schedule, cycled_permutation, run_with_selection

__all__ = [
    "OBJECTIVES", "QUADRATURES", "TimeScoreNet", "fit_time_score", "group_integrals", "held_out_terms",
    "interval_integrals",
    "log_ratio", "paired_standard_error", "select_epoch",
]

# Quadrature rules on [0, 1] as (nodes, weights). Both integrate cubics
# exactly; Gauss-Legendre needs half the evaluations of Simpson's 3/8 rule
# (the authors' choice).
_G = 0.5 / 3.0**0.5
QUADRATURES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "simpson": ((0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0), (1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0)),
    "gauss": ((0.5 - _G, 0.5 + _G), (0.5, 0.5)),
}


class TimeScoreNet(nn.Module):
    """MLP on ``[x, t]``: ``r(x, t)``, a scalar, or the sum of ``n_components`` outputs.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    hidden_layer_sizes : sequence of int
        Hidden widths.
    activation : str
        Key of :data:`~.nn.ACTIVATIONS`.
    n_components : int, default=1
        With more than one, ``r`` is the sum of the net's outputs and
        :meth:`components` gives them one by one (time-score matching regresses
        each on its own term of the conditional time score).
    """

    def __init__(
        self, n_features: int, hidden_layer_sizes: Sequence[int], activation: str, n_components: int = 1
    ) -> None:
        super().__init__()
        # constructor arguments, so skqflow.save can rebuild the module without pickle
        self.init_args = {"n_features": int(n_features),
                          "hidden_layer_sizes": [int(s) for s in hidden_layer_sizes],
                          "activation": str(activation), "n_components": int(n_components)}
        self.mlp = MLP(n_features + 1, hidden_layer_sizes, activation, n_outputs=n_components)

    def components(self, x: Tensor, t: Tensor) -> Tensor:
        """The net's outputs at rows ``x`` (n, d) and times ``t`` (n,) or a scalar: (n,) or (n, k)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0]).reshape(-1, 1)
        return self.mlp(torch.cat([x, t], dim=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """``r`` at rows ``x`` (n, d) and times ``t`` (n,) or a scalar."""
        out = self.components(x, t)
        return out if out.dim() == 1 else out.sum(-1)


def interval_integrals(
    net: nn.Module, x: Tensor, t0: Tensor, t1: Tensor, quadrature: str = "gauss"
) -> Tensor:
    """``int_{t0}^{t1} r(x, s) ds`` for every row, by a rule of :data:`QUADRATURES`.

    ``x`` has shape (m, n, d) (``m`` groups of rows) and ``t0``, ``t1`` shape
    (m,): group ``j`` is integrated over ``[t0[j], t1[j]]``. All nodes go
    through the net in one batch. Returns shape (m, n).
    """
    nodes, weights = QUADRATURES[quadrature]
    q = len(nodes)
    m, n, d = x.shape
    h = (t1 - t0).to(x)
    at = torch.stack([t0.to(x) + c * h for c in nodes])  # (q, m)
    times = at[:, :, None].expand(q, m, n).reshape(-1)
    values = net(x.unsqueeze(0).expand(q, m, n, d).reshape(-1, d), times).reshape(q, m, n)
    w = torch.tensor(weights, dtype=x.dtype, device=x.device)
    return (w[:, None, None] * values).sum(0) * h[:, None]


def log_ratio(
    net: nn.Module, x: Tensor, times: Tensor, quadrature: str = "gauss", chunk: int = 4096
) -> Tensor:
    """``int r(x, s) ds`` over the consecutive intervals of ``times``, no gradient.

    With ``times`` the snapshot grid from 0 to 1 this is
    ``log p_1(x) - log p_0(x)``. Returns shape (n,).
    """
    t0, t1 = times[:-1], times[1:]
    out = []
    with torch.no_grad():
        for xb in x.split(chunk):
            xs = xb.unsqueeze(0).expand(len(t0), *xb.shape)
            out.append(interval_integrals(net, xs, t0, t1, quadrature).sum(0))
    return torch.cat(out)


def group_integrals(
    net: nn.Module, groups: Sequence[Tensor], needs: Sequence[Sequence[int]], times: Tensor, quadrature: str
) -> list[Tensor]:
    """``R_k(x)`` for the intervals ``needs[j]`` at the rows of ``groups[j]``.

    Returns one tensor of shape (len(needs[j]), n_j) per group. Groups of
    one size go through the net in a single batch.
    """
    sizes = {len(g) for g, need in zip(groups, needs) if need}
    if len(sizes) > 1:  # unequal groups (held-out snapshots): one batch per group
        return [group_integrals(net, [g], [need], times, quadrature)[0] for g, need in zip(groups, needs)]
    picks = [(j, k) for j, need in enumerate(needs) for k in need]
    if not picks:
        return [g.new_zeros(0, len(g)) for g in groups]
    x = torch.stack([groups[j] for j, _ in picks])
    k = torch.as_tensor([k for _, k in picks], device=times.device)
    values = interval_integrals(net, x, times[k], times[k + 1], quadrature).split([len(n) for n in needs])
    return list(values)


def _chain_needs(n_intervals: int) -> list[list[int]]:
    """Interval ``k`` is needed at snapshots ``k`` and ``k + 1``."""
    return [[k for k in (j - 1, j) if 0 <= k < n_intervals] for j in range(n_intervals + 1)]


def _chain_terms(net, groups, times, quadrature):
    """Neighbouring snapshots only: interval ``k`` classifies ``x_k`` against ``x_{k-1}``."""
    needs = _chain_needs(len(groups) - 1)
    return _neighbour_terms(group_integrals(net, groups, needs, times, quadrature), needs)


def _neighbour_terms(R: list[Tensor], needs: list[list[int]]) -> list[Tensor]:
    """Logistic terms of each interval ``k``: ``R_k`` at snapshot ``k - 1`` against snapshot ``k``."""
    terms = []
    for k in range(len(R) - 1):
        terms.extend(logistic_terms(R[k][needs[k].index(k)], R[k + 1][needs[k + 1].index(k)]))
    return terms


def _anchored_terms(net, groups, times, quadrature):
    """The chain plus one classifier of the last snapshot against the first.

    The whole integral ``int_0^1 r`` is trained as the logit of Q against P
    at the rows of both, as a single classifier would be, so the chain can
    only add information: both terms have the same optimum.
    """
    n_int = len(groups) - 1
    needs = _chain_needs(n_int)
    every = list(range(n_int))
    needs[0], needs[-1] = every, every
    R = group_integrals(net, groups, needs, times, quadrature)
    terms = _neighbour_terms(R, needs)
    if n_int > 1:
        terms.extend(logistic_terms(R[0].sum(0), R[-1].sum(0)))
    return terms


def _multinomial_terms(net, groups, times, quadrature):
    """One multinomial classifier over every snapshot of the chain.

    The logit of snapshot ``k`` at ``x`` is ``int_0^{t_k} r(x, s) ds``; at
    the optimum it is ``log p_{t_k}(x) - log p_0(x)``, so the softmax over
    the snapshots is their posterior (equal sizes). Every pair of snapshots
    is compared, P against Q included.
    """
    n_int = len(groups) - 1
    R = group_integrals(net, groups, [list(range(n_int))] * len(groups), times, quadrature)
    terms = []
    for j, r in enumerate(R):
        logits = torch.cat([r.new_zeros(1, r.shape[1]), r.cumsum(0)])
        terms.append(-torch.log_softmax(logits, dim=0)[j])
    return terms


_HELD_CHUNK = 2048  # held-out rows of each snapshot evaluated at once


#: The ``objective`` options of :func:`fit_time_score`.
OBJECTIVES: dict[str, Callable] = {
    "chain": _chain_terms,
    "anchored": _anchored_terms,
    "multinomial": _multinomial_terms,
}


def fit_time_score(
    net: nn.Module,
    snapshots: Sequence[Tensor] | Callable[[], Sequence[Tensor]],
    times: Tensor,
    *,
    n_epochs: int,
    batch_size: int,
    learning_rate_init: float,
    generator: torch.Generator,
    quadrature: str = "gauss",
    weight_decay: float = 0.0,
    validation: Sequence[Tensor] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    objective: str = "chain",
) -> list[dict]:
    """Train ``net`` by classifying the snapshots of a chain.

    Parameters
    ----------
    snapshots : sequence of Tensor, or callable returning one
        ``L + 1`` samples ``x_0, ..., x_L`` of shape (n_k, d); the sizes may
        differ (each epoch cycles the smaller ones to the largest size). A
        callable is called once per epoch for that epoch's snapshots (fresh
        draws where the distributions can be sampled); it must return the
        same sizes every time.
    times : Tensor of shape (L + 1,)
        Time of each snapshot, increasing.
    validation : sequence of Tensor, optional
        Held-out snapshots (same layout). Their loss is recorded after every
        epoch (with the per-row terms and a copy of the weights); the weights
        kept are those of the latest epoch whose held-out loss is within one
        paired standard error of the smallest (:func:`select_epoch`).

    objective : str, default="chain"
        Key of :data:`OBJECTIVES`: the per-row terms whose group means sum
        to the loss of a batch (and to the held-out criterion). ``"chain"``
        is ``sum_k mean softplus(R_k(x_{k-1})) + mean softplus(-R_k(x_k))``
        with ``R_k`` the integral of ``r`` over ``[t_{k-1}, t_k]``.

    The learning rate decays on a cosine schedule.

    Returns
    -------
    history : list of dict, one per epoch: ``loss`` and, with
    ``validation``, ``validation_loss`` and ``selected`` (the epoch kept).
    """
    draw = snapshots if callable(snapshots) else (lambda: snapshots)
    pending = [draw()]
    sizes = [len(s) for s in pending[0]]
    n = max(sizes)
    n_batches = -(-n // batch_size)
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}")
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate_init, weight_decay=weight_decay)

    def batches():
        current = pending.pop() if pending else draw()
        if [len(s) for s in current] != sizes:
            raise ValueError("the snapshot sizes changed between epochs")
        # Snapshots of equal size share one permutation: when they are the
        # same rows moved by the flow, neighbours stay paired within a batch,
        # which cancels much of the sampling noise of the two loss terms.
        perms = {m: cycled_permutation(m, n, generator) for m in sorted(set(sizes))}
        idx = [perms[len(s)].split(batch_size) for s in current]
        for parts in zip(*idx):
            m = min(len(p) for p in parts)
            yield [s[p[:m].to(s.device)] for s, p in zip(current, parts)]

    terms_of = OBJECTIVES[objective]

    def loss(batch):
        return sum(t.mean() for t in terms_of(net, batch, times, quadrature))

    def held_out() -> list[Tensor]:
        """Per-row held-out terms of the objective, one tensor per group."""
        n_val = max(len(g) for g in validation)
        with torch.no_grad():
            parts = [
                terms_of(net, [g[a : a + _HELD_CHUNK] for g in validation], times, quadrature)
                for a in range(0, n_val, _HELD_CHUNK)
            ]
        return [torch.cat(ts).double().cpu() for ts in zip(*parts)]

    phase = Phase(
        modules=[net], optimizer=optimizer, batches=batches, loss=loss,
        scheduler=cosine_schedule(optimizer, n_epochs * n_batches), max_grad_norm=10.0,
    )
    return run_with_selection(
        net, phase, n_epochs, held_out=None if validation is None else held_out, select=select_epoch,
        on_epoch=on_epoch,
    )


def held_out_terms(
    net: nn.Module, times: Tensor, p_rows: Tensor, q_rows: Tensor, quadrature: str = "gauss"
) -> tuple[Tensor, Tensor]:
    """Per-row logistic loss of the whole log ratio ``int_0^1 r`` as a classifier of Q against P.

    ``(softplus(R(p_rows)), softplus(-R(q_rows)))`` in float64 on the CPU; the
    sum of their means is the held-out loss of the implied classifier (equal
    weight to each side), the criterion on which different nets compare.
    """
    lower, upper = log_ratio(net, p_rows, times, quadrature), log_ratio(net, q_rows, times, quadrature)
    return tuple(t.double().cpu() for t in logistic_terms(lower, upper))


def select_epoch(epoch_terms: Sequence[Sequence[Tensor]]) -> int:
    """The latest epoch whose held-out loss is within one standard error of the best.

    ``epoch_terms[i]`` holds the per-row loss terms of epoch ``i``, one tensor
    per group (the loss is the sum of the group means). The standard error is
    that of the paired difference with the best epoch (same held-out rows),
    so it measures noise in the comparison, not in the loss level.
    Non-finite losses are never chosen.

    Near the optimum the held-out loss of neighbouring snapshots is flat, and
    the latest epoch there is the most trained (and, under a cosine-decayed
    learning rate, the most stable); once the net memorises its rows the loss
    climbs out of the band and those epochs are passed over.
    """
    losses = [float(sum(t.mean() for t in terms)) for terms in epoch_terms]
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    if not finite:
        return len(losses) - 1
    best = min(finite, key=lambda i: losses[i])
    return max(
        i for i in finite if losses[i] <= losses[best] + paired_standard_error(epoch_terms[i], epoch_terms[best])
    )


def paired_standard_error(terms_a: Sequence[Tensor], terms_b: Sequence[Tensor]) -> float:
    """Standard error of the difference of two held-out losses on the same rows.

    Each loss is the sum over groups of the mean of its per-row terms; the
    rows of a group are the same for both, so the error is that of the
    per-row differences (groups of one row contribute nothing).
    """
    var = sum(float((a - b).var()) / len(a) for a, b in zip(terms_a, terms_b) if len(a) > 1)
    return math.sqrt(var)
