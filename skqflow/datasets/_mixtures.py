"""Two-dimensional Gaussian-mixture pairs with their exact log density ratio."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_random_state

# ---------------------------------------------------------------------------
# Gaussian mixtures in 2-D with exact log-ratios (paper section 4.2)
# ---------------------------------------------------------------------------


__all__ = ["GaussianMixturePair", "make_gaussian_mixture_pair"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_mixture(weights, means, covariances, side):
    w = np.asarray(weights, dtype=float).ravel()
    m = np.asarray(means, dtype=float)
    c = np.asarray(covariances, dtype=float)
    if m.ndim != 2 or m.shape[0] != len(w):
        raise ValueError(f"means_{side} must have shape ({len(w)}, n_features), got {m.shape}.")
    n, d = m.shape
    if c.shape != (n, d, d):
        raise ValueError(f"covariances_{side} must have shape {(n, d, d)}, got {c.shape}.")
    if np.any(w <= 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"weights_{side} must be positive and sum to 1, got {w}.")
    try:
        chol = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise ValueError(f"covariances_{side} must be symmetric positive definite.") from None
    if not np.allclose(c, np.swapaxes(c, 1, 2)):
        raise ValueError(f"covariances_{side} must be symmetric positive definite.")
    out = []
    for a in (w / w.sum(), m.copy(), c.copy(), chol):
        a.flags.writeable = False
        out.append(a)
    return out


def _mixture_log_pdf(X, weights, means, chol):
    d = means.shape[1]
    diff = X[None, :, :] - means[:, None, :]  # (K, n, d)
    # Solve L z = diff for each component.
    z = np.linalg.solve(chol[:, None, :, :], diff[..., None])[..., 0]
    log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)  # half log det
    comp = -0.5 * np.einsum("knd,knd->kn", z, z) - log_det[:, None] - 0.5 * d * _LOG_2PI
    return logsumexp(comp + np.log(weights)[:, None], axis=0)


def _mixture_sample(n, weights, means, chol, rng):
    labels = rng.choice(len(weights), size=n, p=weights)
    eps = rng.standard_normal((n, means.shape[1]))
    return means[labels] + np.einsum("nij,nj->ni", chol[labels], eps)


@dataclass(frozen=True, eq=False)
class GaussianMixturePair:
    """Two Gaussian mixtures P and Q with exact log densities and log-ratio.

    Built by :func:`make_gaussian_mixture_pair` (2-D, P with three components and Q with two,
    the paper's section 4.2 setting), but any dimension and numbers of components work.
    The arrays are copied and made read-only.

    Parameters
    ----------
    weights_p : array-like of shape (n_components_p,)
        Mixing weights of P (positive, summing to 1).
    means_p : array-like of shape (n_components_p, n_features)
        Component means of P.
    covariances_p : array-like of shape (n_components_p, n_features, n_features)
        Component covariances of P (symmetric positive definite).
    weights_q : array-like of shape (n_components_q,)
        Mixing weights of Q.
    means_q : array-like of shape (n_components_q, n_features)
        Component means of Q.
    covariances_q : array-like of shape (n_components_q, n_features, n_features)
        Component covariances of Q.

    Attributes
    ----------
    weights_p, means_p, covariances_p : ndarray
        The parameters of P.
    weights_q, means_q, covariances_q : ndarray
        The parameters of Q.
    n_features : int
        Dimension.

    Examples
    --------
    >>> from skqflow.datasets import make_gaussian_mixture_pair
    >>> pair = make_gaussian_mixture_pair()
    >>> X_p, X_q = pair.sample(500, random_state=0)
    >>> pair.log_ratio(X_q).shape
    (500,)
    """

    weights_p: np.ndarray
    means_p: np.ndarray
    covariances_p: np.ndarray
    weights_q: np.ndarray
    means_q: np.ndarray
    covariances_q: np.ndarray

    def __post_init__(self):
        for side in ("p", "q"):
            w, m, c, chol = _check_mixture(
                getattr(self, f"weights_{side}"),
                getattr(self, f"means_{side}"),
                getattr(self, f"covariances_{side}"),
                side,
            )
            object.__setattr__(self, f"weights_{side}", w)
            object.__setattr__(self, f"means_{side}", m)
            object.__setattr__(self, f"covariances_{side}", c)
            object.__setattr__(self, f"_chol_{side}", chol)
        if self.means_p.shape[1] != self.means_q.shape[1]:
            raise ValueError("P and Q must have the same number of features.")

    @property
    def n_features(self) -> int:
        """Dimension of the samples."""
        return self.means_p.shape[1]

    def sample(self, n_samples, random_state=None, *, n_samples_q=None):
        """Draw ``(X_p, X_q)``.

        Parameters
        ----------
        n_samples : int
            Number of rows from P.
        random_state : int, RandomState instance or None, default=None
            Seed, through :func:`sklearn.utils.check_random_state`.
        n_samples_q : int or None, default=None
            Number of rows from Q; ``None`` means ``n_samples``.

        Returns
        -------
        X_p : ndarray of shape (n_samples, n_features)
        X_q : ndarray of shape (n_samples_q, n_features)
        """
        rng = check_random_state(random_state)
        n_q = n_samples if n_samples_q is None else n_samples_q
        X_p = _mixture_sample(int(n_samples), self.weights_p, self.means_p, self._chol_p, rng)
        X_q = _mixture_sample(int(n_q), self.weights_q, self.means_q, self._chol_q, rng)
        return X_p, X_q

    def _check_X(self, X):
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n_samples, {self.n_features}), got {X.shape}.")
        return X

    def log_p(self, X):
        """Exact ``log p(x)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        return _mixture_log_pdf(self._check_X(X), self.weights_p, self.means_p, self._chol_p)

    def log_q(self, X):
        """Exact ``log q(x)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        return _mixture_log_pdf(self._check_X(X), self.weights_q, self.means_q, self._chol_q)

    def log_ratio(self, X):
        """Exact ``log q(x) - log p(x)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
        """
        X = self._check_X(X)
        return self.log_q(X) - self.log_p(X)


def _rot(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


_GMM_ANGLES = np.deg2rad([90.0, 210.0, 330.0])
_GMM_DEFAULT = {
    "weights_p": np.array([0.4, 0.35, 0.25]),
    "means_p": 2.0 * np.column_stack([np.cos(_GMM_ANGLES), np.sin(_GMM_ANGLES)]),
    "covariances_p": np.array(
        [[[0.4, 0.0], [0.0, 0.4]], [[0.5, 0.1], [0.1, 0.3]], [[0.35, -0.1], [-0.1, 0.45]]]
    ),
    "weights_q": np.array([0.55, 0.45]),
    "means_q": np.array([[1.2, 1.2], [0.0, -2.2]]),
    "covariances_q": np.array([[[0.45, 0.15], [0.15, 0.35]], [[0.5, 0.0], [0.0, 0.3]]]),
}


def make_gaussian_mixture_pair(random_state=None):
    """2-D Gaussian mixtures: P with three components, Q with two (paper section 4.2).

    The paper does not publish its parameters. With ``random_state=None`` (the default) the
    configuration is fixed:

    * P: weights (0.4, 0.35, 0.25); means on a triangle of radius 2, at angles 90, 210 and
      330 degrees, i.e. (0, 2), (-1.732, -1), (1.732, -1); covariances ``0.4 I``,
      ``[[0.5, 0.1], [0.1, 0.3]]`` and ``[[0.35, -0.1], [-0.1, 0.45]]``.
    * Q: weights (0.55, 0.45); means (1.2, 1.2) and (0, -2.2); covariances
      ``[[0.45, 0.15], [0.15, 0.35]]`` and ``[[0.5, 0], [0, 0.3]]``.

    Q overlaps P only partly (its first component sits between P's first and third, its second
    below P's lower two): on rows of P, ``log q/p`` runs from about -14 (0.5% quantile) to 3
    with a median of -4; on rows of Q from about -3 to 12 with a median of 3.

    Parameters
    ----------
    random_state : None, int or RandomState instance, default=None
        ``None``: the fixed configuration above. Otherwise a random perturbation of it: the
        whole layout rotated by a uniform angle, every mean moved by ``N(0, 0.15^2 I)``,
        every covariance scaled by a factor uniform in [0.8, 1.25], and the weights drawn from
        a Dirichlet distribution centred on the defaults (concentration 100).

    Returns
    -------
    pair : GaussianMixturePair
    """
    params = {k: v.copy() for k, v in _GMM_DEFAULT.items()}
    if random_state is not None:
        rng = check_random_state(random_state)
        R = _rot(rng.uniform(0.0, 2.0 * math.pi))
        for side in ("p", "q"):
            m = params[f"means_{side}"] @ R.T
            params[f"means_{side}"] = m + 0.15 * rng.standard_normal(m.shape)
            c = R @ params[f"covariances_{side}"] @ R.T
            c = (c + np.swapaxes(c, 1, 2)) / 2
            params[f"covariances_{side}"] = c * rng.uniform(0.8, 1.25, size=(len(c), 1, 1))
            w = rng.dirichlet(100.0 * params[f"weights_{side}"])
            params[f"weights_{side}"] = np.maximum(w, 1e-3) / np.maximum(w, 1e-3).sum()
    return GaussianMixturePair(**params)
