"""clone, params, pickling, Pipeline, GridSearchCV, dtypes, determinism, devices."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skqflow import OTFlowTransformer, stack

from .conftest import FAST


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return stack(rng.normal(size=(120, 2)), rng.normal(1.5, 0.7, size=(100, 2)))


def test_same_seed_same_result(data):
    X, y = data
    a = OTFlowTransformer(**FAST).fit(X, y).transform(X)
    b = OTFlowTransformer(**FAST).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    c = OTFlowTransformer(**{**FAST, "random_state": 1}).fit(X, y).transform(X)
    assert not np.allclose(a, c)


def test_random_state_instance_is_accepted(data):
    X, y = data
    OTFlowTransformer(**{**FAST, "random_state": np.random.RandomState(0)}).fit(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(data, dtype):
    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X.astype(dtype), y)
    for out in (flow.transform(X.astype(dtype)), flow.inverse_transform(X.astype(dtype)),
                flow.interpolate(X.astype(dtype), [0.2, 0.4])):
        assert out.dtype == dtype


def test_float64_compute(data):
    X, y = data
    flow = OTFlowTransformer(**{**FAST, "dtype": "float64"}).fit(X, y)
    assert flow.field_.layers[0].linear.weight.dtype.is_floating_point
    assert str(flow.field_.layers[0].linear.weight.dtype) == "torch.float64"
    back = flow.inverse_transform(flow.transform(X))
    np.testing.assert_allclose(back, X, atol=1e-5)  # RK4 discretisation, not float precision


def test_clone_params_pickle(data):
    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    assert clone(flow).get_params() == flow.get_params()
    assert not hasattr(clone(flow), "field_")
    restored = pickle.loads(pickle.dumps(flow))
    np.testing.assert_array_equal(restored.transform(X), flow.transform(X))
    assert restored.device_ == "cpu"


def test_fitted_attributes(data):
    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    assert flow.n_features_in_ == 2
    np.testing.assert_array_equal(flow.classes_, [0, 1])
    assert flow.n_iter_ == 1
    assert flow.transport_cost_ > 0
    assert 0 <= flow.inversion_error_ < 1e-6
    assert flow.device_ == "cpu"
    phases = {h["phase"] for h in flow.history_}
    assert phases == {"initial flow", "refinement"}
    refine = [h for h in flow.history_ if h["phase"] == "refinement"]
    assert {"kl", "transport_cost", "energy_distance", "classifier_loss", "time"} <= set(refine[-1])
    assert list(flow.get_feature_names_out()) == ["x0", "x1"]


def test_string_labels_choose_p_and_q_by_order(data):
    X, y = data
    labels = np.where(y == 0, "source", "target")
    flow = OTFlowTransformer(**FAST).fit(X, labels)
    np.testing.assert_array_equal(flow.classes_, ["source", "target"])
    ref = OTFlowTransformer(**FAST).fit(X, y)
    np.testing.assert_allclose(flow.transform(X), ref.transform(X))


def test_pandas_roundtrip(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=["a", "b"])
    flow = OTFlowTransformer(**FAST).set_output(transform="pandas").fit(df, y)
    out = flow.transform(df)
    assert list(out.columns) == ["a", "b"]
    np.testing.assert_array_equal(flow.feature_names_in_, ["a", "b"])


def test_pipeline_and_gridsearch_over_gamma(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), OTFlowTransformer(**FAST))
    assert pipe.fit(X, y).transform(X).shape == X.shape
    search = GridSearchCV(
        OTFlowTransformer(**FAST), {"gamma": [0.0, 0.01, 0.1]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.best_params_["gamma"] in (0.0, 0.01, 0.1)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert np.all(search.cv_results_["mean_test_score"] <= 0)


def test_score_is_gamma_independent_and_label_free(data):
    """score() does not read gamma: two models with the same flow score the same."""
    X, y = data
    flow = OTFlowTransformer(**{**FAST, "max_iter": 0}).fit(X, y)
    s = flow.score(X, y)
    flow.set_params(gamma=123.0)
    assert flow.score(X, y) == s
    assert s < 0


def test_score_improves_with_training(data):
    X, y = data
    weak = OTFlowTransformer(**{**FAST, "max_iter": 0, "init_epochs": 0}).fit(X, y)
    strong = OTFlowTransformer(**{**FAST, "max_iter": 0, "init_epochs": 60, "batch_size": 32,
                                  "hidden_layer_sizes": (32, 32)}).fit(X, y)
    assert strong.score(X, y) > weak.score(X, y)


def test_gaussian_mixture_reference(data):
    X, _ = data
    gm = GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(200, 2)))
    flow = OTFlowTransformer(**FAST, reference=gm).fit(X)
    assert flow.transform(X).shape == X.shape


def test_warm_start_keeps_initial_flow(data):
    X, y = data
    flow = OTFlowTransformer(**{**FAST, "max_iter": 0}).fit(X, y)
    n_init = len(flow.history_)
    flow.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert flow.n_iter_ == 1
    assert len(flow.history_) > n_init
    assert flow.history_[0]["phase"] == "initial flow"


def test_model_from_a_gpu_loads_on_cpu(data):
    """A model whose device_ is CUDA runs on the CPU when CUDA is missing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the fallback path is not taken")
    X, y = data
    flow = OTFlowTransformer(**FAST).fit(X, y)
    expected = flow.transform(X)
    flow.device_ = "cuda:0"  # as if fitted on a GPU
    restored = pickle.loads(pickle.dumps(flow))
    np.testing.assert_array_equal(restored.transform(X), expected)
    assert next(restored.field_.parameters()).device.type == "cpu"


def test_gridsearch_over_the_nested_flow_gamma(data):
    """``flow__gamma`` reaches the flow inside the ratio and MI estimators."""
    from sklearn.model_selection import KFold

    from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator

    X, y = data
    small = dict(flow=OTFlowTransformer(**FAST), hidden_layer_sizes=(8,), n_epochs=2, random_state=0)
    grid = {"flow__gamma": [0.0, 0.1]}
    ratio = GridSearchCV(InfinitesimalDensityRatio(**small), grid,
                         cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(X, y)
    mi = GridSearchCV(MutualInformationEstimator(**small), grid,
                      cv=KFold(3, shuffle=True, random_state=0)).fit(X[:, :1], X[:, 1])
    for search in (ratio, mi):
        assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
        best = search.best_params_["flow__gamma"]
        inner = search.best_estimator_
        flow = inner.flow_ if hasattr(inner, "flow_") else inner.density_ratio_.flow_
        assert flow.gamma == best
        # the template is untouched
        assert search.estimator.flow.gamma == FAST.get("gamma", OTFlowTransformer().gamma)
