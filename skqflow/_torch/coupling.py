"""How the initial flow pairs rows of P with rows of Q.

A batch coupling (:data:`COUPLINGS`) returns the target batch reordered so
that row ``i`` of the source is paired with row ``i`` of the result. A global
pairing (:data:`GLOBAL_PAIRINGS`) is fitted once on all rows and returns
fixed ``(sources, targets, row_weights)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .brenier import brenier_pairs
from .train import cycled_permutation

__all__ = ["COUPLINGS", "GLOBAL_PAIRINGS", "INITS", "block_assignment", "independent", "exact_assignment"]


def independent(x0: Tensor, x1: Tensor) -> Tensor:
    """Keep the (already random) order: x0 and x1 are drawn independently."""
    return x1


def exact_assignment(x0: Tensor, x1: Tensor) -> Tensor:
    """Pair the rows by the exact OT assignment for the squared Euclidean cost."""
    cost = torch.cdist(x0.detach(), x1.detach()).pow(2).cpu().double().numpy()
    rows, cols = linear_sum_assignment(cost)
    order = np.empty_like(cols)
    order[rows] = cols
    return x1[torch.as_tensor(order, device=x1.device)]


COUPLINGS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "linear": independent,
    "minibatch_ot": exact_assignment,
}


def block_assignment(
    x_p: Tensor,
    x_q: Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    weights: tuple[Tensor | None, Tensor | None] = (None, None),
    **_: object,
) -> tuple[Tensor, Tensor, None]:
    """Pairs fixed once: exact assignments inside random blocks of ``batch_size`` rows.

    The rows of each sample are laid out as for one pass of batches (the
    smaller sample cycled, weighted samples drawn by their weights), each
    block of P is paired with its block of Q by :func:`exact_assignment`, and
    the pairs then stay the same for the whole training: every row of P
    regresses on one target instead of a new one every pass.
    """
    n = max(len(x_p), len(x_q))
    i0 = cycled_permutation(len(x_p), n, generator, weights[0]).to(x_p.device)
    i1 = cycled_permutation(len(x_q), n, generator, weights[1]).to(x_q.device)
    sources, targets = [], []
    for a, b in zip(i0.split(batch_size), i1.split(batch_size)):
        x0 = x_p[a]
        sources.append(x0)
        targets.append(exact_assignment(x0, x_q[b]))
    return torch.cat(sources), torch.cat(targets), None


GLOBAL_PAIRINGS: dict[str, Callable[..., tuple[Tensor, Tensor, Tensor | None]]] = {
    "block_ot": block_assignment,
    "brenier": brenier_pairs,
}

#: Every value of ``init``.
INITS: tuple[str, ...] = (*COUPLINGS, *GLOBAL_PAIRINGS)
