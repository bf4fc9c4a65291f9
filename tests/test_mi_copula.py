"""The copula method of MutualInformationEstimator (the default) against truths."""

import warnings

import numpy as np
import pytest
from scipy.stats import norm, rankdata
from sklearn.utils.estimator_checks import parametrize_with_checks

import skqflow
from skqflow import MutualInformationEstimator, OTFlowTransformer
from skqflow._gaussianize import fit_normal_scores, gaussian_mi, logdet_bias, normal_scores
from skqflow.datasets import (
    MutualInfoPair,
    TransformedMutualInfoPair,
    make_low_mutual_info_tasks,
    make_mutual_info_pair,
)

SMALL = dict(n_epochs=2, hidden_layer_sizes=(8,), random_state=0)


def bivariate(rho, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x[:, None], rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)


# ------------------------------------------------------------ building blocks
def test_normal_scores_of_training_rows_are_the_rank_scores():
    rng = np.random.default_rng(0)
    A = np.c_[rng.standard_cauchy(500), rng.exponential(size=500)]
    values, levels = fit_normal_scores(A)
    Z = normal_scores(A, values, levels)
    np.testing.assert_allclose(Z, norm.ppf((rankdata(A, axis=0) - 0.5) / 500), atol=1e-12)
    # monotone in between, clamped outside the training range (heavy tails stay tame)
    grid = np.linspace(-1e6, 1e6, 2001)[:, None].repeat(2, 1)
    G = normal_scores(grid, values, levels)
    assert np.all(np.diff(G, axis=0) >= 0)
    assert G.max() == pytest.approx(norm.ppf(1 - 0.5 / 500)) and G.min() == pytest.approx(norm.ppf(0.5 / 500))


def test_ties_share_their_mean_rank():
    A = np.array([[1.0], [2.0], [2.0], [2.0], [5.0]])
    Z = normal_scores(A, *fit_normal_scores(A))
    assert Z[1, 0] == Z[2, 0] == Z[3, 0] == pytest.approx(0.0)  # mean rank 3 of 5: the median
    assert Z[0, 0] == pytest.approx(-Z[4, 0])


def test_gaussian_mi_closed_form_and_logdet_bias():
    rho, k = 0.6, 3
    R = np.block([[np.eye(k), rho * np.eye(k)], [rho * np.eye(k), np.eye(k)]])
    assert gaussian_mi(R, k) == pytest.approx(-0.5 * k * np.log(1 - rho**2))
    # E log det S of Gaussian samples, by Monte Carlo, against the Wishart formula
    rng = np.random.default_rng(0)
    n, d = 20, 4
    lds = [np.linalg.slogdet(np.cov(rng.normal(size=(n, d)), rowvar=False))[1] for _ in range(4000)]
    assert np.mean(lds) == pytest.approx(logdet_bias(d, n), abs=0.02)


def test_bias_corrected_gaussian_mi_is_unbiased():
    """Over many small samples the corrected plug-in averages to the truth; the raw one does not."""
    rng = np.random.default_rng(1)
    k, n, rho = 5, 200, 0.5
    truth = -0.5 * k * np.log(1 - rho**2)
    raw, corrected = [], []
    for _ in range(300):
        x = rng.normal(size=(n, k))
        y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(n, k))
        R = np.corrcoef(np.hstack([x, y]), rowvar=False)
        raw.append(gaussian_mi(R, k))
        corrected.append(gaussian_mi(R, k, n))
    se = np.std(corrected) / np.sqrt(len(corrected))
    assert abs(np.mean(corrected) - truth) < 3 * se
    assert np.mean(raw) - truth > 10 * se  # about k^2 / (2 n) = 0.06 nats too high


# ------------------------------------------------------------ the estimator
def test_recovers_bivariate_gaussian_mi_with_an_honest_std():
    truth = -0.5 * np.log(1 - 0.8**2)
    est = MutualInformationEstimator(random_state=0).fit(*bivariate(0.8, 3000, seed=1))
    assert est.method_ == "copula"
    assert abs(est.mutual_info_ - truth) < 3 * est.mutual_info_std_
    assert 0.005 < est.mutual_info_std_ < 0.05
    assert est.mutual_info_ == pytest.approx(est.gaussian_mutual_info_ + est.correction_)


def test_invariant_to_monotone_maps_of_each_variable():
    pair = make_mutual_info_pair(4, 0.8)
    X, Y = pair.sample(1500, random_state=0)
    a = MutualInformationEstimator(**SMALL).fit(X, Y)
    b = MutualInformationEstimator(**SMALL).fit(np.exp(X), Y**3 - 2.0)
    assert b.mutual_info_ == pytest.approx(a.mutual_info_, abs=1e-5)
    np.testing.assert_allclose(
        b.pointwise_mutual_info(np.exp(X[:50]), Y[:50] ** 3 - 2.0), a.pointwise_mutual_info(X[:50], Y[:50]),
        atol=1e-4,
    )


def test_independent_variables_give_about_zero():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_t(2, size=(3000, 2)), rng.exponential(size=(3000, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = MutualInformationEstimator(random_state=0).fit(X, Y)
    assert abs(est.mutual_info_) < 0.02
    assert est.correction_ == 0.0  # no net beats g = 0 on held-out rows
    # a negative estimate never comes without a warning
    assert any("negative" in str(w.message) for w in caught) == (est.mutual_info_ < 0)


def test_uncorrelated_but_dependent_student_t_is_all_correction():
    """Identity-shape t: X and Y uncorrelated, so the Gaussian part sees nothing."""
    pair = MutualInfoPair(4, 0.0, "student_t", 1.0)  # MI 0.432 nats
    X, Y = pair.sample(4000, random_state=0)
    est = MutualInformationEstimator(random_state=0).fit(X, Y)
    assert abs(est.gaussian_mutual_info_) < 0.02
    assert est.correction_ > 0.25
    assert abs(est.mutual_info_ - pair.mutual_info) < 0.1


def test_new_rows_and_heavy_tails():
    pair = TransformedMutualInfoPair(make_mutual_info_pair(2, 0.5), "sinh", "cube")
    X, Y = pair.sample(2000, random_state=0)
    est = MutualInformationEstimator(**SMALL).fit(X, Y)
    Xn, Yn = pair.sample(5000, random_state=1)
    Xn[:5] *= 1e6  # far outside the training range
    pmi = est.pointwise_mutual_info(Xn, Yn)
    assert pmi.shape == (5000,) and np.all(np.isfinite(pmi))
    assert est.score(Xn[5:], Yn[5:]) == pytest.approx(pair.mutual_info, abs=0.06)


def test_constant_columns_and_a_constant_variable():
    X, y = bivariate(0.8, 400, seed=0)
    with_const = MutualInformationEstimator(**SMALL).fit(np.c_[X, np.ones(400)], y)
    plain = MutualInformationEstimator(**SMALL).fit(X, y)
    assert with_const.mutual_info_ == pytest.approx(plain.mutual_info_, abs=1e-5)
    assert MutualInformationEstimator(**SMALL).fit(X, np.zeros(400)).mutual_info_ == 0.0


def test_method_resolution():
    X, y = bivariate(0.5, 200, seed=0)
    assert MutualInformationEstimator(**SMALL).fit(X, y).method_ == "copula"
    flow = OTFlowTransformer(init_steps=5, max_iter=0, hidden_layer_sizes=(8,), random_state=0)
    assert MutualInformationEstimator(flow, **SMALL).fit(X, y).method_ == "flow"
    est = MutualInformationEstimator(flow, method="copula", **SMALL).fit(X, y)
    assert est.method_ == "copula" and not hasattr(est, "density_ratio_")
    est = MutualInformationEstimator(method="flow", **SMALL).set_params(flow=flow).fit(X, y)
    assert est.method_ == "flow" and not hasattr(est, "correlation_")


def test_save_and_load_round_trip(tmp_path):
    X, y = bivariate(0.7, 300, seed=0)
    est = MutualInformationEstimator(**SMALL).fit(X, y)
    skqflow.save(est, tmp_path / "mi.skqflow")
    loaded = skqflow.load(tmp_path / "mi.skqflow")
    assert loaded.mutual_info_ == est.mutual_info_
    np.testing.assert_array_equal(loaded.pointwise_mutual_info(X, y), est.pointwise_mutual_info(X, y))


def test_deterministic_under_random_state():
    X, y = bivariate(0.8, 300, seed=0)
    a = MutualInformationEstimator(**SMALL).fit(X, y)
    b = MutualInformationEstimator(**SMALL).fit(X, y)
    assert a.mutual_info_ == b.mutual_info_ and a.mutual_info_std_ == b.mutual_info_std_


@parametrize_with_checks([MutualInformationEstimator(method="copula", **SMALL)])
def test_sklearn_compatible_copula(estimator, check):
    check(estimator)


# ------------------------------------------------------------ datasets
@pytest.mark.parametrize("name, pair", list(make_low_mutual_info_tasks().items()))
def test_low_mi_tasks_have_the_stated_mutual_info(name, pair):
    """The maps invert exactly and a Monte Carlo of the exact log ratio gives the MI."""
    assert 0.2 <= pair.mutual_info <= 2.0 + 1e-9
    X, Y = pair.sample(20000, random_state=0)
    X0, Y0 = pair.base.sample(20000, random_state=0)
    Xi, Yi = pair.inverse(X, Y)
    np.testing.assert_allclose(Xi, X0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(Yi, Y0, rtol=1e-9, atol=1e-9)
    log_ratio = pair.log_ratio(X, Y)
    se = log_ratio.std() / np.sqrt(len(log_ratio))
    assert abs(-log_ratio.mean() - pair.mutual_info) < 4 * se


# ------------------------------------------------------------ accuracy (slow)
@pytest.mark.slow
@pytest.mark.parametrize("kind, d, tol", [("gaussian", 40, 0.02), ("warped", 40, 0.02), ("student_t", 10, 0.05)])
def test_accuracy_on_the_benchmark_tasks(kind, d, tol):
    pair = make_mutual_info_pair(d, kind=kind)
    X, Y = pair.sample(10000, random_state=0)
    est = MutualInformationEstimator(random_state=0).fit(X, Y)
    assert abs(est.mutual_info_ / pair.mutual_info - 1) < tol


@pytest.mark.slow
def test_beats_the_gaussian_plug_in_on_heavy_tails():
    pair = MutualInfoPair(10, 0.0, "student_t", 2.0)  # MI 0.448, uncorrelated
    X, Y = pair.sample(5000, random_state=0)
    est = MutualInformationEstimator(random_state=0).fit(X, Y)
    assert abs(est.mutual_info_ - pair.mutual_info) < 0.1


def test_history_plots_phase_by_phase():
    pytest.importorskip("matplotlib")
    from skqflow import plotting

    X, y = bivariate(0.7, 300, seed=0)
    est = MutualInformationEstimator(**SMALL).fit(X, y)
    assert {r["phase"] for r in est.history_} == {"correction fold 1", "correction fold 2", "correction fold 3"}
    assert sum(r["selected"] for r in est.history_) == 3  # one epoch kept per fold
    plotting.plot_history(est)


def test_selection_gap_is_the_move_to_the_smallest_held_out_loss():
    from skqflow._mutual_info import _selection_gap

    history = [
        {"epoch": 0, "validation_loss": 1.00, "probe_correction": 0.0, "selected": True},
        {"epoch": 1, "validation_loss": 0.97, "probe_correction": 0.3, "selected": False},
        {"epoch": 2, "validation_loss": 0.99, "probe_correction": 0.5, "selected": False},
    ]
    assert _selection_gap(history) == pytest.approx(0.3)
    history[1]["selected"], history[0]["selected"] = True, False
    assert _selection_gap(history) == 0.0  # the kept epoch is the best one
    assert _selection_gap([{"epoch": 1, "loss": 0.5}]) == 0.0  # no held-out rows: nothing selected


def test_standard_error_includes_the_selection_gap_of_the_folds_own_rows():
    pair = MutualInfoPair(4, 0.0, "student_t", 1.0)
    X, Y = pair.sample(3000, random_state=1)
    est = MutualInformationEstimator(random_state=0).fit(X, Y)
    folds = [[h for h in est.history_ if h["phase"] == f"correction fold {k}"] for k in (1, 2, 3)]
    kept = [next(h for h in fold if h["selected"]) for fold in folds]
    # each kept epoch's probe mean is that fold's share of the cross-fitted correction
    # (the three folds have 1000 rows each)
    assert np.mean([h["probe_correction"] for h in kept]) == pytest.approx(est.correction_, abs=1e-5)
    best = [min(fold, key=lambda h: h["validation_loss"]) for fold in folds]
    gap = np.mean([b["probe_correction"] - k["probe_correction"] for b, k in zip(best, kept)])
    assert est.selection_gap_ == pytest.approx(gap, abs=1e-12)
    assert est.mutual_info_std_ >= abs(est.selection_gap_)
    assert est.correction_std_ >= abs(est.selection_gap_)


def test_fold_spread_is_scaled_for_overlapping_training_rows():
    from skqflow._mutual_info import _fold_excess_variance

    # K = 3 folds: each pair of nets shares half its training rows, so the variance of the
    # mean of the fold means is var * (1/3 + 1/2) (Nadeau & Bengio), not var / 3.
    means = np.array([0.0, 0.3, 0.6])  # sample variance 0.09
    assert _fold_excess_variance(means, 0.005) == pytest.approx(0.09 * (1 / 3 + 1 / 2) - 0.005)
    assert _fold_excess_variance(means, 1.0) == 0.0  # row noise explains the spread
    assert _fold_excess_variance(np.full(3, 0.2), 0.0) == pytest.approx(0.0, abs=1e-20)
    # K = 5: training sets of two folds share 3/4 of their rows; test share / training share = 1/4
    means = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert _fold_excess_variance(means, 0.0) == pytest.approx(means.var(ddof=1) * (1 / 5 + 1 / 4))
