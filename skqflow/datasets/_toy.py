"""Two-dimensional toy samples: two moons and a checkerboard (the paper's figure 2)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_moons
from sklearn.utils import check_random_state

__all__ = ["make_checkerboard", "make_moons_checkerboard", "make_two_moons"]

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
