"""Couplings of a batch of source rows with a batch of target rows.

Each coupling returns the target batch reordered so that row ``i`` of the
source is paired with row ``i`` of the result.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ["COUPLINGS", "independent", "exact_assignment"]


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
