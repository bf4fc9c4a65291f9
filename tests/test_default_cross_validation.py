"""Cross-validation with scikit-learn's default splitter works on stacked samples."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score

from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, stack
from skqflow.datasets import make_gaussian_pair

from .conftest import fast_ratio, tiny_flow


@pytest.fixture(scope="module")
def samples():
    return make_gaussian_pair(2, random_state=0).sample(300, random_state=1)


@pytest.mark.parametrize("sizes", [(300, 300), (300, 120), (50, 300)])
def test_stack_interleaves_so_that_consecutive_folds_hold_both_domains(samples, sizes):
    X_p, X_q = samples[0][: sizes[0]], samples[1][: sizes[1]]
    X, y = stack(X_p, X_q)
    np.testing.assert_array_equal(X[y == 0], X_p)  # each sample keeps its order
    np.testing.assert_array_equal(X[y == 1], X_q)
    for fold in np.array_split(np.arange(len(y)), 5):  # KFold(5) without shuffling
        share = y[fold].mean()
        assert 0 < share < 1
        assert share == pytest.approx(len(X_q) / len(y), abs=2 / len(fold))


def test_default_cross_val_score_is_finite(samples):
    X, y = stack(*samples)
    scores = cross_val_score(tiny_flow(), X, y)
    assert len(scores) == 5 and np.all(np.isfinite(scores))
    scores = cross_val_score(InfinitesimalDensityRatio(**fast_ratio()), X, y)
    assert np.all(np.isfinite(scores))


def test_a_fold_with_one_domain_gets_a_clear_error(samples):
    X, y = stack(*samples)
    flow = tiny_flow().fit(X, y)
    with pytest.raises(ValueError, match="one domain label.*StratifiedKFold"):
        flow.score(X[y == 0], y[y == 0])
    with pytest.raises(ValueError, match="one domain label"):
        tiny_flow().fit(X[y == 1], y[y == 1])


@pytest.mark.parametrize("make", [
    lambda: InfinitesimalDensityRatio(hidden_layer_sizes=(8,), n_epochs=1, batch_size=64, random_state=0),
    lambda: MutualInformationEstimator(hidden_layer_sizes=(8,), n_epochs=1, batch_size=64, random_state=0),
])
def test_grid_over_the_default_flows_gamma(samples, make):
    """``flow=None`` as constructed: a grid over ``flow__gamma`` reaches the default flow."""
    X, y = stack(*samples)
    if isinstance(make(), MutualInformationEstimator):
        X, y = samples[0], samples[0][:, 0] + samples[1][:, 0]
    grid = {"flow__gamma": [0.0, 0.5], "flow__init_steps": [5], "flow__max_iter": [1],
            "flow__refine_epochs": [1], "flow__classifier_epochs": [1], "flow__hidden_layer_sizes": [(8,)],
            "flow__classifier_hidden_layer_sizes": [(8,)]}
    search = GridSearchCV(make(), grid, cv=3).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    fitted_flow = best.flow_ if hasattr(best, "flow_") else best.density_ratio_.flow_
    assert fitted_flow.gamma == search.best_params_["flow__gamma"]
    assert make().flow is None  # the estimator as constructed is untouched
