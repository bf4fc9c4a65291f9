"""A Brenier potential fitted on all rows: the global pairing ``init="brenier"``.

The optimal transport map for the squared Euclidean cost is the gradient of a
convex function ``phi`` (Brenier's theorem), and ``phi`` minimises the
semi-dual ``E_P phi(x) + E_Q phi*(y)`` (``phi*`` its convex conjugate). The
potential here is the closed-form Gaussian (Bures) map's quadratic, made
trainable, plus an input-convex network (ICNN: non-negative weights on the
hidden path, convex non-decreasing activations) that starts near zero, so the
fit starts at the Bures map and learns the non-Gaussian part on top of it
(the ICNN parametrisation of Makkuva et al. 2020 and Amos 2023). The
conjugate of each row of Q is solved numerically, warm-started from its last
solution, and the gradient of the semi-dual follows from the envelope theorem.

The pairs ``(x, grad phi(x))`` for the rows of P and ``(grad phi*(y), y)`` for
the rows of Q then train the flow by flow matching.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .train import CHECK_EVERY, TrainingDiverged, cosine_schedule, weighted_indices

__all__ = ["ConvexPotential", "bures_map", "fit_brenier", "brenier_pairs", "solve_conjugate"]

#: Hidden width and depth of the ICNN residual.
WIDTH, DEPTH = 64, 2
#: Adam step size of the potential's fit (cosine decay to zero).
LEARNING_RATE = 1e-2
#: Rows of each side per step (all rows when a sample is smaller).
BATCH_ROWS = 1024
#: Conjugate-solver iterations per training step (warm-started) and at the end.
STEP_ITERATIONS, FINAL_ITERATIONS = 10, 100
#: Held-out rows of each side for the choice of the kept state (at most).
HELD_OUT_ROWS = 2000
#: Residual norm below which a conjugate counts as solved (standardised units).
SOLVED = 1e-3
#: Ridge added to both covariances of the Bures map (standardised units).
RIDGE = 1e-6


def _sym_sqrt(S: Tensor) -> Tensor:
    w, V = torch.linalg.eigh((S + S.T) / 2)
    return (V * w.clamp_min(0).sqrt()) @ V.T


def _moments(x: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor]:
    p = torch.full((len(x),), 1.0 / len(x), dtype=x.dtype) if w is None else w / w.sum()
    mean = p @ x
    c = x - mean
    return mean, (c * p[:, None]).T @ c


def bures_map(x_p: Tensor, x_q: Tensor, w_p: Tensor | None = None, w_q: Tensor | None = None):
    """The closed-form Gaussian OT map ``x -> m_q + A (x - m_p)`` between the samples' moments.

    Returns ``(A, m_p, m_q)`` in float64; ``A`` is symmetric positive definite
    (a small ridge keeps it so when a covariance is singular).
    """
    x_p, x_q = x_p.detach().cpu().double(), x_q.detach().cpu().double()
    w_p = None if w_p is None else w_p.detach().cpu().double()
    w_q = None if w_q is None else w_q.detach().cpu().double()
    (m_p, S_p), (m_q, S_q) = _moments(x_p, w_p), _moments(x_q, w_q)
    eye = torch.eye(x_p.shape[1], dtype=torch.float64)
    S_p, S_q = S_p + RIDGE * eye, S_q + RIDGE * eye
    root = _sym_sqrt(S_p)
    inv_root = torch.linalg.inv(root)
    A = inv_root @ _sym_sqrt(root @ S_q @ root) @ inv_root
    return (A + A.T) / 2, m_p, m_q


class ConvexPotential(nn.Module):
    """``phi(x) = |L'(x - m_p)|² / 2 + (m_q + b)' x + r(x)``, ``r`` an ICNN.

    Convex whatever the trainable values, as long as :meth:`project_` keeps
    the ICNN's hidden-to-hidden and output weights non-negative.

    Parameters
    ----------
    A : Tensor of shape (d, d)
        Starting quadratic (``L`` starts at its symmetric square root).
    m_p, m_q : Tensor of shape (d,)
        Centre of the quadratic and starting linear term.
    width, depth : int
        Size of the ICNN residual.
    """

    def __init__(self, A: Tensor, m_p: Tensor, m_q: Tensor, width: int = WIDTH, depth: int = DEPTH):
        super().__init__()
        d = len(m_p)
        self.register_buffer("m_p", m_p.clone())
        self.register_buffer("m_q", m_q.clone())
        self.L = nn.Parameter(_sym_sqrt(A).clone())
        self.b = nn.Parameter(torch.zeros(d, dtype=A.dtype))
        self.inputs = nn.ModuleList([nn.Linear(d, width).to(A.dtype) for _ in range(depth)])
        self.hidden = nn.ParameterList(
            [nn.Parameter(torch.rand(width, width, dtype=A.dtype) / width) for _ in range(depth - 1)]
        )
        # A small residual: the fit starts at (almost exactly) the Bures map.
        self.out = nn.Parameter(torch.full((width,), 1e-3, dtype=A.dtype))

    def project_(self) -> None:
        """Clip the weights that must stay non-negative for ``phi`` to be convex."""
        with torch.no_grad():
            for U in self.hidden:
                U.clamp_(min=0)
            self.out.clamp_(min=0)

    def hessian_floor(self) -> Tensor:
        """``L L'``: the quadratic part's Hessian (the ICNN only adds to it)."""
        return self.L @ self.L.T

    def forward(self, x: Tensor) -> Tensor:
        """``phi`` at each row of ``x``."""
        quad = 0.5 * ((x - self.m_p) @ self.L).pow(2).sum(1) + x @ (self.m_q + self.b)
        z = F.softplus(self.inputs[0](x))
        for U, W in zip(self.hidden, self.inputs[1:]):
            z = F.softplus(z @ U.T + W(x))
        return quad + z @ self.out

    def gradient(self, x: Tensor) -> Tensor:
        """``grad phi`` at each row of ``x`` (the transport map; no graph kept)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self(x).sum(), x)
        return g


def solve_conjugate(phi: ConvexPotential, y: Tensor, x0: Tensor, iterations: int) -> tuple[Tensor, Tensor]:
    """``grad phi*(y)``: the ``x`` with ``grad phi(x) = y``, for each row of ``y``.

    Minimises ``phi(x) - <x, y>`` (strictly convex) by steps preconditioned
    with the inverse of the quadratic part's Hessian, from ``x0``; a step
    that does not shrink a row's residual is undone and that row's step size
    halved. Returns the solutions and the residual norms
    ``|grad phi(x) - y|``.
    """
    floor = phi.hessian_floor().detach()
    precond = torch.linalg.inv(floor + RIDGE * torch.eye(len(floor), dtype=floor.dtype, device=floor.device))
    x = x0.detach().clone()
    residual = phi.gradient(x) - y
    norm = residual.norm(dim=1)
    step = torch.ones(len(y), 1, dtype=y.dtype, device=y.device)
    for _ in range(iterations):
        trial = x - step * (residual @ precond)
        trial_residual = phi.gradient(trial) - y
        trial_norm = trial_residual.norm(dim=1)
        better = (trial_norm < norm)[:, None]
        x = torch.where(better, trial, x)
        residual = torch.where(better, trial_residual, residual)
        norm = torch.minimum(trial_norm, norm)
        step = torch.where(better, (2 * step).clamp(max=1.0), step / 2)
    return x.detach(), norm


def _indices(n: int, rows: int, weights: Tensor | None, generator: torch.Generator) -> Tensor:
    if weights is None:
        return torch.randperm(n, generator=generator)[:rows] if rows < n else torch.arange(n)
    return weighted_indices(weights, rows, generator)


def _split(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Training and held-out row indices (a fifth held out, at most HELD_OUT_ROWS)."""
    order = torch.randperm(n, generator=generator)
    n_held = min(HELD_OUT_ROWS, n // 5)
    return order[n_held:], order[:n_held]


def _mean(values: Tensor, w: Tensor | None) -> Tensor:
    return values.mean() if w is None else (values * w).sum() / w.sum()


def fit_brenier(
    x_p: Tensor,
    x_q: Tensor,
    *,
    steps: int,
    generator: torch.Generator,
    weights: tuple[Tensor | None, Tensor | None] = (None, None),
) -> tuple[ConvexPotential, Tensor, Tensor]:
    """Fit ``phi`` by the semi-dual in ``steps`` Adam steps on batches of both samples.

    A fifth of each sample is held out: the semi-dual on those rows is
    estimated every ``steps / 20`` steps (and at the start, the Bures map),
    and the state where it is smallest is kept, so that a residual that fits
    the sample's noise (small samples) is not kept; with fewer than five rows
    on a side nothing is held out and the Bures start is kept. Returns the potential,
    ``grad phi*`` of every row of ``x_q`` (solved to convergence at the end)
    and the solver's residual norm for each of those rows.
    """
    w_p, w_q = weights
    A, m_p, m_q = bures_map(x_p, x_q, w_p, w_q)
    dtype, device = x_p.dtype, x_p.device
    phi = ConvexPotential(A.to(dtype), m_p.to(dtype), m_q.to(dtype)).to(device)  # torch's RNG: seeded by the caller
    A_inv = torch.linalg.inv(A).to(device, dtype)
    pulled = (x_q - m_q.to(device, dtype)) @ A_inv + m_p.to(device, dtype)  # warm starts: Bures inverse
    (train_p, held_p), (train_q, held_q) = _split(len(x_p), generator), _split(len(x_q), generator)
    sub = lambda w, idx: None if w is None else w[idx]  # noqa: E731
    train_wp, train_wq = sub(w_p, train_p), sub(w_q, train_q)

    def held_out_semi_dual() -> float:
        if len(held_p) == 0 or len(held_q) == 0:
            return 0.0
        y = x_q[held_q]
        solved, _ = solve_conjugate(phi, y, pulled[held_q], STEP_ITERATIONS)
        pulled[held_q] = solved
        with torch.no_grad():
            conjugate = (solved * y).sum(1) - phi(solved)
            value = _mean(phi(x_p[held_p]), sub(w_p, held_p)) + _mean(conjugate, sub(w_q, held_q))
        return float(value)

    optimizer = torch.optim.Adam(phi.parameters(), lr=LEARNING_RATE)
    scheduler = cosine_schedule(optimizer, steps)
    rows = min(BATCH_ROWS, max(len(train_p), len(train_q)))
    check = max(1, steps // 20)
    best_value, best_state = held_out_semi_dual(), copy.deepcopy(phi.state_dict())
    for step in range(steps):
        ip = train_p[_indices(len(train_p), rows, train_wp, generator)].to(device)
        iq = train_q[_indices(len(train_q), rows, train_wq, generator)].to(device)
        solved, _ = solve_conjugate(phi, x_q[iq], pulled[iq], STEP_ITERATIONS)
        pulled[iq] = solved
        # Envelope theorem: d/dtheta phi*(y) = -d/dtheta phi(grad phi*(y)).
        loss = phi(x_p[ip]).mean() - phi(solved).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        phi.project_()
        if (step + 1) % CHECK_EVERY == 0 and not math.isfinite(float(loss.detach())):
            raise TrainingDiverged("the Brenier potential's semi-dual is not finite")
        if (step + 1) % check == 0 or step + 1 == steps:
            value = held_out_semi_dual()
            if value < best_value:
                best_value, best_state = value, copy.deepcopy(phi.state_dict())
    phi.load_state_dict(best_state)
    pulled, residual = solve_conjugate(phi, x_q, pulled, FINAL_ITERATIONS)
    return phi.requires_grad_(False), pulled, residual


def brenier_pairs(
    x_p: Tensor,
    x_q: Tensor,
    *,
    steps: int,
    generator: torch.Generator,
    weights: tuple[Tensor | None, Tensor | None] = (None, None),
    **_: object,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Sources, targets and row weights of the pairs that train the flow.

    Every row of P with its image ``grad phi(x)`` and every row of Q with its
    pre-image ``grad phi*(y)``; each side keeps its share of the pairs (its
    number of rows) and its rows' relative weights, except that a row of Q
    whose pre-image the solver did not find (residual above ``SOLVED``)
    gets weight zero.
    """
    phi, pulled, residual = fit_brenier(x_p, x_q, steps=steps, generator=generator, weights=weights)
    sources = torch.cat([x_p, pulled])
    targets = torch.cat([phi.gradient(x_p).detach(), x_q])
    w_p, w_q = weights
    solved = residual < SOLVED
    if solved.all() and w_p is None and w_q is None:
        return sources, targets, None
    if w_q is None:
        w_q = torch.ones(len(x_q), dtype=x_q.dtype, device=x_q.device)
    if solved.any():
        w_q = w_q * solved  # a row of Q whose pre-image was not found pairs with nothing
    shares = [
        torch.ones(len(x), dtype=x.dtype, device=x.device) if w is None else w * (len(x) / w.sum())
        for x, w in ((x_p, w_p), (x_q, w_q))
    ]
    return sources, targets, torch.cat(shares)
