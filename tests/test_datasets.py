"""Ground-truth generators in skqflow.datasets, checked against independent truths."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from skqflow.datasets import (
    GaussianMixturePair,
    GaussianPair,
    MutualInfoPair,
    make_gaussian_mixture_pair,
    make_gaussian_pair,
    make_mutual_info_pair,
)
from skqflow.datasets._mutual_info import _multivariate_t_entropy

KINDS = ["gaussian", "warped", "student_t"]


def _block_sigma(d, rho):
    """The d x d correlation matrix of (X, y) with X = first d/2 columns, y = last d/2."""
    k = d // 2
    eye = np.eye(k)
    return np.block([[eye, rho * eye], [rho * eye, eye]])


# --- mutual information pair -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [2, 6])
def test_mutual_info_matches_monte_carlo(kind, d):
    pair = make_mutual_info_pair(d, kind=kind)
    X, y = pair.sample(200_000, random_state=0)
    assert X.shape == y.shape == (200_000, d // 2)
    r = pair.log_ratio(X, y)
    se = r.std() / math.sqrt(len(r))
    assert abs(-r.mean() - pair.mutual_info) < 4 * se
    assert pair.mutual_info == pytest.approx(d / 4)


@pytest.mark.parametrize("kind", KINDS)
def test_log_ratio_is_product_over_joint(kind):
    pair = make_mutual_info_pair(4, 0.7, kind=kind)
    X, y = pair.sample(500, random_state=1)
    expected = pair.log_marginal_x(X) + pair.log_marginal_y(y) - pair.log_joint(X, y)
    np.testing.assert_allclose(pair.log_ratio(X, y), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_densities_against_scipy(kind):
    # Gaussian / Student-t joint and marginals from scipy with the explicit block matrix; the
    # warped kind adds the log-Jacobians of the inverse maps, written out here from scratch.
    d, k = 6, 3
    pair = make_mutual_info_pair(d, 1.0, kind=kind, df=4.0)
    X, y = pair.sample(300, random_state=2)
    if kind == "warped":
        zx, zy = np.sign(X) * np.abs(X) ** (2 / 3), np.sinh(y) / 2
        jx = np.log(2 / 3 * np.abs(X) ** (-1 / 3)).sum(1)
        jy = np.log(np.cosh(y) / 2).sum(1)
    else:
        zx, zy, jx, jy = X, y, 0.0, 0.0
    sigma = _block_sigma(d, pair.rho)
    if kind == "student_t":
        joint = stats.multivariate_t(np.zeros(d), sigma, df=4.0)
        marg = stats.multivariate_t(np.zeros(k), np.eye(k), df=4.0)
    else:
        joint = stats.multivariate_normal(np.zeros(d), sigma)
        marg = stats.multivariate_normal(np.zeros(k), np.eye(k))
    np.testing.assert_allclose(pair.log_joint(X, y), joint.logpdf(np.hstack([zx, zy])) + jx + jy, rtol=1e-9)
    np.testing.assert_allclose(pair.log_marginal_x(X), marg.logpdf(zx) + jx, rtol=1e-9)
    np.testing.assert_allclose(pair.log_marginal_y(y), marg.logpdf(zy) + jy, rtol=1e-9)


@pytest.mark.parametrize(("k", "df"), [(1, 3.0), (3, 5.0), (4, 2.5)])
def test_t_entropy_formula_matches_monte_carlo(k, df):
    rng = np.random.RandomState(k)
    A = rng.standard_normal((k, k))
    shape = A @ A.T + 0.5 * np.eye(k)
    dist = stats.multivariate_t(np.zeros(k), shape, df=df)
    neg_log_pdf = -dist.logpdf(dist.rvs(size=200_000, random_state=rng)).reshape(-1)
    se = neg_log_pdf.std() / math.sqrt(len(neg_log_pdf))
    assert abs(neg_log_pdf.mean() - _multivariate_t_entropy(shape, df)) < 4 * se


def test_t_entropy_gaussian_limit():
    shape = np.array([[2.0, 0.3], [0.3, 1.0]])
    expected = stats.multivariate_normal(np.zeros(2), shape).entropy()
    assert _multivariate_t_entropy(shape, math.inf) == pytest.approx(expected, rel=1e-12)
    assert _multivariate_t_entropy(shape, 1e7) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("d", [2, 10, 40, 80])
def test_gaussian_rho_formula(d):
    pair = make_mutual_info_pair(d)
    assert pair.rho == pytest.approx(math.sqrt(1 - math.exp(-1)))  # 4 (d/4) / d = 1
    assert -(d / 4) * math.log(1 - pair.rho**2) == pytest.approx(d / 4)
    assert pair.mutual_info == pytest.approx(d / 4)
    assert make_mutual_info_pair(d, kind="warped").rho == pair.rho
    assert make_mutual_info_pair(d, 0.0).rho == 0.0
    assert make_mutual_info_pair(d, 0.0).mutual_info == 0.0


@pytest.mark.parametrize("d", [2, 10, 40])
@pytest.mark.parametrize("df", [1.0, 5.0])
def test_student_t_mutual_info_is_entropy_difference(d, df):
    # I = H(X) + H(y) - H(X, y) from the explicit d x d shape matrix.
    pair = make_mutual_info_pair(d, kind="student_t", df=df)
    k = d // 2
    h_joint = _multivariate_t_entropy(_block_sigma(d, pair.rho), df)
    h_marg = _multivariate_t_entropy(np.eye(k), df)
    assert 2 * h_marg - h_joint == pytest.approx(d / 4, rel=1e-9)
    assert pair.mutual_info == pytest.approx(d / 4, rel=1e-12)
    # The floor is the MI at rho = 0, and it is positive (shared scale).
    floor = MutualInfoPair(d, 0.0, "student_t", df).mutual_info
    assert floor == pytest.approx(2 * h_marg - _multivariate_t_entropy(np.eye(d), df))
    assert 0 < floor < d / 4
    assert make_mutual_info_pair(d, floor, kind="student_t", df=df).rho == pytest.approx(0, abs=1e-6)


def _grid(lo, hi, n):
    s = np.linspace(lo, hi, n)
    return s, np.full(n, s[1] - s[0]) * np.r_[0.5, np.ones(n - 2), 0.5]  # trapezoid weights


# For d = 2, integrate over a grid in (s, t) with (x, y) = (phi(s), psi(t)) and the Jacobian
# phi'(s) psi'(t) written out here: the identity for the Gaussian, sinh for the heavy t tails,
# and for the warped kind the forward warps themselves (so the grid is in the latent
# coordinates, where the density is smooth).
_SUBSTITUTIONS = {
    "gaussian": (
        (lambda s: s, lambda s: np.ones_like(s), -9, 9),
        (lambda s: s, lambda s: np.ones_like(s), -9, 9),
    ),
    "student_t": (
        (np.sinh, np.cosh, -14, 14),
        (np.sinh, np.cosh, -14, 14),
    ),
    "warped": (
        (lambda s: s * np.sqrt(np.abs(s)), lambda s: 1.5 * np.sqrt(np.abs(s)), -9, 9),
        (lambda s: np.arcsinh(2 * s), lambda s: 2 / np.sqrt(1 + 4 * s**2), -9, 9),
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_log_joint_integrates_to_one_2d(kind):
    pair = make_mutual_info_pair(2, 0.8, kind=kind, df=3.0)
    (phi, dphi, a, b), (psi, dpsi, c, e) = _SUBSTITUTIONS[kind]
    s, ws = _grid(a, b, 900)  # an even count: no node at 0, where the warped density is infinite
    t, wt = _grid(c, e, 900)
    S, T = np.meshgrid(s, t, indexing="ij")
    logp = pair.log_joint(phi(S).reshape(-1, 1), psi(T).reshape(-1, 1)).reshape(S.shape)
    integrand = np.exp(logp) * dphi(S) * dpsi(T)
    assert ws @ integrand @ wt == pytest.approx(1.0, abs=1e-6)
    # The joint times the Jacobian integrates to the marginal along each axis.
    px = np.exp(pair.log_marginal_x(phi(s).reshape(-1, 1))) * dphi(s)
    py = np.exp(pair.log_marginal_y(psi(t).reshape(-1, 1))) * dpsi(t)
    np.testing.assert_allclose(integrand @ wt, px, atol=1e-7)
    np.testing.assert_allclose(ws @ integrand, py, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_marginals_integrate_to_one_1d(kind):
    # Adaptive quadrature in the observed coordinates (the warped X density has an integrable
    # |x|^(-1/3) singularity at 0, hence the split there).
    pair = make_mutual_info_pair(2, 0.8, kind=kind, df=3.0)
    for f in (pair.log_marginal_x, pair.log_marginal_y):
        def density(u, f=f):
            return float(np.exp(f(np.array([[u]]))[0]))

        total = sum(integrate.quad(density, lo, hi, limit=200)[0] for lo, hi in [(-np.inf, 0), (0, np.inf)])
        assert total == pytest.approx(1.0, abs=1e-6)


def test_sample_moments():
    n = 100_000
    g = make_mutual_info_pair(6, kind="gaussian")
    X, y = g.sample(n, random_state=3)
    for i in range(3):
        assert np.corrcoef(X[:, i], y[:, i])[0, 1] == pytest.approx(g.rho, abs=0.01)
    assert abs(np.corrcoef(X[:, 0], y[:, 1])[0, 1]) < 0.02  # other pairs uncorrelated
    np.testing.assert_allclose(X.var(0), 1, atol=0.03)
    np.testing.assert_allclose(y.mean(0), 0, atol=0.02)
    # Student-t: same correlation (df > 2), variance df / (df - 2).
    t = make_mutual_info_pair(6, kind="student_t", df=8.0)
    X, y = t.sample(n, random_state=4)
    assert np.corrcoef(X[:, 0], y[:, 0])[0, 1] == pytest.approx(t.rho, abs=0.015)
    np.testing.assert_allclose(X.var(0), 8 / 6, rtol=0.06)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_marginals_kolmogorov_smirnov(kind):
    pair = make_mutual_info_pair(4, kind=kind, df=5.0)
    X, y = pair.sample(20_000, random_state=5)
    if kind == "warped":
        X, y = np.sign(X) * np.abs(X) ** (2 / 3), np.sinh(y) / 2  # undo the warps
    cdf = stats.t(5.0).cdf if kind == "student_t" else stats.norm.cdf
    for col in (X[:, 0], X[:, 1], y[:, 0], y[:, 1]):
        assert stats.kstest(col, cdf).pvalue > 1e-3
    if kind == "warped":
        assert np.corrcoef(X[:, 0], y[:, 0])[0, 1] == pytest.approx(pair.rho, abs=0.02)


def test_sample_product_is_independent():
    pair = make_mutual_info_pair(2, 2.0)
    X, y = pair.sample_product(50_000, random_state=6)
    assert abs(np.corrcoef(X[:, 0], y[:, 0])[0, 1]) < 0.02
    # Under the product, E[log_ratio] = KL(product || joint) > 0.
    assert pair.log_ratio(X, y).mean() > 0


def test_sample_is_reproducible_and_1d_inputs():
    pair = make_mutual_info_pair(2, kind="warped")
    a, b = pair.sample(10, random_state=0), pair.sample(10, random_state=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    X, y = a
    np.testing.assert_allclose(pair.log_joint(X[:, 0], y[:, 0]), pair.log_joint(X, y))


def test_mutual_info_errors():
    for d in (3, 7, 0, 1, -2):
        with pytest.raises(ValueError, match="even"):
            make_mutual_info_pair(d)
    with pytest.raises(ValueError, match="mutual_info"):
        make_mutual_info_pair(4, -0.1)
    with pytest.raises(ValueError, match="mutual_info"):
        make_mutual_info_pair(4, math.inf)
    with pytest.raises(ValueError, match="kind"):
        make_mutual_info_pair(4, kind="laplace")
    with pytest.raises(ValueError, match="df"):
        make_mutual_info_pair(4, kind="student_t", df=0.0)
    floor = MutualInfoPair(10, 0.0, "student_t", 5.0).mutual_info
    with pytest.raises(ValueError, match=r"minimum achievable") as info:
        make_mutual_info_pair(10, 0.1, kind="student_t", df=5.0)
    assert f"{floor:.6g}" in str(info.value)
    with pytest.raises(ValueError, match="rho"):
        MutualInfoPair(4, 1.0)
    with pytest.raises(ValueError, match="df"):
        MutualInfoPair(4, 0.5, "gaussian", 5.0)
    pair = make_mutual_info_pair(4)
    with pytest.raises(ValueError, match="shape"):
        pair.log_joint(np.zeros((3, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="rows"):
        pair.log_ratio(np.zeros((3, 2)), np.zeros((2, 2)))


# --- Gaussian mixtures -------------------------------------------------------------------------


def _scipy_mixture_logpdf(X, weights, means, covs):
    comps = [math.log(w) + stats.multivariate_normal(m, c).logpdf(X) for w, m, c in zip(weights, means, covs)]
    return logsumexp(np.stack(comps), axis=0)


@pytest.mark.parametrize("random_state", [None, 0, 7])
def test_gmm_log_densities_against_scipy(random_state):
    pair = make_gaussian_mixture_pair(random_state)
    assert isinstance(pair, GaussianMixturePair) and pair.n_features == 2
    assert len(pair.weights_p) == 3 and len(pair.weights_q) == 2
    X = np.vstack(pair.sample(300, random_state=1)) + np.random.RandomState(2).normal(0, 1, (600, 2))
    lp = _scipy_mixture_logpdf(X, pair.weights_p, pair.means_p, pair.covariances_p)
    lq = _scipy_mixture_logpdf(X, pair.weights_q, pair.means_q, pair.covariances_q)
    np.testing.assert_allclose(pair.log_p(X), lp, rtol=1e-10)
    np.testing.assert_allclose(pair.log_q(X), lq, rtol=1e-10)
    np.testing.assert_allclose(pair.log_ratio(X), lq - lp, rtol=1e-9, atol=1e-9)


def test_gmm_sampled_proportions_match_weights():
    # For x ~ mixture, E[posterior of component j | x] = w_j exactly.
    pair = make_gaussian_mixture_pair()
    X_p, X_q = pair.sample(40_000, random_state=3, n_samples_q=30_000)
    assert X_p.shape == (40_000, 2) and X_q.shape == (30_000, 2)
    for X, w, m, c in [
        (X_p, pair.weights_p, pair.means_p, pair.covariances_p),
        (X_q, pair.weights_q, pair.means_q, pair.covariances_q),
    ]:
        log_comp = np.stack(
            [np.log(wj) + stats.multivariate_normal(mj, cj).logpdf(X) for wj, mj, cj in zip(w, m, c)]
        )
        resp = np.exp(log_comp - logsumexp(log_comp, axis=0))
        np.testing.assert_allclose(resp.mean(axis=1), w, atol=0.01)
        # The sample mean matches the mixture mean.
        np.testing.assert_allclose(X.mean(axis=0), w @ m, atol=0.03)


def test_gmm_densities_integrate_to_one_and_ratio_range():
    pair = make_gaussian_mixture_pair()
    s, ws = _grid(-8, 8, 401)
    S, T = np.meshgrid(s, s, indexing="ij")
    grid = np.column_stack([S.ravel(), T.ravel()])
    for logd in (pair.log_p, pair.log_q):
        assert ws @ np.exp(logd(grid)).reshape(S.shape) @ ws == pytest.approx(1.0, abs=1e-6)
    # Partial overlap: log q/p spans roughly [-15, 15] on the rows of P and Q.
    X_p, X_q = pair.sample(5_000, random_state=0)
    r = np.concatenate([pair.log_ratio(X_p), pair.log_ratio(X_q)])
    lo, hi = np.quantile(r, [0.005, 0.995])
    assert -20 < lo < -8 and 8 < hi < 20
    assert np.median(pair.log_ratio(X_p)) < 0 < np.median(pair.log_ratio(X_q))


def test_gmm_default_is_fixed_and_read_only():
    a, b = make_gaussian_mixture_pair(), make_gaussian_mixture_pair()
    np.testing.assert_array_equal(a.means_p, b.means_p)
    np.testing.assert_allclose(a.means_p[0], [0, 2], atol=1e-12)
    assert not np.array_equal(make_gaussian_mixture_pair(0).means_p, a.means_p)
    with pytest.raises(ValueError):
        a.means_p[0, 0] = 1.0
    one = ([1.0], np.zeros((1, 2)), np.eye(2)[None])
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixturePair([0.5, 0.6], np.zeros((2, 2)), np.stack([np.eye(2)] * 2), *one)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixturePair([1.0], np.zeros((1, 2)), -np.eye(2)[None], *one)


# --- Gaussian pair with its closed-form OT --------------------------------------------------------


def _random_spd(d, rng, cond):
    """A random SPD matrix with eigenvalues spread over [1/sqrt(cond), sqrt(cond)]."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * np.geomspace(cond**-0.5, cond**0.5, d)[rng.permutation(d)]) @ Q.T


def _gaussian_pairs():
    """Pairs from make_gaussian_pair and generic pairs with badly conditioned covariances."""
    pairs = [make_gaussian_pair(d, random_state=s) for d, s in [(1, 0), (2, 1), (5, 2), (8, 3)]]
    rng = np.random.default_rng(4)
    for d, cond in [(2, 50.0), (4, 1e3), (6, 10.0)]:
        pairs.append(GaussianPair(rng.normal(size=d), _random_spd(d, rng, cond),
                                  rng.normal(size=d), _random_spd(d, rng, cond)))
    return pairs


GAUSSIAN_PAIRS = _gaussian_pairs()


def _map_jacobian(pair):
    """The Jacobian of ``ot_map`` read off the map itself (it is affine)."""
    d = pair.n_features
    base = pair.ot_map(pair.mean_p[None])[0]
    return (pair.ot_map(pair.mean_p + np.eye(d)) - base).T  # column j = T(m + e_j) - T(m)


@pytest.mark.parametrize("pair", GAUSSIAN_PAIRS, ids=lambda p: f"d{p.n_features}")
def test_gaussian_ot_map_is_gradient_of_convex_function_and_pushes_p_to_q(pair):
    J = _map_jacobian(pair)
    # affine: the map is m_q + J (x - m_p) everywhere, not only at the probed points
    X = np.random.default_rng(0).normal(size=(20, pair.n_features)) * 3
    np.testing.assert_allclose(pair.ot_map(X), pair.mean_q + (X - pair.mean_p) @ J.T, atol=1e-9)
    # gradient of a convex function: symmetric positive definite Jacobian (Brenier)
    np.testing.assert_allclose(J, J.T, atol=1e-9)
    assert np.linalg.eigvalsh((J + J.T) / 2).min() > 0
    # pushes P = N(m_p, S_p) to Q: exactly on the parameters
    np.testing.assert_allclose(pair.ot_map(pair.mean_p[None])[0], pair.mean_q, atol=1e-10)
    scale = np.abs(pair.cov_q).max()
    np.testing.assert_allclose(J @ pair.cov_p @ J.T, pair.cov_q, rtol=0, atol=1e-9 * scale)
    # the OT cost of the map is W2^2
    I = np.eye(pair.n_features)
    cost = np.sum((pair.mean_q - pair.mean_p) ** 2) + np.trace((J - I) @ pair.cov_p @ (J - I).T)
    assert pair.w2_squared == pytest.approx(cost, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("pair", GAUSSIAN_PAIRS[:3], ids=lambda p: f"d{p.n_features}")
def test_gaussian_ot_map_pushes_samples_of_p_to_q(pair):
    n = 200_000
    X_p, _ = pair.sample(n, random_state=0)
    Y = pair.ot_map(X_p)
    d = pair.n_features
    sd = np.sqrt(np.diag(pair.cov_q))
    assert np.all(np.abs(Y.mean(0) - pair.mean_q) < 5 * sd / np.sqrt(n))
    # standard error of a sample covariance entry: sqrt((S_ij^2 + S_ii S_jj) / n)
    S = pair.cov_q
    se = np.sqrt((S**2 + np.outer(np.diag(S), np.diag(S))) / n)
    assert np.all(np.abs(np.cov(Y.T).reshape(d, d) - S) < 5 * se)


@pytest.mark.parametrize("pair", GAUSSIAN_PAIRS, ids=lambda p: f"d{p.n_features}")
def test_gaussian_w2_matches_pot_bures_wasserstein(pair):
    gaussian = pytest.importorskip("ot.gaussian")

    w = float(gaussian.bures_wasserstein_distance(pair.mean_p, pair.mean_q, pair.cov_p, pair.cov_q))
    assert pair.w2_squared == pytest.approx(w**2, rel=1e-7, abs=1e-10)
    # and the map agrees with POT's (row convention: T(x) = x A + b)
    A, b = gaussian.bures_wasserstein_mapping(pair.mean_p, pair.mean_q, pair.cov_p, pair.cov_q)
    X = np.random.default_rng(1).normal(size=(10, pair.n_features))
    np.testing.assert_allclose(pair.ot_map(X), X @ A + b, rtol=1e-6, atol=1e-8)


def test_gaussian_w2_of_simple_cases():
    d = 3
    m = np.array([1.0, -2.0, 0.5])
    S = _random_spd(d, np.random.default_rng(5), 20.0)
    # same covariance: only the means count
    assert GaussianPair(np.zeros(d), S, m, S).w2_squared == pytest.approx(m @ m, rel=1e-9)
    # commuting (diagonal) covariances: sum of (sqrt(a) - sqrt(b))^2
    a, b = np.array([0.5, 2.0, 4.0]), np.array([3.0, 1.0, 0.25])
    pair = GaussianPair(np.zeros(d), np.diag(a), np.zeros(d), np.diag(b))
    assert pair.w2_squared == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-9)
    np.testing.assert_allclose(_map_jacobian(pair), np.diag(np.sqrt(b / a)), atol=1e-12)


@pytest.mark.parametrize("pair", GAUSSIAN_PAIRS[1:4], ids=lambda p: f"d{p.n_features}")
def test_gaussian_ot_interpolate_is_a_constant_speed_geodesic(pair):
    """P_t = ((1 - t) id + t T)_# P lies at distance t W2 from P and (1 - t) W2 from Q."""
    J, I = _map_jacobian(pair), np.eye(pair.n_features)
    X = np.random.default_rng(2).normal(size=(7, pair.n_features))
    for t in (0.0, 0.3, 0.5, 1.0):
        M = (1 - t) * I + t * J
        mean_t, cov_t = (1 - t) * pair.mean_p + t * pair.mean_q, M @ pair.cov_p @ M.T
        np.testing.assert_allclose(pair.ot_interpolate(X, t), pair.mean_p + (X - pair.mean_p) @ M.T
                                   + t * (pair.mean_q - pair.mean_p), atol=1e-9)
        to_p = GaussianPair(pair.mean_p, pair.cov_p, mean_t, cov_t).w2_squared
        to_q = GaussianPair(mean_t, cov_t, pair.mean_q, pair.cov_q).w2_squared
        assert to_p == pytest.approx(t**2 * pair.w2_squared, rel=1e-6, abs=1e-9)
        assert to_q == pytest.approx((1 - t) ** 2 * pair.w2_squared, rel=1e-6, abs=1e-9)


def test_checkerboard_contains_its_samples_and_not_the_empty_squares():
    from skqflow.datasets import checkerboard_contains, make_checkerboard

    assert checkerboard_contains(make_checkerboard(5000, random_state=0)).all()
    # centres of the 16 cells of side 2 on [-4, 4]^2: filled where the cell indices sum to an even number
    c = np.arange(-3.0, 4.0, 2.0)
    centres = np.array([(a, b) for a in c for b in c])
    cells = np.floor(centres / 2.0)
    np.testing.assert_array_equal(checkerboard_contains(centres), (cells.sum(1) % 2) == 0)
    assert checkerboard_contains(centres).sum() == 8
    assert not checkerboard_contains(np.array([[5.0, 0.5], [0.5, -4.5]])).any()  # off the board


def test_moons_distance_is_zero_on_the_curves_and_exact_off_them():
    from skqflow.datasets import make_two_moons, moons_distance

    theta = np.linspace(0.1, np.pi - 0.1, 7)
    on_outer = np.column_stack([np.cos(theta), np.sin(theta)]) * 2.0 + [-1.0, -0.2]
    np.testing.assert_allclose(moons_distance(on_outer), 0.0, atol=2e-3)
    # the top of the outer moon, moved up by 0.3: 0.3 from the outer curve, further from the inner one
    top = np.array([[0.0, 2.0]]) + [-1.0, -0.2] + [0.0, 0.3]
    np.testing.assert_allclose(moons_distance(top), 0.3, atol=1e-4)  # the curve is a fine polyline
    # noiseless moons lie on the curves
    np.testing.assert_allclose(moons_distance(make_two_moons(200, noise=0.0, random_state=0)), 0.0, atol=2e-3)
