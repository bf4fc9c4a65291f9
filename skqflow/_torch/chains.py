"""Chains of snapshots along a flow, for the infinitesimal density ratio, and
the held-out split of rows shared by every phase that monitors held-out data.

A chain is a list of ``L + 1`` tensors, samples of ``p_{t_0}, ..., p_{t_L}``
at equally spaced times, the first from P and the last from Q.

Nothing here imports scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .flowmap import FlowMap

__all__ = ["SNAPSHOT_ROWS", "forward_chain", "holdout_split", "pullback_chain", "training_chains"]


def holdout_split(
    tensors: Sequence[Tensor], fraction: float, generator: torch.Generator
) -> tuple[list[Tensor], list[Tensor] | None]:
    """Hold out the same share of rows of every tensor.

    Tensors of equal length share one permutation, so rows that are paired
    across them (the same points moved by a flow) stay paired. Returns
    ``(train, held)``; ``held`` is None (and ``train`` the input) when a
    tensor would keep fewer than two rows on either side.
    """
    tensors = list(tensors)
    perms: dict[int, Tensor] = {}
    train, held = [], []
    for s in tensors:
        n_val = int(fraction * len(s))
        if n_val < 2 or len(s) - n_val < 2:
            return tensors, None
        if len(s) not in perms:
            perms[len(s)] = torch.randperm(len(s), generator=generator).to(s.device)
        perm = perms[len(s)]
        train.append(s[perm[n_val:]])
        held.append(s[perm[:n_val]])
    return train, held


def forward_chain(
    flow: FlowMap, zp: Tensor, zq: Tensor, n_intervals: int, *, alternate: bool, generator: torch.Generator
) -> list[Tensor]:
    """``[P, T_0^{s_1}(P), ..., T_0^1(P), Q]``: rows of P pushed forward, then the rows of Q.

    The ``L`` flow states are at the flow times ``s_k = k / (L - 1)``, so the chain
    of ``L + 1`` snapshots ends with the push-forward ``T_0^1(P)`` and then Q.

    With ``alternate`` the rows of P are split in two halves and
    neighbouring snapshots come from different halves, so that a net cannot
    tell neighbours apart by the identity of their points.
    """
    states = flow.grid_states(zp, n_intervals)
    if alternate and n_intervals > 1:
        perm = torch.randperm(len(zp), generator=generator).to(zp.device)
        halves = (perm[::2], perm[1::2])
        states = [state[halves[k % 2]] for k, state in enumerate(states)]
    return [*states, zq]


def pullback_chain(flow: FlowMap, zp: Tensor, zq: Tensor, n_intervals: int) -> list[Tensor]:
    """``[P, T_1^0(Q), T_1^{s_1}(Q), ..., Q]``: the rows of P, then rows of Q carried back.

    The ``L`` states of Q are at the flow times ``s_k = k / (L - 1)`` (the first is
    the full pull-back ``T_1^0(Q)``, the last Q itself).
    """
    return [zp, *flow.grid_states(zq, n_intervals, backward=True)]


def training_chains(
    snapshot_rows: str,
    flow: FlowMap,
    zp: Tensor,
    zq: Tensor,
    n_intervals: int,
    *,
    held: Sequence[Tensor] | None,
    generator: torch.Generator,
    draw_q: Callable[[int], Tensor] | None = None,
) -> tuple[list[Tensor] | Callable[[], list[Tensor]], list[Tensor] | None]:
    """The training chain and the held-out chain of a density-ratio fit.

    ``zp`` and ``zq`` are the training rows of P and Q, ``held`` the held-out
    rows ``(P, Q)`` or None (split them with :func:`holdout_split`).
    ``snapshot_rows`` is a key of :data:`SNAPSHOT_ROWS`: ``"shared"`` and
    ``"alternate"`` push the rows of P forward (:func:`forward_chain`);
    ``"pullback"`` carries the rows of Q back (:func:`pullback_chain`). The
    held-out chain is built the same way from the held-out rows (with every
    row in every snapshot), so its first snapshot is the held-out rows of P
    and its last those of Q. With ``"pullback"`` and ``draw_q(n)`` (fresh
    rows of Q), the training chain is a callable that draws and carries back
    new rows of Q for every epoch, so the only fixed rows a net could
    memorise are those of P.

    Returns
    -------
    train : list of Tensor, or callable returning one
    held : list of Tensor or None
    """
    if snapshot_rows not in SNAPSHOT_ROWS:
        raise ValueError(f"unknown snapshot_rows {snapshot_rows!r}; choose one of {sorted(SNAPSHOT_ROWS)}")
    if snapshot_rows != "pullback":
        chain = forward_chain(
            flow, zp, zq, n_intervals, alternate=snapshot_rows == "alternate", generator=generator
        )
        held = None if held is None else forward_chain(flow, *held, n_intervals, alternate=False, generator=generator)
        return chain, held
    held = None if held is None else pullback_chain(flow, *held, n_intervals)
    if draw_q is None:
        return pullback_chain(flow, zp, zq, n_intervals), held
    n_q = len(zq)
    return (lambda: pullback_chain(flow, zp, draw_q(n_q), n_intervals)), held


#: The ``snapshot_rows`` options and what each builds.
SNAPSHOT_ROWS: dict[str, str] = {
    "shared": "rows of P pushed forward, the same rows in every snapshot",
    "alternate": "rows of P pushed forward, neighbouring snapshots from different halves",
    "pullback": "rows of Q carried back by the inverse flow, after the rows of P",
}
