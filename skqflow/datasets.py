"""Sample generators with known ground truth, for tests, benchmarks and examples.

Standalone: numpy, scipy and scikit-learn only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import sqrtm
from scipy.special import digamma, gammaln, logsumexp
from sklearn.datasets import make_moons
from sklearn.utils import check_random_state

__all__ = [
    "GaussianMixturePair",
    "GaussianPair",
    "MutualInfoPair",
    "make_checkerboard",
    "make_gaussian_mixture_pair",
    "make_gaussian_pair",
    "make_moons_checkerboard",
    "make_mutual_info_pair",
    "make_two_moons",
]


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
        """Draw ``(X_p, X_q)`` with ``n_samples`` (and ``n_samples_q``) rows."""
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
        """The exact optimal transport map ``T*(X)`` from P to Q."""
        return self.mean_q + (np.asarray(X) - self.mean_p) @ self.ot_matrix.T

    def ot_interpolate(self, X, t: float) -> np.ndarray:
        """The dynamic OT path ``(1 - t) x + t T*(x)``."""
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
        """Exact ``log q(x) - log p(x)``."""
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


def make_two_moons(n_samples=1000, *, noise=0.1, random_state=None):
    """Two interleaved moons, scaled to about [-3, 3]² (paper figure 2, P)."""
    X, _ = make_moons(n_samples=n_samples, noise=noise, random_state=check_random_state(random_state))
    return X * 2.0 + np.array([-1.0, -0.2])


def make_checkerboard(n_samples=1000, *, random_state=None):
    """A 4x4 checkerboard on [-4, 4]² with 8 filled squares (paper figure 2, Q)."""
    rng = check_random_state(random_state)
    x1 = rng.uniform(-2, 2, n_samples)
    x2 = rng.uniform(0, 1, n_samples) - 2.0 * rng.randint(0, 2, n_samples) + np.floor(x1) % 2
    return np.column_stack([x1, x2]) * 2.0


def make_moons_checkerboard(n_samples=2000, *, noise=0.1, random_state=None):
    """The paper's two-moons (P) and checkerboard (Q) pair.

    Returns
    -------
    X_p, X_q : ndarray of shape (n_samples, 2)
    """
    rng = check_random_state(random_state)
    return make_two_moons(n_samples, noise=noise, random_state=rng), make_checkerboard(
        n_samples, random_state=rng
    )


# ---------------------------------------------------------------------------
# Mutual information: pairs (X, y) with a known MI and exact log densities
# ---------------------------------------------------------------------------

_MI_KINDS = ("gaussian", "warped", "student_t")
_LOG_2PI = math.log(2.0 * math.pi)


def _identity_t_entropy(k, df):
    """Entropy (nats) of a ``k``-dim multivariate t with identity shape; ``df=inf``: Gaussian."""
    if math.isinf(df):
        return 0.5 * k * (1.0 + _LOG_2PI)
    a, b = 0.5 * df, 0.5 * (df + k)
    return float(
        gammaln(a)
        + 0.5 * k * math.log(df * math.pi)
        - gammaln(b)
        + b * (digamma(b) - digamma(a))
    )


def _multivariate_t_entropy(shape, df):
    """Differential entropy (nats) of a multivariate t with shape matrix ``shape``.

    ``H = 0.5 log det(shape) + log(Gamma(nu/2) (nu pi)^(k/2) / Gamma((nu+k)/2))
    + (nu+k)/2 (psi((nu+k)/2) - psi(nu/2))``; ``df=inf`` gives the Gaussian entropy.
    """
    shape = np.atleast_2d(np.asarray(shape, dtype=float))
    sign, logdet = np.linalg.slogdet(shape)
    if sign <= 0:
        raise ValueError("shape must be positive definite.")
    return 0.5 * logdet + _identity_t_entropy(shape.shape[0], df)


def _t_dependence_mi(n_features, df):
    """MI (nats) of a d-dim multivariate t with identity shape between its two halves.

    The dependence created by the shared scale alone (``rho = 0``); 0 for ``df=inf``.
    """
    if math.isinf(df):
        return 0.0
    k = n_features // 2
    return 2.0 * _identity_t_entropy(k, df) - _identity_t_entropy(n_features, df)


def _check_mi_n_features(n_features):
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)):
        raise TypeError(f"n_features must be an int, got {n_features!r}.")
    d = int(n_features)
    if d < 2 or d % 2:
        raise ValueError(
            f"n_features must be an even integer >= 2 (X and y have n_features / 2 columns "
            f"each), got {d}."
        )
    return d


def _warp_x(z):
    return z * np.sqrt(np.abs(z))


def _unwarp_x(u):
    c = np.cbrt(u)
    return c * np.abs(c)  # sign(u) |u|^(2/3)


def _log_abs_dunwarp_x(u):
    # d/du [sign(u) |u|^(2/3)] = (2/3) |u|^(-1/3); +inf at u = 0 (integrable singularity).
    with np.errstate(divide="ignore"):
        return math.log(2.0 / 3.0) - np.log(np.abs(u)) / 3.0


def _warp_y(z):
    return np.arcsinh(2.0 * z)


def _unwarp_y(v):
    with np.errstate(over="ignore"):  # |v| > ~710: latent +-inf, density 0
        return 0.5 * np.sinh(v)


def _log_abs_dunwarp_y(v):
    # d/dv [sinh(v) / 2] = cosh(v) / 2.
    return np.logaddexp(v, -v) - 2.0 * math.log(2.0)


@dataclass(frozen=True)
class MutualInfoPair:
    """A pair of random vectors ``(X, y)`` with a known mutual information.

    The joint law of ``(X, y)`` has ``n_features = d`` coordinates, ``d / 2`` for ``X`` and
    ``d / 2`` for ``y``. Coordinate ``i`` of ``X`` is correlated with coordinate ``i`` of ``y``
    only: the (latent) joint correlation, or shape, matrix is block diagonal with ``d / 2``
    blocks ``[[1, rho], [rho, 1]]`` (DESIGN.md section 2, the TRE / DRE-infinity task).

    Usually built with :func:`make_mutual_info_pair`, which picks ``rho`` for a target MI.

    Parameters
    ----------
    n_features : int
        Total dimension ``d`` of the joint, even and >= 2.
    rho : float
        Within-pair correlation (shape) coefficient, in ``[0, 1)``.
    kind : {"gaussian", "warped", "student_t"}, default="gaussian"
        ``"gaussian"``: the joint is ``N(0, Sigma)``.
        ``"warped"``: the same Gaussian, then the invertible elementwise maps
        ``x -> x |x|^0.5`` on ``X`` and ``y -> arcsinh(2 y)`` on ``y`` (MI unchanged).
        ``"student_t"``: a zero-mean multivariate Student-t with ``df`` degrees of freedom and
        shape matrix ``Sigma``; the marginals of ``X`` and ``y`` are multivariate t with the
        same ``df`` and identity shape. The shared scale makes ``X`` and ``y`` dependent even
        at ``rho = 0``.
    df : float, default=inf
        Degrees of freedom of the Student-t; must be ``inf`` (the Gaussian limit) for the
        other kinds and finite and > 0 for ``"student_t"``.

    Attributes
    ----------
    n_features : int
        Total dimension ``d``.
    n_features_x, n_features_y : int
        ``d / 2``, the number of columns of ``X`` and of ``y``.
    rho : float
        Within-pair correlation coefficient.
    kind : str
        The family, see above.
    df : float
        Degrees of freedom (``inf`` for ``"gaussian"`` and ``"warped"``).
    mutual_info : float
        Exact mutual information ``I(X; y)`` in nats.

    Examples
    --------
    >>> from skqflow.datasets import make_mutual_info_pair
    >>> pair = make_mutual_info_pair(n_features=10)
    >>> round(pair.mutual_info, 12)
    2.5
    >>> X, y = pair.sample(100, random_state=0)
    >>> X.shape, y.shape
    ((100, 5), (100, 5))
    """

    n_features: int
    rho: float
    kind: str = "gaussian"
    df: float = math.inf

    def __post_init__(self):
        d = _check_mi_n_features(self.n_features)
        if self.kind not in _MI_KINDS:
            raise ValueError(f"kind must be one of {_MI_KINDS}, got {self.kind!r}.")
        rho = float(self.rho)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {self.rho!r}.")
        df = float(self.df)
        if self.kind == "student_t":
            if not (df > 0 and math.isfinite(df)):
                raise ValueError(f"df must be finite and > 0 for kind='student_t', got {self.df!r}.")
        elif not math.isinf(df):
            raise ValueError(f"df applies to kind='student_t' only; kind={self.kind!r} needs df=inf.")
        object.__setattr__(self, "n_features", d)
        object.__setattr__(self, "rho", rho)
        object.__setattr__(self, "df", df)

    @property
    def n_features_x(self) -> int:
        """Number of columns of ``X`` (``n_features / 2``)."""
        return self.n_features // 2

    @property
    def n_features_y(self) -> int:
        """Number of columns of ``y`` (``n_features / 2``)."""
        return self.n_features // 2

    @property
    def mutual_info(self) -> float:
        """Exact mutual information ``I(X; y)`` in nats.

        ``-(d / 4) log(1 - rho^2)``, plus, for ``"student_t"``,
        ``2 H_t(d/2) - H_t(d)`` (the MI of the t with identity shape, i.e. at ``rho = 0``),
        from ``I = H(X) + H(y) - H(X, y)`` and the closed-form entropy of the multivariate t.
        """
        gaussian_part = -0.25 * self.n_features * math.log1p(-self.rho**2)
        return gaussian_part + _t_dependence_mi(self.n_features, self.df)

    # -- sampling -----------------------------------------------------------------------------

    def _sample_latent(self, n_samples, rng):
        k = self.n_features_x
        e1 = rng.standard_normal((n_samples, k))
        e2 = rng.standard_normal((n_samples, k))
        zx = e1
        zy = self.rho * e1 + math.sqrt(1.0 - self.rho**2) * e2
        if self.kind == "student_t":
            scale = np.sqrt(rng.chisquare(self.df, size=(n_samples, 1)) / self.df)
            zx, zy = zx / scale, zy / scale
        return zx, zy

    def sample(self, n_samples, random_state=None):
        """Draw rows from the joint law of ``(X, y)``.

        Parameters
        ----------
        n_samples : int
            Number of rows.
        random_state : int, RandomState instance or None, default=None
            Seed, through :func:`sklearn.utils.check_random_state`.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features / 2)
        y : ndarray of shape (n_samples, n_features / 2)
        """
        rng = check_random_state(random_state)
        zx, zy = self._sample_latent(int(n_samples), rng)
        if self.kind == "warped":
            return _warp_x(zx), _warp_y(zy)
        return zx, zy

    def sample_product(self, n_samples, random_state=None):
        """Draw rows from the product of the marginals, ``p(x) p(y)``.

        ``X`` and ``y`` come from two independent joint draws.

        Parameters
        ----------
        n_samples : int
            Number of rows.
        random_state : int, RandomState instance or None, default=None
            Seed, through :func:`sklearn.utils.check_random_state`.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features / 2)
        y : ndarray of shape (n_samples, n_features / 2)
        """
        rng = check_random_state(random_state)
        X, _ = self.sample(n_samples, rng)
        _, y = self.sample(n_samples, rng)
        return X, y

    # -- densities ----------------------------------------------------------------------------

    def _check_side(self, A, name):
        A = np.asarray(A, dtype=float)
        k = self.n_features_x
        if A.ndim == 1 and k == 1:
            A = A[:, None]
        if A.ndim != 2 or A.shape[1] != k:
            raise ValueError(f"{name} must have shape (n_samples, {k}), got {A.shape}.")
        return A

    def _check_pair(self, X, y):
        X, y = self._check_side(X, "X"), self._check_side(y, "y")
        if len(X) != len(y):
            raise ValueError(f"X and y have different numbers of rows: {len(X)} and {len(y)}.")
        return X, y

    def _latent_x(self, X):
        """Latent coordinates of ``X`` and the log-Jacobian of the map back to them."""
        if self.kind == "warped":
            return _unwarp_x(X), _log_abs_dunwarp_x(X).sum(axis=1)
        return X, 0.0

    def _latent_y(self, y):
        if self.kind == "warped":
            return _unwarp_y(y), _log_abs_dunwarp_y(y).sum(axis=1)
        return y, 0.0

    def _latent_log_marginal(self, Z):
        k = Z.shape[1]
        sq = np.einsum("ij,ij->i", Z, Z)
        if self.kind == "student_t":
            nu = self.df
            const = gammaln(0.5 * (nu + k)) - gammaln(0.5 * nu) - 0.5 * k * math.log(nu * math.pi)
            return const - 0.5 * (nu + k) * np.log1p(sq / nu)
        return -0.5 * sq - 0.5 * k * _LOG_2PI

    def _latent_log_joint(self, Zx, Zy):
        k = Zx.shape[1]
        d = 2 * k
        one_m_r2 = 1.0 - self.rho**2
        # (x^2 - 2 rho x y + y^2) / (1 - rho^2) = (x - rho y)^2 / (1 - rho^2) + y^2
        resid = Zx - self.rho * Zy
        maha = np.einsum("ij,ij->i", resid, resid) / one_m_r2 + np.einsum("ij,ij->i", Zy, Zy)
        half_logdet = 0.5 * k * math.log(one_m_r2)
        if self.kind == "student_t":
            nu = self.df
            const = gammaln(0.5 * (nu + d)) - gammaln(0.5 * nu) - 0.5 * d * math.log(nu * math.pi)
            return const - half_logdet - 0.5 * (nu + d) * np.log1p(maha / nu)
        return -0.5 * maha - half_logdet - 0.5 * d * _LOG_2PI

    def log_joint(self, X, y):
        """Exact ``log p(x, y)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features / 2)
        y : array-like of shape (n_samples, n_features / 2)
            A 1-D ``X`` or ``y`` is accepted when ``n_features == 2``.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            For ``"warped"`` it includes the log-Jacobians of the inverse maps (the density is
            ``+inf`` where a coordinate of ``X`` is exactly 0, an integrable singularity).
        """
        X, y = self._check_pair(X, y)
        zx, jx = self._latent_x(X)
        zy, jy = self._latent_y(y)
        return self._latent_log_joint(zx, zy) + jx + jy

    def log_marginal_x(self, X):
        """Exact marginal ``log p(x)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features / 2)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        X = self._check_side(X, "X")
        zx, jx = self._latent_x(X)
        return self._latent_log_marginal(zx) + jx

    def log_marginal_y(self, y):
        """Exact marginal ``log p(y)`` of each row.

        Parameters
        ----------
        y : array-like of shape (n_samples, n_features / 2)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        y = self._check_side(y, "y")
        zy, jy = self._latent_y(y)
        return self._latent_log_marginal(zy) + jy

    def log_ratio(self, X, y):
        """Exact ``log p(x) + log p(y) - log p(x, y)``: product over joint, at each row.

        ``-E_joint[log_ratio] = mutual_info``. The Jacobians of the ``"warped"`` maps cancel,
        so it is computed in the latent coordinates (finite even where ``X`` has a 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features / 2)
        y : array-like of shape (n_samples, n_features / 2)

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
        """
        X, y = self._check_pair(X, y)
        zx, _ = self._latent_x(X)
        zy, _ = self._latent_y(y)
        return (
            self._latent_log_marginal(zx)
            + self._latent_log_marginal(zy)
            - self._latent_log_joint(zx, zy)
        )


def make_mutual_info_pair(n_features=10, mutual_info=None, *, kind="gaussian", df=5.0):
    """A pair ``(X, y)`` with a prescribed mutual information (the TRE / DRE-infinity task).

    Parameters
    ----------
    n_features : int, default=10
        Total dimension ``d`` of the joint, even and >= 2; ``X`` and ``y`` have ``d / 2``
        columns each and coordinate ``i`` of ``X`` depends on coordinate ``i`` of ``y`` only.
    mutual_info : float or None, default=None
        Target ``I(X; y)`` in nats, >= 0 (0: independent for the Gaussian kinds). ``None``
        means ``d / 4``, the paper's setting.
    kind : {"gaussian", "warped", "student_t"}, default="gaussian"
        See :class:`MutualInfoPair`.
    df : float, default=5.0
        Degrees of freedom, used by ``kind="student_t"`` only (ignored otherwise, where the
        pair's ``df`` is ``inf``).

    Returns
    -------
    pair : MutualInfoPair
        With ``pair.mutual_info`` equal to the target (up to rounding).

    Raises
    ------
    ValueError
        If ``n_features`` is odd or < 2, ``mutual_info`` is negative or not finite, ``kind``
        is unknown, ``df`` is not > 0, or, for ``"student_t"``, the target is below the MI
        that the shared scale alone creates at ``rho = 0``.

    Notes
    -----
    ``"gaussian"`` and ``"warped"``: ``rho = sqrt(1 - exp(-4 MI / d))`` so that
    ``MI = -(d / 4) log(1 - rho^2)``.

    ``"student_t"``: ``MI = H(X) + H(y) - H(X, y)`` with the closed-form entropy of the
    multivariate t. ``log det`` of the shape matrix enters ``H(X, y)`` only, so
    ``MI(rho) = MI_t(0) - (d / 4) log(1 - rho^2)``: increasing in ``rho`` with the same
    closed-form inverse as the Gaussian (no root finding needed). ``MI_t(0)``, the minimum
    achievable, is ``MutualInfoPair(d, 0.0, "student_t", df).mutual_info``; at ``df=5`` it
    is about 0.166, 0.329, 0.558, 0.836 and 1.145 nats for ``d`` = 10, 20, 40, 80 and 160,
    far below ``d / 4``.

    Examples
    --------
    >>> from skqflow.datasets import make_mutual_info_pair
    >>> pair = make_mutual_info_pair(40, kind="student_t", df=5.0)
    >>> round(pair.mutual_info, 9)
    10.0
    """
    d = _check_mi_n_features(n_features)
    if kind not in _MI_KINDS:
        raise ValueError(f"kind must be one of {_MI_KINDS}, got {kind!r}.")
    target = 0.25 * d if mutual_info is None else float(mutual_info)
    if not (math.isfinite(target) and target >= 0):
        raise ValueError(f"mutual_info must be finite and >= 0 (nats), got {mutual_info!r}.")
    if kind == "student_t":
        df = float(df)
        if not (df > 0 and math.isfinite(df)):
            raise ValueError(f"df must be finite and > 0, got {df!r}.")
        floor = _t_dependence_mi(d, df)
        if target < floor:
            raise ValueError(
                f"mutual_info={target:g} nats is unreachable for kind='student_t' with "
                f"n_features={d}, df={df:g}: the shared scale of the t alone (rho=0) already "
                f"gives {floor:.6g} nats, the minimum achievable mutual information."
            )
        excess = target - floor
    else:
        df = math.inf
        excess = target
    rho = math.sqrt(-math.expm1(-4.0 * excess / d))
    if rho >= 1.0:
        raise ValueError(f"mutual_info={target:g} nats is too large for n_features={d} (rho -> 1).")
    return MutualInfoPair(n_features=d, rho=rho, kind=kind, df=df)


# ---------------------------------------------------------------------------
# Gaussian mixtures in 2-D with exact log-ratios (paper section 4.2)
# ---------------------------------------------------------------------------


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
