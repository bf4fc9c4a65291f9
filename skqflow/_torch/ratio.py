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

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .losses import logistic_loss, logistic_terms
from .nn import MLP
from .train import Phase, cosine_schedule, cycled_permutation, run_epochs

__all__ = [
    "QUADRATURES", "TimeScoreNet", "fit_time_score", "interval_integrals", "log_ratio", "select_epoch",
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
    """MLP on ``[x, t]`` with a scalar output: ``r(x, t)``.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    hidden_layer_sizes : sequence of int
        Hidden widths.
    activation : str
        Key of :data:`~.nn.ACTIVATIONS`.
    """

    def __init__(self, n_features: int, hidden_layer_sizes: Sequence[int], activation: str) -> None:
        super().__init__()
        # constructor arguments, so skqflow.save can rebuild the module without pickle
        self.init_args = {"n_features": int(n_features),
                          "hidden_layer_sizes": [int(s) for s in hidden_layer_sizes],
                          "activation": str(activation)}
        self.mlp = MLP(n_features + 1, hidden_layer_sizes, activation)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """``r`` at rows ``x`` (n, d) and times ``t`` (n,) or a scalar."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0]).reshape(-1, 1)
        return self.mlp(torch.cat([x, t], dim=1))


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
) -> list[dict]:
    """Train ``net`` by logistic classification of neighbouring snapshots.

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

    The loss of a batch is ``sum_k mean softplus(R_k(x_{k-1})) + mean
    softplus(-R_k(x_k))`` with ``R_k`` the Simpson integral of ``r`` over
    ``[t_{k-1}, t_k]``; the learning rate decays on a cosine schedule.

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
    t0, t1 = times[:-1], times[1:]
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

    def loss(batch):
        x = torch.stack(batch)  # (L + 1, m, d)
        lower = interval_integrals(net, x[:-1], t0, t1, quadrature)  # R_k at x_{k-1}
        upper = interval_integrals(net, x[1:], t0, t1, quadrature)  # R_k at x_k
        return sum(logistic_loss(lower[k], upper[k]) for k in range(len(t0)))

    def held_out() -> list[Tensor]:
        """Per-row held-out loss terms, one tensor per (interval, side)."""
        terms = []
        with torch.no_grad():
            for k in range(len(t0)):
                lower = log_ratio(net, validation[k], times[k : k + 2], quadrature)
                upper = log_ratio(net, validation[k + 1], times[k : k + 2], quadrature)
                terms.extend(t.double().cpu() for t in logistic_terms(lower, upper))
        return terms

    history: list[dict] = []
    states: list[tuple[list[Tensor], dict]] = []

    def record(epoch: int, mean_loss: float) -> None:
        entry = {"epoch": epoch + 1, "loss": mean_loss}
        if validation is not None:
            terms = held_out()
            entry["validation_loss"] = float(sum(t.mean() for t in terms))
            states.append((terms, copy.deepcopy(net.state_dict())))
        history.append(entry)
        if on_epoch is not None:
            on_epoch(epoch, entry)

    phase = Phase(
        modules=[net], optimizer=optimizer, batches=batches, loss=loss,
        scheduler=cosine_schedule(optimizer, n_epochs * n_batches), max_grad_norm=10.0,
    )
    try:
        run_epochs(phase, n_epochs, record)
    finally:
        if states:
            chosen = select_epoch([terms for terms, _ in states])
            net.load_state_dict(states[chosen][1])
            for i, h in enumerate(history):
                h["selected"] = i == chosen
    return history


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

    def paired_se(i):
        var = sum(
            float((a - b).var()) / len(a) for a, b in zip(epoch_terms[i], epoch_terms[best]) if len(a) > 1
        )
        return math.sqrt(var)

    return max(i for i in finite if losses[i] <= losses[best] + paired_se(i))
