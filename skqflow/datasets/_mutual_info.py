"""Pairs (X, y) with a known mutual information and exact log densities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln
from sklearn.utils import check_random_state

# ---------------------------------------------------------------------------
# Mutual information: pairs (X, y) with a known MI and exact log densities
# ---------------------------------------------------------------------------

__all__ = [
    "MI_TRANSFORMS", "MutualInfoPair", "TransformedMutualInfoPair", "make_low_mutual_info_tasks",
    "make_mutual_info_pair",
]

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
# Invertible transforms of each variable: the MI of the pair they start from
# ---------------------------------------------------------------------------


def _spiral(A, sign):
    """Rotate consecutive coordinate pairs by an angle of 1.5 times their radius (volume-preserving)."""
    A = np.array(A, dtype=float, copy=True)
    for j in range(0, A.shape[1] - 1, 2):
        a, b = A[:, j].copy(), A[:, j + 1].copy()
        theta = sign * 1.5 * np.hypot(a, b)  # the radius is unchanged, so the inverse turns back
        c, s = np.cos(theta), np.sin(theta)
        A[:, j], A[:, j + 1] = c * a - s * b, s * a + c * b
    return A


def _bimodal_inverse(v):
    """Inverse of ``x + 2 tanh(4 x)`` by bisection: the root lies in ``[v - 2, v + 2]``."""
    v = np.asarray(v, dtype=float)
    lo, hi = v - 2.0, v + 2.0
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        above = mid + 2.0 * np.tanh(4.0 * mid) > v
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return 0.5 * (lo + hi)


#: Invertible maps of one variable (rows of shape (n, k)) -> (forward, inverse).
#: Each changes the marginals but not the mutual information.
MI_TRANSFORMS = {
    "identity": (lambda A: A, lambda A: A),
    # heavy, exponential tails
    "sinh": (lambda A: np.sinh(2.0 * A), lambda A: 0.5 * np.arcsinh(A)),
    # polynomial tails
    "cube": (lambda A: A**3, np.cbrt),
    # skewed, log-normal marginals
    "exp": (np.exp, np.log),
    # bimodal marginals (increasing, so invertible: derivative 1 + 8 sech^2(4x))
    "bimodal": (lambda A: A + 2.0 * np.tanh(4.0 * A), _bimodal_inverse),
    # pairs of coordinates wound into spirals (not a per-coordinate map)
    "spiral": (lambda A: _spiral(A, 1.0), lambda A: _spiral(A, -1.0)),
}


@dataclass(frozen=True)
class TransformedMutualInfoPair:
    """A :class:`MutualInfoPair` with an invertible map applied to ``X`` and another to ``y``.

    Mutual information is unchanged by invertible maps of each variable, so
    ``mutual_info`` is exact: the MI of ``base`` (Gaussian, or multivariate
    Student-t, whose MI is closed form even with identity shape, where ``X``
    and ``y`` are uncorrelated yet dependent).

    Parameters
    ----------
    base : MutualInfoPair
        The pair before the maps.
    transform_x, transform_y : str
        Keys of :data:`MI_TRANSFORMS`: ``"identity"``, ``"sinh"`` (heavy
        tails), ``"cube"``, ``"exp"`` (skewed), ``"bimodal"``, ``"spiral"``
        (consecutive coordinate pairs rotated by an angle that grows with
        their radius).

    Attributes
    ----------
    mutual_info : float
        Exact ``I(X; y)`` in nats.
    n_features_x, n_features_y : int
        Columns of ``X`` and ``y``.

    Examples
    --------
    >>> from skqflow.datasets import make_mutual_info_pair, TransformedMutualInfoPair
    >>> pair = TransformedMutualInfoPair(make_mutual_info_pair(4, 0.5), "bimodal", "spiral")
    >>> round(pair.mutual_info, 9)
    0.5
    """

    base: MutualInfoPair
    transform_x: str = "identity"
    transform_y: str = "identity"

    def __post_init__(self):
        for name in (self.transform_x, self.transform_y):
            if name not in MI_TRANSFORMS:
                raise ValueError(f"unknown transform {name!r}; choose from {sorted(MI_TRANSFORMS)}")

    @property
    def mutual_info(self) -> float:
        """Exact ``I(X; y)`` in nats (that of ``base``)."""
        return self.base.mutual_info

    @property
    def n_features_x(self) -> int:
        """Columns of ``X``."""
        return self.base.n_features_x

    @property
    def n_features_y(self) -> int:
        """Columns of ``y``."""
        return self.base.n_features_y

    def sample(self, n_samples, random_state=None):
        """Draw rows ``(X, y)`` of the joint law.

        Parameters
        ----------
        n_samples : int
            Number of rows.
        random_state : int, RandomState instance or None, default=None
            Seed, through :func:`sklearn.utils.check_random_state`.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_x)
        y : ndarray of shape (n_samples, n_features_y)
        """
        X, y = self.base.sample(n_samples, random_state)
        return MI_TRANSFORMS[self.transform_x][0](X), MI_TRANSFORMS[self.transform_y][0](y)

    def inverse(self, X, y):
        """The rows of ``base`` that ``(X, y)`` came from (the inverse maps).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_x)
        y : array-like of shape (n_samples, n_features_y)

        Returns
        -------
        X_base : ndarray of shape (n_samples, n_features_x)
        y_base : ndarray of shape (n_samples, n_features_y)
        """
        return MI_TRANSFORMS[self.transform_x][1](np.asarray(X, float)), MI_TRANSFORMS[self.transform_y][1](
            np.asarray(y, float)
        )

    def log_ratio(self, X, y):
        """Exact ``log p(x) p(y) / p(x, y)`` (the Jacobians of the maps cancel).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_x)
        y : array-like of shape (n_samples, n_features_y)

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
        """
        return self.base.log_ratio(*self.inverse(X, y))


def make_low_mutual_info_tasks():
    """The small-problem benchmark set: MI 0.2-2 nats, ``X`` and ``y`` of 1 to 25 columns.

    Gaussian pairs through heavy-tailed, skewed, bimodal and spiral maps of
    each variable, and multivariate Student-t pairs (1 to 3 degrees of
    freedom) with identity shape, where ``X`` and ``y`` are uncorrelated yet
    dependent and a Gaussian plug-in sees nothing, or with correlation.

    Returns
    -------
    tasks : dict of str to TransformedMutualInfoPair
        Name ``"<base> <k>+<k> <transform_x>/<transform_y>"`` to pair.
    """
    specs = [
        # (kind, columns per side, MI or None for the identity-shape t, df, transform_x, transform_y)
        ("gaussian", 1, 0.5, None, "identity", "identity"),
        ("gaussian", 1, 1.0, None, "cube", "sinh"),
        ("gaussian", 1, 2.0, None, "bimodal", "exp"),
        ("gaussian", 2, 0.2, None, "bimodal", "bimodal"),
        ("gaussian", 2, 1.0, None, "spiral", "spiral"),
        ("gaussian", 3, 0.5, None, "exp", "cube"),
        ("gaussian", 5, 1.0, None, "sinh", "bimodal"),
        ("gaussian", 5, 2.0, None, "spiral", "exp"),
        ("gaussian", 10, 1.0, None, "cube", "spiral"),
        ("gaussian", 25, 0.5, None, "identity", "identity"),
        ("gaussian", 25, 2.0, None, "bimodal", "sinh"),
        ("student_t", 1, None, 1.0, "identity", "identity"),
        ("student_t", 2, None, 1.0, "identity", "identity"),
        ("student_t", 5, None, 2.0, "identity", "identity"),
        ("student_t", 10, None, 2.0, "cube", "spiral"),
        ("student_t", 25, None, 3.0, "identity", "identity"),
        ("student_t", 1, 0.8, 1.0, "identity", "cube"),
        ("student_t", 5, 1.5, 3.0, "bimodal", "identity"),
    ]
    tasks = {}
    for kind, k, mi, df, tx, ty in specs:
        if kind == "student_t":
            base = (MutualInfoPair(2 * k, 0.0, "student_t", df) if mi is None
                    else make_mutual_info_pair(2 * k, mi, kind="student_t", df=df))
            name = f"t{df:g} {k}+{k} " + ("identity-shape" if mi is None else "correlated") + f" {tx}/{ty}"
        else:
            base = make_mutual_info_pair(2 * k, mi)
            name = f"gaussian {k}+{k} {tx}/{ty}"
        tasks[name] = TransformedMutualInfoPair(base, tx, ty)
    return tasks
