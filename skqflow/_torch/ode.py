"""Fixed-grid RK4 integration that keeps the states at a coarse time grid.

``integrate`` is the one entry point. It integrates ``dx/dt = f(x, t)`` through
the times of a 1-D grid (increasing for P->Q, decreasing for Q->P), taking
``n_substeps`` RK4 steps inside each interval, and returns the state at every
grid time. Optionally it also accumulates the kinetic energy
``int ||f(x(t), t)||^2 dt`` of each row, integrated by the same RK4 steps.
A fixed grid keeps rows independent of each other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["integrate", "integrate_to", "uniform_grid"]

Field = Callable[[Tensor, Tensor], Tensor]


def uniform_grid(start: float, stop: float, n_intervals: int, *, like: Tensor) -> Tensor:
    """``n_intervals + 1`` equally spaced times from ``start`` to ``stop``."""
    return torch.linspace(start, stop, n_intervals + 1, dtype=like.dtype, device=like.device)


def integrate_to(f: Field, x: Tensor, start: float, targets: Tensor, n_steps_unit: int) -> Tensor:
    """States at each of ``targets`` (all on one side of ``start``), shape (T, n, d).

    The path follows the uniform grid ``start + k / n_steps_unit``; a target
    between two grid points is reached by one partial RK4 step from the grid
    point before it. The state at a target therefore does not depend on which
    other targets are asked for, and a target on the grid reproduces a
    plain uniform integration exactly.
    """
    step = 1.0 / n_steps_unit
    offsets = [abs(float(t) - start) for t in targets]
    sign = 1.0 if float(targets.max()) >= start else -1.0
    out = [None] * len(offsets)
    order = sorted(range(len(offsets)), key=offsets.__getitem__)
    k, state = 0, x
    for i in order:
        n_full = int(offsets[i] / step + 1e-9)
        while k < n_full:
            state = _rk4_step(f, state, x.new_tensor(start + sign * k * step), x.new_tensor(sign * step))[0]
            k += 1
        rest = offsets[i] - k * step
        if rest > 1e-12:
            out[i] = _rk4_step(f, state, x.new_tensor(start + sign * k * step), x.new_tensor(sign * rest))[0]
        else:
            out[i] = state
    return torch.stack(out)


def _rk4_step(f: Field, x: Tensor, t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    k1 = f(x, t)
    k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = f(x + h * k3, t + h)
    dx = (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    speed2 = (
        k1.pow(2).sum(-1)
        + 2.0 * k2.pow(2).sum(-1)
        + 2.0 * k3.pow(2).sum(-1)
        + k4.pow(2).sum(-1)
    )
    return x + dx, (h.abs() / 6.0) * speed2


def integrate(
    f: Field,
    x: Tensor,
    times: Tensor,
    n_substeps: int = 1,
    *,
    kinetic: bool = False,
    adjoint: bool = False,
    last_only: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Integrate ``f`` from ``times[0]`` through every ``times[k]``.

    Parameters
    ----------
    f : callable
        Velocity field ``f(x, t)``; for ``adjoint=True`` it must be an
        ``nn.Module``.
    x : Tensor of shape (n, d)
        State at ``times[0]``.
    times : Tensor of shape (K + 1,)
        Monotone grid (increasing or decreasing).
    n_substeps : int
        RK4 steps inside each grid interval.
    kinetic : bool
        Also return the kinetic energy of each row, integrated by RK4.
    adjoint : bool
        Use torchdiffeq's adjoint method (memory O(1) in the number of
        steps) instead of backpropagating through the solver steps.
    last_only : bool
        Return only the final state, shape (n, d), and keep no intermediate
        state alive (prediction memory then does not grow with the steps).

    Returns
    -------
    states : Tensor of shape (K + 1, n, d), or (n, d) with ``last_only``
    energy : Tensor of shape (n,)
        Only when ``kinetic`` is true.
    """
    times = times.to(dtype=x.dtype, device=x.device)
    if adjoint:
        states, energy = _integrate_adjoint(f, x, times, n_substeps)
        states = states[-1] if last_only else states
        return (states, energy) if kinetic else states
    states = [] if last_only else [x]
    energy = x.new_zeros(x.shape[0])
    for k in range(times.numel() - 1):
        h = (times[k + 1] - times[k]) / n_substeps
        for s in range(n_substeps):
            x, e = _rk4_step(f, x, times[k] + s * h, h)
            if kinetic:
                energy = energy + e
        if not last_only:
            states.append(x)
    out = x if last_only else torch.stack(states)
    return (out, energy) if kinetic else out


def _integrate_adjoint(f, x, times, n_substeps):
    from torchdiffeq import odeint_adjoint

    class _Augmented(torch.nn.Module):
        def __init__(self, field):
            super().__init__()
            self.field = field

        def forward(self, t, z):
            v = self.field(z[:, :-1], t)
            sign = 1.0 if float(times[-1] - times[0]) >= 0 else -1.0
            return torch.cat([v, sign * v.pow(2).sum(-1, keepdim=True)], dim=1)

    step = float((times[1:] - times[:-1]).abs().min()) / n_substeps
    z0 = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
    z = odeint_adjoint(_Augmented(f), z0, times, method="rk4", options={"step_size": step})
    return z[..., :-1], z[-1, :, -1]
