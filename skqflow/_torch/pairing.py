"""Global pairings of the whole sample of P with targets, for the initial flow.

A minibatch coupling (:mod:`.coupling`) pairs rows inside each batch; a global
pairing computes, once, one target for every row of P from all rows of both
samples, and flow matching then regresses on the straight paths from each row
to its target. Two estimates of the OT map are offered:

``bures``
    The closed-form OT map between Gaussians with the samples' means and
    covariances, ``L(x) = m_q + A (x - m_p)`` with
    ``A = S_p^{-1/2} (S_p^{1/2} S_q S_p^{1/2})^{1/2} S_p^{-1/2}`` (the
    statistical optimum when P and Q are Gaussian).
``bures_entropic``
    ``L`` followed by the barycentric projection of an entropic OT plan
    between ``L(X_p)`` and ``X_q`` (log-domain Sinkhorn on all rows, small
    ``epsilon``): the linear map does the bulk of the transport, and the
    entropic plan, which only has to correct a near-identity residual,
    adds the non-linear part (Pooladian and Niles-Weed's entropic map
    estimator, after a Bures alignment).

Nothing here imports scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["PAIRINGS", "bures_map", "entropic_barycentric", "sym_sqrt"]


def sym_sqrt(S: Tensor, inverse: bool = False) -> Tensor:
    """Square root (or inverse square root) of a symmetric positive semi-definite matrix."""
    w, V = torch.linalg.eigh(S)
    w = w.clamp_min(1e-12 * float(w.abs().max().clamp_min(1e-300)))
    d = w.rsqrt() if inverse else w.sqrt()
    return (V * d) @ V.T


def bures_map(x_p: Tensor, x_q: Tensor, ridge: float = 1e-6) -> Callable[[Tensor], Tensor]:
    """The Gaussian OT map between the samples' moments, ``x -> m_q + A (x - m_p)``.

    Computed in float64; ``ridge`` (relative to the mean variance) keeps the
    covariances invertible when a sample is smaller than its dimension.
    """
    p, q = x_p.double(), x_q.double()
    m_p, m_q = p.mean(0), q.mean(0)
    d = p.shape[1]

    def cov(z, m):
        c = (z - m).T @ (z - m) / max(len(z) - 1, 1)
        return c + ridge * float(c.diagonal().mean().clamp_min(1e-12)) * torch.eye(d, dtype=c.dtype, device=c.device)

    S_p, S_q = cov(p, m_p), cov(q, m_q)
    root = sym_sqrt(S_p)
    inv_root = sym_sqrt(S_p, inverse=True)
    A = inv_root @ sym_sqrt(root @ S_q @ root) @ inv_root
    A = 0.5 * (A + A.T)

    def apply(x: Tensor) -> Tensor:
        return ((x.double() - m_p) @ A + m_q).to(x.dtype)

    return apply


def entropic_barycentric(
    src: Tensor, tgt: Tensor, epsilon: float, n_iter: int = 200, chunk: int = 2048, tol: float = 1e-4
) -> Tensor:
    """Barycentric projection of the entropic OT plan from ``src`` to ``tgt`` (uniform weights).

    Log-domain Sinkhorn for the squared Euclidean cost (halved) with
    regularisation ``epsilon``; the cost matrix is never stored whole (rows
    are processed in chunks), so memory is ``O(chunk * len(tgt))``. Returns,
    for each row of ``src``, the plan-weighted mean of the rows of ``tgt``.
    """
    a = src.double()
    b = tgt.double()
    n, m = len(a), len(b)
    log_mu, log_nu = -math.log(n), -math.log(m)
    f = a.new_zeros(n)
    g = b.new_zeros(m)
    b2 = 0.5 * b.pow(2).sum(1)

    def half_cost(rows: Tensor) -> Tensor:
        return 0.5 * rows.pow(2).sum(1, keepdim=True) + b2 - rows @ b.T

    for _ in range(n_iter):
        f_new = torch.cat([
            -epsilon * torch.logsumexp((g - half_cost(rows)) / epsilon + log_nu, dim=1)
            for rows in a.split(chunk)
        ])
        # g update, accumulated over chunks of src rows
        acc = None
        for rows, f_rows in zip(a.split(chunk), f_new.split(chunk)):
            part = torch.logsumexp((f_rows[:, None] - half_cost(rows)) / epsilon + log_mu, dim=0)
            acc = part if acc is None else torch.logaddexp(acc, part)
        g_new = -epsilon * acc
        shift = float((f_new - f).abs().max())
        f, g = f_new, g_new
        if shift < tol * epsilon:
            break
    out = []
    for rows, f_rows in zip(a.split(chunk), f.split(chunk)):
        logits = (f_rows[:, None] + g - half_cost(rows)) / epsilon
        out.append(torch.softmax(logits, dim=1) @ b)
    return torch.cat(out).to(src.dtype)


def _bures(x_p: Tensor, x_q: Tensor, epsilon: float) -> Tensor:
    return bures_map(x_p, x_q)(x_p)


def _bures_entropic(x_p: Tensor, x_q: Tensor, epsilon: float) -> Tensor:
    aligned = bures_map(x_p, x_q)(x_p)
    return entropic_barycentric(aligned, x_q, epsilon)


#: ``init`` option -> ``targets(x_p, x_q, epsilon)``: one target row for each row of P.
PAIRINGS: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "bures": _bures,
    "bures_entropic": _bures_entropic,
}
