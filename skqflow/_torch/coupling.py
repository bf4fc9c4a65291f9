"""How the initial flow pairs rows of P with rows of Q.

A batch coupling (:data:`COUPLINGS`) returns the target batch reordered so
that row ``i`` of the source is paired with row ``i`` of the result. A global
pairing (:data:`GLOBAL_PAIRINGS`) is fitted once on all rows and returns
fixed ``(sources, targets, row_weights)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from torch import Tensor

from .brenier import brenier_pairs
from .train import cycled_permutation

__all__ = [
    "COUPLINGS", "GLOBAL_PAIRINGS", "INITS", "block_assignment", "decomposed_assignment", "exact_assignment",
    "independent",
]


def independent(x0: Tensor, x1: Tensor) -> Tensor:
    """Keep the (already random) order: x0 and x1 are drawn independently."""
    return x1


def _solve(cost: np.ndarray) -> tuple[np.ndarray, float]:
    """``order`` such that row ``i`` pairs with column ``order[i]`` in the exact assignment, and its cost."""
    rows, cols = linear_sum_assignment(cost)
    order = np.empty_like(cols)
    order[rows] = cols
    return order, float(cost[rows, cols].sum())


def exact_assignment(x0: Tensor, x1: Tensor) -> Tensor:
    """Pair the rows by the exact OT assignment for the squared Euclidean cost."""
    order, _ = _solve(torch.cdist(x0.detach(), x1.detach()).pow(2).cpu().double().numpy())
    return x1[torch.as_tensor(order, device=x1.device)]


#: :func:`decomposed_assignment` pairs batches of at most this many rows by
#: one exact assignment (9 ms for 256 rows of the moons and checkerboard).
EXACT_ROWS = 256
#: Rows of each exact assignment inside a larger batch's
#: :func:`decomposed_assignment` (the cost of one grows as the cube of its rows).
ASSIGNMENT_BLOCK = 128
#: Most improvement sweeps of :func:`decomposed_assignment`.
DECOMPOSITION_SWEEPS = 8
#: :func:`decomposed_assignment` stops once a sweep lowers the total cost by
#: less than this fraction.
DECOMPOSITION_TOL = 1e-3


def _cells(x: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of ``x`` cut into cells of at most ``size`` rows.

    Each cut halves a cell at the median of its rows' projections on a
    random direction, so a cell holds rows that lie close together.
    """
    cells, todo = [], [np.arange(len(x))]
    while todo:
        rows = todo.pop()
        if len(rows) <= size:
            cells.append(rows)
            continue
        order = np.argsort(x[rows] @ rng.standard_normal(x.shape[1]), kind="stable")
        half = len(rows) // 2
        todo += [rows[order[:half]], rows[order[half:]]]
    return cells


def decomposed_assignment(
    x0: Tensor,
    x1: Tensor,
    *,
    exact_rows: int = EXACT_ROWS,
    block: int = ASSIGNMENT_BLOCK,
    sweeps: int = DECOMPOSITION_SWEEPS,
    tol: float = DECOMPOSITION_TOL,
) -> Tensor:
    """Pair two batches of equal size by an approximately optimal assignment.

    Batches of at most ``exact_rows`` rows get the exact assignment
    (:func:`exact_assignment`). A larger batch is first paired by exact
    assignments inside consecutive blocks of ``block`` rows (the rows come in
    random order, so these are random blocks); each sweep then cuts the rows
    into cells (:func:`_cells`, new random directions each sweep) whose
    sources lie close together (even sweeps) or whose current partners do
    (odd sweeps), and replaces the partners of each cell by the exact
    assignment between its rows and those same partners. A sweep never raises
    the total squared distance, and because the cells change between sweeps,
    rows can trade partners across the previous cells: this is the domain
    decomposition of Benamou (1994), which Bonafini and Schmitzer (2021)
    showed converges to the optimal assignment. The sweeps stop after
    ``sweeps`` of them, or once one lowers the total cost by less than the
    fraction ``tol``. Each sweep costs ``len(x0) / block`` exact assignments
    of ``block`` rows: linear in the batch, where one exact assignment of the
    whole batch costs its cube. The random directions come from a generator
    seeded by a checksum of the rows: they differ from batch to batch (so the
    cells' edges do not fall at the same places in every batch), and the
    pairing is a function of the rows, whatever thread computes it.
    """
    if len(x0) != len(x1):
        raise ValueError(f"batches of {len(x0)} and {len(x1)} rows")
    if len(x0) <= max(block, exact_rows):
        return exact_assignment(x0, x1)
    a, b = x0.detach().cpu().double().numpy(), x1.detach().cpu().double().numpy()
    partner = np.arange(len(a))
    rng = np.random.default_rng(zlib.crc32(a.tobytes()))
    total = 0.0
    for rows in np.array_split(partner, -(-len(a) // block)):
        order, cost = _solve(cdist(a[rows], b[rows], "sqeuclidean"))
        partner[rows] = rows[order]
        total += cost
    for sweep in range(sweeps):
        # cells of nearby sources, then of nearby partners, in turn
        where = a if sweep % 2 == 0 else b[partner]
        before, total = total, 0.0
        for cell in _cells(where, block, rng):
            cols = partner[cell]
            order, cost = _solve(cdist(a[cell], b[cols], "sqeuclidean"))
            partner[cell] = cols[order]
            total += cost
        if before - total <= tol * before:
            break
    return x1[torch.as_tensor(partner, device=x1.device)]


COUPLINGS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "linear": independent,
    "minibatch_ot": decomposed_assignment,
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
