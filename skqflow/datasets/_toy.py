"""Two-dimensional toy samples: two moons and a checkerboard (the paper's figure 2)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_moons
from sklearn.utils import check_random_state

__all__ = [
    "checkerboard_contains", "make_checkerboard", "make_moons_checkerboard", "make_two_moons",
    "moons_distance",
]

def make_two_moons(n_samples=1000, *, noise=0.1, random_state=None):
    """Two interleaved moons, scaled to about [-3, 3]² (paper figure 2, P).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise of
        :func:`sklearn.datasets.make_moons` (before scaling by 2).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    """
    X, _ = make_moons(n_samples=n_samples, noise=noise, random_state=check_random_state(random_state))
    return X * 2.0 + np.array([-1.0, -0.2])


def make_checkerboard(n_samples=1000, *, random_state=None):
    """A 4x4 checkerboard on [-4, 4]² with 8 filled squares (paper figure 2, Q).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows, uniform over the filled squares.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    """
    rng = check_random_state(random_state)
    x1 = rng.uniform(-2, 2, n_samples)
    x2 = rng.uniform(0, 1, n_samples) - 2.0 * rng.randint(0, 2, n_samples) + np.floor(x1) % 2
    return np.column_stack([x1, x2]) * 2.0


def make_moons_checkerboard(n_samples=2000, *, noise=0.1, random_state=None):
    """The paper's two-moons (P) and checkerboard (Q) pair.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of rows of each sample.
    noise : float, default=0.1
        Noise of the moons (see :func:`make_two_moons`).
    random_state : int, RandomState instance or None, default=None
        Seed of both samples.

    Returns
    -------
    X_p, X_q : ndarray of shape (n_samples, 2)
    """
    rng = check_random_state(random_state)
    return make_two_moons(n_samples, noise=noise, random_state=rng), make_checkerboard(
        n_samples, random_state=rng
    )


def checkerboard_contains(X):
    """Whether each row lies in a filled square of :func:`make_checkerboard`.

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)

    Returns
    -------
    inside : ndarray of bool, shape (n_samples,)
    """
    U = np.asarray(X, dtype=float) / 2.0
    cells = np.floor(U)
    in_board = np.all((U >= -2.0) & (U < 2.0), axis=1)
    return in_board & ((cells[:, 0] + cells[:, 1]) % 2 == 0)


def moons_distance(X, *, n_points=2000):
    """Distance of each row to the centre curves of :func:`make_two_moons`.

    The moons are two half circles of radius 2 (before noise): the rows of
    :func:`make_two_moons` with ``noise=0.1`` lie at a distance that is about
    half-normal with scale 0.2 from them.

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)
    n_points : int, default=2000
        Points per half circle of the polyline the distance is taken to.

    Returns
    -------
    distance : ndarray of shape (n_samples,)
    """
    theta = np.linspace(0.0, np.pi, n_points)
    outer = np.column_stack([np.cos(theta), np.sin(theta)])
    inner = np.column_stack([1.0 - np.cos(theta), 0.5 - np.sin(theta)])
    curve = np.concatenate([outer, inner]) * 2.0 + np.array([-1.0, -0.2])
    X = np.asarray(X, dtype=float)
    out = np.empty(len(X))
    for i in range(0, len(X), 1024):
        d2 = ((X[i : i + 1024, None, :] - curve[None]) ** 2).sum(-1)
        out[i : i + 1024] = np.sqrt(d2.min(1))
    return out

