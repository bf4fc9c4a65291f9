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

__all__ = ["COUPLINGS", "GLOBAL_PAIRINGS", "INITS", "independent", "exact_assignment"]


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

GLOBAL_PAIRINGS: dict[str, Callable[..., tuple[Tensor, Tensor, Tensor | None]]] = {
    "brenier": brenier_pairs,
}

#: Every value of ``init``.
INITS: tuple[str, ...] = (*COUPLINGS, *GLOBAL_PAIRINGS)
