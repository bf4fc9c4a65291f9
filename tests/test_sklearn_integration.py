"""clone, params, pickling, Pipeline, GridSearchCV, dtypes, determinism, devices."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skqflow import stack

from .conftest import fast_ratio, tiny_flow


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return stack(rng.normal(size=(120, 2)), rng.normal(1.5, 0.7, size=(100, 2)))


def test_same_seed_same_result(data):
    X, y = data
    a = tiny_flow().fit(X, y).transform(X)
    b = tiny_flow().fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    c = tiny_flow(random_state=1).fit(X, y).transform(X)
    assert not np.allclose(a, c)


def test_random_state_instance(data):
    """A RandomState instance seeds the fit like its integer seed, and stays the parameter."""
    X, y = data
    rs = np.random.RandomState(0)
    flow = tiny_flow(random_state=rs)
    twin = clone(flow)  # clone copies the generator in its current state
    a = flow.fit(X, y).transform(X)
    assert flow.random_state is rs  # fit neither replaces nor copies the parameter
    np.testing.assert_array_equal(twin.fit(X, y).transform(X), a)
    np.testing.assert_array_equal(tiny_flow(random_state=np.random.RandomState(0)).fit(X, y).transform(X), a)
    np.testing.assert_array_equal(tiny_flow(random_state=0).fit(X, y).transform(X), a)
    assert not np.allclose(tiny_flow(random_state=np.random.RandomState(1)).fit(X, y).transform(X), a)
    # the fitted estimator still clones, with a generator as its parameter
    again = clone(flow)
    assert isinstance(again.random_state, np.random.RandomState) and again.random_state is not rs
    assert np.all(np.isfinite(again.fit(X, y).transform(X)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(data, dtype):
    X, y = data
    flow = tiny_flow().fit(X.astype(dtype), y)
    for out in (flow.transform(X.astype(dtype)), flow.inverse_transform(X.astype(dtype)),
                flow.interpolate(X.astype(dtype), [0.2, 0.4])):
        assert out.dtype == dtype


def test_float64_compute(data):
    X, y = data
    flow = tiny_flow(dtype="float64").fit(X, y)
    assert flow.field_.layers[0].linear.weight.dtype.is_floating_point
    assert str(flow.field_.layers[0].linear.weight.dtype) == "torch.float64"
    back = flow.inverse_transform(flow.transform(X))
    np.testing.assert_allclose(back, X, atol=1e-5)  # RK4 discretisation, not float precision


def test_clone_params_pickle(data):
    X, y = data
    flow = tiny_flow().fit(X, y)
    assert clone(flow).get_params() == flow.get_params()
    assert not hasattr(clone(flow), "field_")
    restored = pickle.loads(pickle.dumps(flow))
    np.testing.assert_array_equal(restored.transform(X), flow.transform(X))
    assert restored.device_ == "cpu"


def test_fitted_attributes(data):
    X, y = data
    flow = tiny_flow().fit(X, y)
    assert flow.n_features_in_ == 2
    np.testing.assert_array_equal(flow.classes_, [0, 1])
    # flow epochs: the initial flow's passes, then one refinement epoch in each direction
    initial = [h for h in flow.history_ if h["phase"] == "initial flow"]
    assert flow.n_iter_ == len(initial) + 2 * flow.refine_epochs
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
    flow = tiny_flow().fit(X, labels)
    np.testing.assert_array_equal(flow.classes_, ["source", "target"])
    ref = tiny_flow().fit(X, y)
    np.testing.assert_allclose(flow.transform(X), ref.transform(X))


def test_pandas_roundtrip(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=["a", "b"])
    flow = tiny_flow().set_output(transform="pandas").fit(df, y)
    out = flow.transform(df)
    assert list(out.columns) == ["a", "b"]
    np.testing.assert_array_equal(flow.feature_names_in_, ["a", "b"])


def test_pipeline_and_gridsearch_over_gamma(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), tiny_flow())
    assert pipe.fit(X, y).transform(X).shape == X.shape
    # refinement steps large enough for gamma to change the flow, and no held-out selection
    # (which may keep the initial flow for every gamma): the refined flow is kept
    template = tiny_flow(refine_learning_rate=1e-3, refine_epochs=2, validation_fraction=0.0)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = [0.0, 0.01, 0.1]
    search = GridSearchCV(template, {"gamma": grid}, cv=cv).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert len(np.unique(scores)) == len(grid)  # gamma reaches the fit and changes the score
    # each cell is our score() of a flow fitted on the training folds, reproducibly
    train, test = next(cv.split(X, y))
    refit = clone(template).set_params(gamma=grid[1]).fit(X[train], y[train])
    assert search.cv_results_["split0_test_score"][1] == pytest.approx(refit.score(X[test], y[test]), rel=1e-12)


def test_score_is_gamma_independent_and_label_free(data):
    """score() does not read gamma: two models with the same flow score the same."""
    X, y = data
    flow = tiny_flow(max_iter=0).fit(X, y)
    s = flow.score(X, y)
    flow.set_params(gamma=123.0)
    assert flow.score(X, y) == s
    assert s < 0


def test_score_improves_with_training(data):
    X, y = data
    weak = tiny_flow(max_iter=0, init_steps=1, learning_rate_init=1e-5).fit(X, y)  # barely trained
    strong = tiny_flow(max_iter=0, init_steps=1200, batch_size=32, hidden_layer_sizes=(32, 32)).fit(X, y)
    assert strong.score(X, y) > weak.score(X, y)


def test_gaussian_mixture_reference(data):
    X, _ = data
    gm = GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(200, 2)))
    flow = tiny_flow(reference=gm).fit(X)
    assert flow.transform(X).shape == X.shape


def test_warm_start_keeps_initial_flow(data):
    X, y = data
    flow = tiny_flow(max_iter=0).fit(X, y)
    n_init = len(flow.history_)
    n_initial = flow.n_iter_
    assert n_initial == len(flow.history_)
    flow.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert flow.n_iter_ == n_initial + 2 * flow.refine_epochs
    assert len(flow.history_) > n_init
    assert flow.history_[0]["phase"] == "initial flow"


def test_model_from_a_gpu_loads_on_cpu(data):
    """A model whose device_ is CUDA runs on the CPU when CUDA is missing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the fallback path is not taken")
    X, y = data
    flow = tiny_flow().fit(X, y)
    expected = flow.transform(X)
    flow.device_ = "cuda:0"  # as if fitted on a GPU
    restored = pickle.loads(pickle.dumps(flow))
    np.testing.assert_array_equal(restored.transform(X), expected)


def _torch_modules(obj, path, pickled):
    """(path, module) of every torch module reachable from ``obj`` through attributes,
    lists, tuples and dicts; nested estimators through what pickle stores of them
    (``__getstate__``) when ``pickled``, else through their ``__dict__``."""
    import torch
    from sklearn.base import BaseEstimator

    if isinstance(obj, torch.nn.Module):
        return [(path, obj)]
    if isinstance(obj, BaseEstimator):
        obj = obj.__getstate__() if pickled else vars(obj)
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    return [found for k, v in items for found in _torch_modules(v, f"{path}.{k}", pickled)]


@pytest.mark.parametrize("kind", ["flow", "ratio", "mutual_info"])
def test_pickle_state_holds_cpu_copies_of_every_module(data, kind):
    """``__getstate__`` stores a CPU copy of every torch module, those in lists
    (``classifiers_``) and in nested estimators included, so that a model fitted on a
    GPU unpickles on a machine without one (and pickling leaves the live model alone)."""
    from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator

    X, y = data
    if kind == "flow":
        est = tiny_flow().fit(X, y)
    elif kind == "ratio":
        est = InfinitesimalDensityRatio(**fast_ratio()).fit(X, y)
    else:
        est = MutualInformationEstimator(**fast_ratio()).fit(X[:, :1], X[:, 1])
    live = _torch_modules(est, kind, pickled=False)
    assert any(".classifiers_." in path for path, _ in live)  # the refinement ran
    stored = _torch_modules(est, kind, pickled=True)
    assert sorted(p for p, _ in stored) == sorted(p for p, _ in live)
    live_ids = {id(m) for _, m in live}
    for path, module in stored:
        assert id(module) not in live_ids, f"{path} is pickled as the live module, not a CPU copy"
        for tensor in [*module.parameters(), *module.buffers()]:
            assert tensor.device.type == "cpu", path


def test_gridsearch_over_the_nested_flow_gamma(data):
    """``flow__gamma`` reaches the flow inside the ratio and MI estimators."""
    from sklearn.model_selection import KFold

    from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator

    X, y = data
    small = fast_ratio()
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
        assert search.estimator.flow.gamma == tiny_flow().gamma
