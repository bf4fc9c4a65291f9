"""InfinitesimalDensityRatio with sample_weight: weighted empirical measures of P and Q."""

import numpy as np
import pytest
from scipy.stats import norm

from skqflow import InfinitesimalDensityRatio, stack

from .conftest import fast_ratio, tiny_flow


def _pair(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1)), rng.normal(0.5, 1.0, size=(n, 1))


def _ratio(**kw):
    settings = {"flow": tiny_flow(), "hidden_layer_sizes": (32, 32), "n_epochs": 15, "n_intervals": 2, **kw}
    return InfinitesimalDensityRatio(**fast_ratio(**settings))


def test_integer_weights_give_the_weighted_measures_log_ratio():
    # P weighted by 3 where x > 0: density phi(x) c(x) / 2 with c = 3 on x > 0, 1 elsewhere
    X_p, X_q = _pair()
    X, y = stack(X_p, X_q)
    w = np.where((y == 0) & (X[:, 0] > 0), 3.0, 1.0)
    weighted = _ratio().fit(X, y, sample_weight=w)
    repeated = _ratio().fit(*stack(np.repeat(X_p, np.where(X_p[:, 0] > 0, 3, 1), axis=0), X_q))
    plain = _ratio().fit(X, y)
    x = np.r_[np.linspace(-1.8, -0.4, 15), np.linspace(0.4, 1.8, 15)][:, None]
    c = np.where(x[:, 0] > 0, 3.0, 1.0)
    truth_w = norm.logpdf(x[:, 0], 0.5) - (norm.logpdf(x[:, 0]) + np.log(c / 2))
    truth = norm.logpdf(x[:, 0], 0.5) - norm.logpdf(x[:, 0])
    assert np.abs(truth_w - truth).mean() > 0.5  # the weights matter
    err_w = np.abs(weighted.predict_log_ratio(x) - truth_w).mean()
    err_rep = np.abs(repeated.predict_log_ratio(x) - truth_w).mean()
    err_plain = np.abs(plain.predict_log_ratio(x) - truth_w).mean()
    assert err_w < 0.25 and err_rep < 0.25
    assert err_plain > 2 * max(err_w, err_rep)


def test_zero_weights_are_rows_removed():
    X_p, X_q = _pair(600)
    X, y = stack(X_p, X_q)
    w = np.ones(len(X))
    w[(y == 1) & (X[:, 0] < 0)] = 0.0
    weighted = _ratio(n_epochs=3).fit(X, y, sample_weight=w)
    dropped = _ratio(n_epochs=3).fit(X[w > 0], y[w > 0])
    rows = np.linspace(-2, 2, 9)[:, None]
    np.testing.assert_array_equal(weighted.predict_log_ratio(rows), dropped.predict_log_ratio(rows))
    unit = _ratio(n_epochs=3).fit(X, y, sample_weight=np.full(len(X), 2.5))
    np.testing.assert_array_equal(unit.predict_log_ratio(rows), _ratio(n_epochs=3).fit(X, y).predict_log_ratio(rows))


@pytest.mark.parametrize("bad, match", [
    (-1.0, "(?i)negative"), (np.nan, "NaN|finite|infinity"), ("zero_q", "zero on every row"),
])
def test_bad_weights_raise(bad, match):
    X_p, X_q = _pair(100)
    X, y = stack(X_p, X_q)
    w = np.ones(len(X))
    if bad == "zero_q":
        w[y == 1] = 0.0
    else:
        w[3] = bad
    est = _ratio(n_epochs=1)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y, sample_weight=w)
    assert not hasattr(est, "net_")
