"""A fitted flow: the velocity field with its step count, used by every caller.

:class:`FlowMap` is the one place where a trained field is integrated for
prediction: pushing rows between two times, states at several times, the
kinetic energy, the round-trip error and the asymmetry of the map's
Jacobian. Each method works in chunks of
:data:`CHUNK` rows, without gradient, and keeps only what it returns alive,
so memory does not grow with the number of solver steps.

Nothing here imports scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .ode import integrate, integrate_to, uniform_grid

__all__ = ["CHUNK", "FlowMap"]

#: Rows integrated at once by every prediction path.
CHUNK = 8192


class FlowMap:
    """A trained velocity field and the RK4 steps that carry rows from 0 to 1.

    Parameters
    ----------
    field : nn.Module
        Velocity field ``f(x, t)`` in the flow's (standardised) coordinates.
    n_steps : int
        RK4 steps over the unit interval (``n_time_steps * n_substeps`` of
        the estimator).
    chunk : int, default=CHUNK
        Rows integrated at once.
    """

    def __init__(self, field: nn.Module, n_steps: int, chunk: int = CHUNK) -> None:
        self.field = field
        self.n_steps = int(n_steps)
        self.chunk = int(chunk)

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the field's weights."""
        return next(self.field.parameters()).dtype

    def _steps_between(self, start: float, stop: float) -> int:
        return max(1, round(abs(stop - start) * self.n_steps))

    def push(self, z: Tensor, start: float = 0.0, stop: float = 1.0) -> Tensor:
        """Carry rows ``z`` from time ``start`` to ``stop``; shape (n, d)."""
        grid = uniform_grid(start, stop, self._steps_between(start, stop), like=z)
        with torch.no_grad():
            return torch.cat([integrate(self.field, zb, grid, last_only=True) for zb in z.split(self.chunk)])

    def states(self, z: Tensor, times: Sequence[float] | Tensor, start: float = 0.0) -> Tensor:
        """States at each of ``times`` (either side of ``start``); shape (T, n, d).

        The path follows the uniform grid of :attr:`n_steps` steps a unit of
        time from ``start``; a time between grid points is reached by one
        partial RK4 step (:func:`~.ode.integrate_to`), so the state at a time
        does not depend on the other times asked for.
        """
        times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
        out = z.new_empty((len(times), *z.shape))
        for side in (times >= start, times < start):
            if bool(side.any()):
                with torch.no_grad():
                    out[side] = torch.cat(
                        [integrate_to(self.field, zb, start, times[side], self.n_steps) for zb in z.split(self.chunk)],
                        dim=1,
                    )
        return out

    def grid_states(self, z: Tensor, n_points: int, *, backward: bool = False) -> Tensor:
        """States at ``n_points`` equally spaced times of [0, 1], in increasing time.

        Forward the rows start in P at time 0; ``backward`` they start in Q
        at time 1 and go through the inverse flow. Each of the
        ``n_points - 1`` intervals takes about ``n_steps / (n_points - 1)``
        RK4 steps. Shape (n_points, n, d).
        """
        if n_points == 1:
            return z[None]
        n_sub = max(1, round(self.n_steps / (n_points - 1)))
        start, stop = (1.0, 0.0) if backward else (0.0, 1.0)
        grid = uniform_grid(start, stop, n_points - 1, like=z)
        with torch.no_grad():
            states = torch.cat([integrate(self.field, zb, grid, n_sub) for zb in z.split(self.chunk)], dim=1)
        return states.flip(0) if backward else states

    def transport(self, z: Tensor, start: float = 0.0, stop: float = 1.0) -> tuple[Tensor, Tensor]:
        """End states (n, d) and kinetic energy ``int ||f(x(t), t)||^2 dt`` (n,) of each row."""
        grid = uniform_grid(start, stop, self._steps_between(start, stop), like=z)
        ends, energies = [], []
        with torch.no_grad():
            for zb in z.split(self.chunk):
                end, energy = integrate(self.field, zb, grid, kinetic=True, last_only=True)
                ends.append(end)
                energies.append(energy)
        return torch.cat(ends), torch.cat(energies)

    def kinetic(self, z: Tensor) -> Tensor:
        """Kinetic energy ``int_0^1 ||f(x(t), t)||^2 dt`` of each row of P; shape (n,)."""
        return self.transport(z)[1]

    def round_trip_error(self, z: Tensor, start: float = 0.0) -> Tensor:
        """Squared error ``||T_stop^start(T_start^stop(z)) - z||^2`` of each row; shape (n,)."""
        stop = 1.0 - start
        return (self.push(self.push(z, start, stop), stop, start) - z).pow(2).sum(1)

    def jacobian_probes(
        self, z: Tensor, start: float = 0.0, stop: float = 1.0, *, n_probes: int = 2, seed: int = 0
    ) -> tuple[Tensor, Tensor]:
        """Per-row estimates of ``||J - J^T||_F^2`` and ``2 ||J||_F^2`` for the map's Jacobian ``J``.

        ``J`` is the Jacobian at each row of ``z`` of the map from ``start``
        to ``stop``. For independent standard normal probes ``a`` and ``b``,
        ``(a . J b - b . J a)^2`` has mean ``||J - J^T||_F^2`` and
        ``||J a||^2 + ||J b||^2`` has mean ``2 ||J||_F^2``; each row averages
        ``n_probes`` pairs. Two Jacobian-vector products per pair (forward
        mode, no graph kept); the probes come from a generator seeded with
        ``seed``, so the same rows always give the same estimates. Shapes
        (n,) and (n,).
        """
        grid = uniform_grid(start, stop, self._steps_between(start, stop), like=z)
        gen = torch.Generator(device=z.device).manual_seed(seed)

        def end(x: Tensor) -> Tensor:
            return integrate(self.field, x, grid, last_only=True)

        curls, sizes = [], []
        with torch.no_grad():
            for zb in z.split(self.chunk):
                # probes a_1, b_1, a_2, b_2, ... each (n, d); all pushed through one integration
                probes = torch.stack([
                    torch.randn(zb.shape, generator=gen, device=zb.device, dtype=zb.dtype)
                    for _ in range(2 * n_probes)
                ])
                rows = zb.expand(len(probes), *zb.shape).reshape(-1, zb.shape[1])
                images = torch.func.jvp(end, (rows,), (probes.reshape(-1, zb.shape[1]),))[1].reshape(probes.shape)
                a, b, ja, jb = probes[0::2], probes[1::2], images[0::2], images[1::2]
                curls.append(((a * jb).sum(2) - (b * ja).sum(2)).pow(2).mean(0))
                sizes.append((ja.pow(2).sum(2) + jb.pow(2).sum(2)).mean(0))
        return torch.cat(curls), torch.cat(sizes)
