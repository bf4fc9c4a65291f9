"""skqflow.da: skada adapters on the flow and on the density ratio.

skada switches on scikit-learn's metadata routing when it is first imported.
So that this file changes nothing for the rest of the suite, skada and
skqflow.da are imported inside the tests, within a configuration context that
is restored after each test.
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import sklearn
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skqflow import InfinitesimalDensityRatio, OTFlowTransformer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("skada") is None, reason="skada not installed")

SHIFT = np.array([3.0, 1.0])


@pytest.fixture(autouse=True)
def _routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture
def da():
    import skqflow.da

    return skqflow.da


def small_flow(**overrides):
    params = dict(init_steps=400, max_iter=0, hidden_layer_sizes=(64, 64), batch_size=128, random_state=0)
    return OTFlowTransformer(**{**params, **overrides})


def shifted_problem(n=300, seed=0):
    """Source: two classes split by the sign of x0; target: the same, translated by SHIFT.

    The OT map between the domains is the translation, so a classifier
    trained on adapted source rows works on the target, while one trained on
    raw source rows cuts the target classes at the wrong place.
    """
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n, 2)) * [1.0, 0.5]
    Xt = rng.normal(size=(n, 2)) * [1.0, 0.5]
    ys, yt = (Xs[:, 0] > 0).astype(int), (Xt[:, 0] > 0).astype(int)
    Xt = Xt + SHIFT
    X = np.concatenate([Xs, Xt])
    y = np.concatenate([ys, np.full(n, -1)])  # target labels masked, as skada does
    sample_domain = np.concatenate([np.ones(n, int), -2 * np.ones(n, int)])
    return X, y, sample_domain, Xt, yt


def test_adapter_moves_source_rows_only(da):
    X, y, sd, Xt, _ = shifted_problem()
    adapter = da.OTFlowAdapter(small_flow())
    X_adapted = adapter.fit_transform(X, y, sample_domain=sd)
    source = sd >= 0
    np.testing.assert_array_equal(X_adapted[~source], X[~source])
    np.testing.assert_allclose(X_adapted[source], adapter.flow_.transform(X[source]))
    # the true map is the translation by SHIFT
    error = np.linalg.norm(X_adapted[source] - (X[source] + SHIFT), axis=1).mean()
    assert error < 0.25 * np.linalg.norm(SHIFT)
    # predict time: no sample_domain means "all rows are target rows"
    np.testing.assert_array_equal(adapter.transform(Xt), Xt)
    assert adapter.get_params()["flow"].get_params() == small_flow().get_params()


def test_pipeline_adapts_a_translated_target(da):
    X, y, sd, Xt, yt = shifted_problem()
    pipe = da.OTFlow(LogisticRegression(), **small_flow().get_params())
    pipe.fit(X, y, sample_domain=sd)
    adapted = pipe.score(Xt, yt)
    plain = LogisticRegression().fit(X[sd >= 0], y[sd >= 0]).score(Xt, yt)
    assert adapted > 0.9
    assert plain < 0.75  # the task does need adaptation


def test_reweight_adapter_follows_the_true_ratio(da):
    """Covariate shift N(0, I) -> N(m, I): the true weight is exp(m.x - |m|^2/2)."""
    rng = np.random.default_rng(1)
    m = np.array([1.0, 0.0])
    Xs, Xt = rng.normal(size=(1500, 2)), rng.normal(size=(1500, 2)) + m
    X = np.concatenate([Xs, Xt])
    sd = np.concatenate([np.ones(1500, int), -np.ones(1500, int)])
    ratio = InfinitesimalDensityRatio(
        flow=small_flow(), hidden_layer_sizes=(32, 32), n_epochs=15, random_state=0
    )
    adapter = da.FlowDensityReweightAdapter(ratio)
    X_out, params = adapter.fit_transform(X, None, sample_domain=sd)
    np.testing.assert_array_equal(X_out, X)
    w = params["sample_weight"]
    assert np.all(w[sd < 0] == 0)
    assert w[sd >= 0].mean() == pytest.approx(1.0)
    truth = np.exp(Xs @ m - m @ m / 2)
    assert spearmanr(w[sd >= 0], truth).statistic > 0.9

    clipped = da.FlowDensityReweightAdapter(ratio, max_weight=2.0).fit_transform(X, None, sample_domain=sd)
    wc = clipped[1]["sample_weight"][sd >= 0]
    assert wc.max() <= 2.0 + 1e-9 and wc.mean() == pytest.approx(1.0)


def test_grid_search_over_gamma_with_skada_splitter_and_scorer(da):
    from skada.metrics import PredictionEntropyScorer
    from skada.model_selection import SourceTargetShuffleSplit

    X, y, sd, _, _ = shifted_problem(n=150)
    flow_params = small_flow(init_steps=50, max_iter=1, refine_epochs=1).get_params()
    pipe = da.OTFlow(LogisticRegression(), **flow_params)
    grid = {"otflowadapter__flow__gamma": [0.01, 0.1]}
    search = GridSearchCV(pipe, grid, cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
                          scoring=PredictionEntropyScorer())
    search.fit(X, y, sample_domain=sd)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    fitted_flow = search.best_estimator_.named_steps["otflowadapter"].base_estimator_.flow_
    assert fitted_flow.gamma == search.best_params_["otflowadapter__flow__gamma"]


class WeightRecorder(LogisticRegression):
    """A classifier that keeps the sample_weight its fit received."""

    def fit(self, X, y, sample_weight=None):
        self.seen_weight_ = sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def test_reweight_pipeline_in_grid_search_passes_the_weights_on(da):
    from skada.metrics import ImportanceWeightedScorer
    from skada.model_selection import SourceTargetShuffleSplit

    X, y, sd, _, _ = shifted_problem(n=120)
    clf = WeightRecorder().set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
    pipe = da.FlowDensityReweight(clf, flow=small_flow(init_steps=50), hidden_layer_sizes=(16,), n_epochs=3,
                                  random_state=0)
    key = "flowdensityreweightadapter__density_ratio__flow__gamma"
    search = GridSearchCV(pipe, {key: [0.01, 0.1]}, cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
                          scoring=ImportanceWeightedScorer()).fit(X, y, sample_domain=sd)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    adapter = search.best_estimator_.named_steps["flowdensityreweightadapter"].base_estimator_
    assert adapter.density_ratio_.flow_.gamma == search.best_params_[key]
    final = search.best_estimator_.steps[-1][1].base_estimator_
    expected = adapter.compute_weights(X, sample_domain=sd)
    # skada drops the (masked) target rows before the classifier's fit
    np.testing.assert_allclose(final.seen_weight_, expected[sd >= 0])
    assert np.ptp(final.seen_weight_) > 0  # real importance weights, not uniform ones


def test_integer_dataframe_and_frozen_input(da):
    pd = pytest.importorskip("pandas")
    from sklearn.frozen import FrozenEstimator

    X, y, sd, _, _ = shifted_problem(n=40)
    X_int = np.round(4 * X).astype(int)
    adapter = da.OTFlowAdapter(small_flow(init_steps=20))
    out = adapter.fit_transform(X_int, y, sample_domain=sd)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[sd >= 0], adapter.flow_.transform(X_int[sd >= 0].astype(float)))

    frame = pd.DataFrame(X, columns=["u", "v"])
    adapter.fit(frame, y, sample_domain=sd)
    np.testing.assert_array_equal(adapter.feature_names_in_, ["u", "v"])
    with pytest.raises(ValueError, match="feature names"):
        adapter.transform(frame.rename(columns={"u": "w"}))

    frozen = FrozenEstimator(adapter.flow_)
    reused = da.OTFlowAdapter(frozen).fit(X, y, sample_domain=sd)
    assert reused.flow_ is frozen
    np.testing.assert_array_equal(reused.transform(X, sample_domain=sd, allow_source=True),
                                  adapter.transform(frame, sample_domain=sd, allow_source=True))
    with pytest.raises(ValueError, match="3 features"):
        da.OTFlowAdapter(frozen).fit(np.ones((8, 3)), np.zeros(8), sample_domain=np.repeat([1, -2], 4))


@pytest.mark.parametrize(
    "make_bad, error, match",
    [
        (lambda X, sd: (X, None), ValueError, "sample_domain"),
        (lambda X, sd: (X, np.ones_like(sd)), ValueError, "two target rows"),
        (lambda X, sd: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), sd), ValueError, "NaN"),
    ],
)
def test_bad_input(da, make_bad, error, match):
    X, y, sd, _, _ = shifted_problem(n=20)
    X_bad, sd_bad = make_bad(X, sd)
    adapter = da.OTFlowAdapter(small_flow(init_steps=10))
    with pytest.raises(error, match=match):
        adapter.fit(X_bad, y, sample_domain=sd_bad)
    assert not hasattr(adapter, "flow_")


def test_wrong_template_and_features(da):
    from sklearn.preprocessing import StandardScaler

    X, y, sd, _, _ = shifted_problem(n=20)
    with pytest.raises(TypeError, match="OTFlowTransformer"):
        da.OTFlowAdapter(StandardScaler()).fit(X, y, sample_domain=sd)
    with pytest.raises(ValueError, match="max_weight"):
        da.FlowDensityReweightAdapter(max_weight=0.5).fit(X, y, sample_domain=sd)
    adapter = da.OTFlowAdapter(small_flow(init_steps=10)).fit(X, y, sample_domain=sd)
    with pytest.raises(ValueError, match="3 features"):
        adapter.transform(np.ones((4, 3)))
    template = small_flow()
    before = template.get_params()
    clone(da.OTFlowAdapter(template)).fit(X, y, sample_domain=sd)
    assert template.get_params() == before
    assert not hasattr(template, "field_")


def test_import_does_not_change_sklearn_config():
    """`import skqflow` leaves the config alone; `import skqflow.da` changes only what skada does."""
    code = (
        "import sklearn, json; before = sklearn.get_config(); import {mod}; after = sklearn.get_config();"
        "print(json.dumps(sorted(k for k in before if before[k] != after[k])))"
    )

    def changed(module):
        out = subprocess.run([sys.executable, "-c", code.format(mod=module)], capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()

    assert changed("skqflow") == "[]"
    assert changed("skqflow.da") == changed("skada")
