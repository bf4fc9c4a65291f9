"""Label-free criteria of a fitted flow: how well it fits, and how far its map is from optimal.

The score of :class:`~skqflow.OTFlowTransformer` adds, for each direction,
the energy distance between the pushed rows and the other sample (the fit)
and the square of the antisymmetric share of the map's Jacobian (the
optimality). Both are scale-free in the flow's standardised coordinates,
both are zero for the optimal transport map, and both grow as the square of
a small error of the map (the energy distance of a misfit, the squared share
of a rotation), so neither swamps the other. The second needs no second
sample, so it has no sampling bias, and it sees the rotation that a flow of
badly paired rows adds to the optimal map, which the fit does not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .flow import weighted_mean
from .flowmap import FlowMap
from .losses import energy_distance

__all__ = ["antisymmetric_share", "fit_and_optimality", "push_forward_fit"]

#: Probe pairs per row for the Jacobian's asymmetry (:meth:`.FlowMap.jacobian_probes`).
N_PROBES = 2


def antisymmetric_share(
    fmap: FlowMap, z: Tensor, start: float, stop: float, weights: Tensor | None = None
) -> Tensor:
    """``||A|| / ||J||`` over the rows ``z``, for the Jacobian ``J`` of the map from ``start`` to ``stop``.

    ``A = (J - J^T) / 2`` is the antisymmetric part of ``J``; the squared
    norms are (weighted) means over the rows of Hutchinson estimates
    (:meth:`.FlowMap.jacobian_probes`), so the share is
    ``sqrt(mean curl / (2 mean size))``. It is 0 for a gradient map, as every
    optimal transport map for the squared distance is (Brenier), and at most
    1; for a linear map ``x -> M x`` it is ``||M - M^T|| / (2 ||M||)`` in the
    Frobenius norm. The map from Q back to P has the inverse Jacobian, which
    is symmetric exactly when ``J`` is.
    """
    curl, size = fmap.jacobian_probes(z, start, stop, n_probes=N_PROBES)
    curl, size = weighted_mean(curl.double(), weights), weighted_mean(size.double(), weights)
    return (curl / (2.0 * size).clamp_min(torch.finfo(size.dtype).tiny)).clamp(0.0, 1.0).sqrt()


def push_forward_fit(
    fmap: FlowMap, zp: Tensor, zq: Tensor, weights: tuple[Tensor | None, Tensor | None] = (None, None)
) -> Tensor:
    """Energy distance between ``T(zp)`` and ``zq`` plus that between ``T^{-1}(zq)`` and ``zp``."""
    wp, wq = weights
    with torch.no_grad():
        return energy_distance(fmap.push(zp, 0.0, 1.0), zq, (wp, wq)) + energy_distance(
            fmap.push(zq, 1.0, 0.0), zp, (wq, wp)
        )


def fit_and_optimality(
    fmap: FlowMap, zp: Tensor, zq: Tensor, weights: tuple[Tensor | None, Tensor | None] = (None, None)
) -> dict[str, float]:
    """The two parts of the flow's score on rows ``zp`` of P and ``zq`` of Q (standardised).

    ``"energy_distance"``: :func:`push_forward_fit`; ``"asymmetry_squared"``:
    the square of the antisymmetric share of the Jacobian of ``T`` on ``zp``
    plus that of ``T^{-1}`` on ``zq`` (:func:`antisymmetric_share`). The
    shares enter squared so that both parts are of second order in the map's
    error: with the shares themselves, a small rotation outweighs a clear
    misfit, and smooth gradient maps that fit badly (``init="brenier"`` on a
    non-Gaussian pair, a map that cannot tear the moons into the
    checkerboard's squares) outscore accurate ones. ``weights`` (one tensor
    or None for each side) make every mean a weighted mean.
    """
    wp, wq = weights
    forward = antisymmetric_share(fmap, zp, 0.0, 1.0, wp)
    backward = antisymmetric_share(fmap, zq, 1.0, 0.0, wq)
    return {
        "energy_distance": float(push_forward_fit(fmap, zp, zq, weights)),
        "asymmetry_squared": float(forward**2 + backward**2),
    }
