"""Gaussian pairs with their closed-form optimal transport."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import sqrtm
from sklearn.utils import check_random_state

__all__ = ["GaussianPair", "make_gaussian_pair"]

def _sym_sqrt(S):
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


@dataclass(frozen=True)
class GaussianPair:
    """Two Gaussians P = N(mean_p, cov_p) and Q = N(mean_q, cov_q) with their exact OT.

    Attributes
    ----------
    mean_p, mean_q : ndarray of shape (d,)
    cov_p, cov_q : ndarray of shape (d, d)
    """

    mean_p: np.ndarray
    cov_p: np.ndarray
    mean_q: np.ndarray
    cov_q: np.ndarray

    @property
    def n_features(self) -> int:
        """Dimension ``d``."""
        return len(self.mean_p)

    def sample(self, n_samples: int, random_state=None, *, n_samples_q: int | None = None):
        """Draw ``(X_p, X_q)`` with ``n_samples`` (and ``n_samples_q``) rows.

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
        X_p = rng.multivariate_normal(self.mean_p, self.cov_p, size=n_samples)
        X_q = rng.multivariate_normal(self.mean_q, self.cov_q, size=n_samples_q or n_samples)
        return X_p, X_q

    @property
    def ot_matrix(self) -> np.ndarray:
        """``A`` of the Monge map ``T(x) = m_q + A (x - m_p)``.

        ``A = S^{-1/2} (S^{1/2} Sq S^{1/2})^{1/2} S^{-1/2}`` with ``S = cov_p``.
        """
        s = _sym_sqrt(self.cov_p)
        s_inv = np.linalg.inv(s)
        return s_inv @ _sym_sqrt(s @ self.cov_q @ s) @ s_inv

    def ot_map(self, X) -> np.ndarray:
        """The exact optimal transport map ``T*(X)`` from P to Q.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the space of P.

        Returns
        -------
        X_mapped : ndarray of shape (n_samples, n_features)
            ``m_q + A (x - m_p)`` for each row.
        """
        return self.mean_q + (np.asarray(X) - self.mean_p) @ self.ot_matrix.T

    def ot_interpolate(self, X, t: float) -> np.ndarray:
        """The dynamic OT path ``(1 - t) x + t T*(x)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of P (the paths start there at ``t = 0``).
        t : float
            Time in [0, 1].

        Returns
        -------
        X_t : ndarray of shape (n_samples, n_features)
            The rows at time ``t`` along the straight optimal paths.
        """
        X = np.asarray(X)
        return (1 - t) * X + t * self.ot_map(X)

    @property
    def w2_squared(self) -> float:
        """Exact squared Wasserstein-2 distance between P and Q."""
        s = _sym_sqrt(self.cov_p)
        cross = np.real(sqrtm(s @ self.cov_q @ s))
        return float(
            np.sum((self.mean_p - self.mean_q) ** 2)
            + np.trace(self.cov_p + self.cov_q - 2 * cross)
        )

    def log_ratio(self, X) -> np.ndarray:
        """Exact ``log q(x) - log p(x)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to evaluate the ratio.

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
        """
        from scipy.stats import multivariate_normal

        X = np.asarray(X)
        return multivariate_normal(self.mean_q, self.cov_q).logpdf(X) - multivariate_normal(
            self.mean_p, self.cov_p
        ).logpdf(X)


def _random_cov(d, rng, low, high):
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * rng.uniform(low, high, size=d)) @ Q.T


def make_gaussian_pair(n_features=2, *, shift=1.0, eig_range=(0.5, 2.0), random_state=None):
    """A random pair of Gaussians with different means and covariances.

    Parameters
    ----------
    n_features : int, default=2
        Dimension ``d``.
    shift : float, default=1.0
        Standard deviation of each coordinate of the mean of Q (P has mean 0).
    eig_range : tuple of float, default=(0.5, 2.0)
        Range of the eigenvalues of both covariances (random eigenvectors).
    random_state : int, RandomState instance or None
        Seed.

    Returns
    -------
    pair : GaussianPair
        The two distributions with their exact OT map and W2².
    """
    rng = check_random_state(random_state)
    d = int(n_features)
    return GaussianPair(
        mean_p=np.zeros(d),
        cov_p=_random_cov(d, rng, *eig_range),
        mean_q=shift * rng.standard_normal(d),
        cov_q=_random_cov(d, rng, *eig_range),
    )
