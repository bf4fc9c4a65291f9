"""skqflow.save / skqflow.load: pickle-free files that round-trip estimators exactly."""

import json
import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

import skqflow
from skqflow import InfinitesimalDensityRatio, MutualInformationEstimator, OTFlowTransformer, stack
from skqflow._persist import _digest, _read_file, _write_file

from .conftest import FAST, fast_ratio

RATIO = {k: v for k, v in fast_ratio().items() if k != "flow"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X_p, X_q = rng.normal(size=(120, 2)), rng.normal(2.0, 0.7, size=(120, 2))
    X, y = stack(X_p, X_q)
    return X, y


@pytest.fixture(scope="module")
def flow_xy(data):
    X, y = data
    return OTFlowTransformer(**FAST).fit(X, y)


@pytest.fixture(scope="module")
def flow_ref(data):
    X, _ = data
    return OTFlowTransformer(**FAST).fit(X[:120])


@pytest.fixture(scope="module")
def flow_f64(data):
    X, y = data
    return OTFlowTransformer(**FAST, dtype="float64").fit(X, y)


@pytest.fixture(scope="module")
def ratio(data):
    X, y = data
    # the chain, whose partial ratios the round trip also compares
    return InfinitesimalDensityRatio(flow=OTFlowTransformer(**FAST), method="chain", **RATIO).fit(X, y)


@pytest.fixture(scope="module")
def mutual_info(data):
    X, _ = data
    est = MutualInformationEstimator(flow=OTFlowTransformer(**FAST), **RATIO)
    return est.fit(X[:, :1], X[:, 0] + X[:, 1])


def round_trip(est, tmp_path, **kwargs):
    path = tmp_path / "model.skqflow"
    skqflow.save(est, path)
    rng_state = torch.get_rng_state()
    loaded = skqflow.load(path, **kwargs)
    assert torch.equal(torch.get_rng_state(), rng_state)  # loading draws no random numbers
    return loaded


def assert_identical(a, b):
    """Same dtype, shape and bytes (bit-identical)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def assert_same_params(a, b):
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    assert pa.keys() == pb.keys()
    for k in pa:
        if hasattr(pa[k], "get_params"):
            assert type(pa[k]) is type(pb[k])
            assert_same_params(pa[k], pb[k])
        else:
            assert type(pa[k]) is type(pb[k]) and pa[k] == pb[k], k


def assert_same_modules(a, b):
    assert type(a) is type(b) and a.init_args == b.init_args
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k])
    assert [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in b.parameters()]


@pytest.fixture
def no_pickle(monkeypatch):
    """Make every pickle and unrestricted torch.load entry point fail."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    class Unpickler(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            refuse()

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", Unpickler)
    monkeypatch.setattr(torch, "load", refuse)


def rewrite(path, edit):
    """Apply ``edit(tree)`` to the JSON tree of a saved file and write it back with a valid digest."""
    metadata, tensors = _read_file(path)
    tree = json.loads(metadata["tree"])
    edit(tree)
    _write_file(path, tree, tensors)


def nodes(tree):
    """Every JSON object of the tree."""
    if isinstance(tree, dict):
        yield tree
        for v in tree.values():
            yield from nodes(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from nodes(v)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("which", ["flow_xy", "flow_ref", "flow_f64"])
def test_flow_round_trip_is_bit_identical(which, data, tmp_path, request, no_pickle):
    est = request.getfixturevalue(which)
    X = data[0]
    loaded = round_trip(est, tmp_path)
    assert type(loaded) is OTFlowTransformer and loaded is not est
    assert_same_params(est, loaded)
    for Xi in (X, X.astype(np.float32)):
        assert_identical(est.transform(Xi), loaded.transform(Xi))
        assert_identical(est.inverse_transform(Xi), loaded.inverse_transform(Xi))
    assert_identical(est.interpolate(X, [0.3, 0.7]), loaded.interpolate(X, [0.3, 0.7]))
    for name in ("transport_cost_", "inversion_error_", "n_iter_", "n_features_in_", "device_"):
        assert getattr(loaded, name) == getattr(est, name) and type(getattr(loaded, name)) is type(
            getattr(est, name)
        )
    assert loaded.history_ == est.history_
    if est.classes_ is None:
        assert loaded.classes_ is None
    else:
        assert_identical(est.classes_, loaded.classes_)
    assert_same_modules(est.field_, loaded.field_)
    assert len(loaded.classifiers_) == 2
    for a, b in zip(est.classifiers_, loaded.classifiers_):
        assert_same_modules(a, b)
    # every other fitted attribute too, whatever its name
    assert vars(est).keys() == vars(loaded).keys()


def test_density_ratio_round_trip_is_bit_identical(ratio, data, tmp_path, no_pickle):
    X = data[0]
    loaded = round_trip(ratio, tmp_path)
    assert_same_params(ratio, loaded)
    assert_identical(ratio.predict_log_ratio(X), loaded.predict_log_ratio(X))
    assert_identical(
        ratio.predict_log_ratio(X, t_start=0.2, t_end=0.9),
        loaded.predict_log_ratio(X, t_start=0.2, t_end=0.9),
    )
    assert_identical(ratio.times_, loaded.times_)
    assert_identical(ratio.classes_, loaded.classes_)
    assert loaded.history_ == ratio.history_
    assert_same_modules(ratio.net_, loaded.net_)
    assert_identical(ratio.flow_.transform(X), loaded.flow_.transform(X))


def test_mutual_info_round_trip_is_bit_identical(mutual_info, data, tmp_path, no_pickle):
    X = data[0]
    x, y = X[:, :1], X[:, 0] + X[:, 1]
    loaded = round_trip(mutual_info, tmp_path)
    assert_same_params(mutual_info, loaded)
    assert loaded.mutual_info_ == mutual_info.mutual_info_
    assert loaded.mutual_info_std_ == mutual_info.mutual_info_std_
    assert_identical(mutual_info.pointwise_mutual_info(x, y), loaded.pointwise_mutual_info(x, y))
    assert loaded.score(x, y) == mutual_info.score(x, y)
    # the inner estimator's random_state is a RandomState: saved with its state
    a, b = mutual_info.density_ratio_.random_state, loaded.density_ratio_.random_state
    assert isinstance(b, np.random.RandomState)
    sa, sb = a.get_state(), b.get_state()
    assert sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:]


def test_frozen_flow_keeps_its_identity(flow_xy, data, tmp_path):
    X, y = data
    est = InfinitesimalDensityRatio(flow=FrozenEstimator(flow_xy), **RATIO).fit(X, y)
    assert est.flow_ is est.flow.estimator
    loaded = round_trip(est, tmp_path)
    assert type(loaded.flow) is FrozenEstimator
    assert loaded.flow_ is loaded.flow.estimator  # one object, as in the saved estimator
    assert_identical(est.predict_log_ratio(X), loaded.predict_log_ratio(X))


def test_unfitted_round_trip_keeps_params(tmp_path):
    est = MutualInformationEstimator(
        flow=OTFlowTransformer(gamma=0.5, hidden_layer_sizes=(7, 3), dtype="float64"),
        n_permutations=3, validation_fraction=0.0, random_state=np.random.RandomState(5),
    )
    loaded = round_trip(est, tmp_path)
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    assert loaded.flow.hidden_layer_sizes == (7, 3)  # a tuple stays a tuple
    assert_same_params(loaded.flow, est.flow)
    params = {k: v for k, v in est.get_params(deep=False).items() if k not in ("flow", "random_state")}
    assert {k: loaded.get_params(deep=False)[k] for k in params} == params
    assert loaded.random_state.randint(10**9) == est.random_state.randint(10**9)


def test_refit_after_load(flow_xy, data, tmp_path):
    X, y = data
    loaded = round_trip(flow_xy, tmp_path)
    # warm start from the loaded weights: one more refinement round
    loaded.set_params(warm_start=True).fit(X, y)
    assert loaded.n_iter_ > flow_xy.n_iter_
    assert len(loaded.history_) > len(flow_xy.history_)
    def without_kept(records):  # a new refinement moves the "kept" mark to its own records
        return [{k: v for k, v in r.items() if k != "kept"} for r in records]

    assert without_kept(loaded.history_[: len(flow_xy.history_)]) == without_kept(flow_xy.history_)
    assert sum(bool(r.get("kept")) for r in loaded.history_) == 1
    assert np.all(np.isfinite(loaded.transform(X)))
    # a cold refit gives what a fresh fit gives
    again = round_trip(flow_xy, tmp_path).fit(X, y)
    fresh = OTFlowTransformer(**FAST).fit(X, y)
    np.testing.assert_allclose(again.transform(X), fresh.transform(X), rtol=1e-6, atol=1e-6)


def test_plain_values_round_trip_exactly(flow_xy, tmp_path):
    est = OTFlowTransformer(**FAST)
    est.extra_ = {
        "floats": [float("inf"), -float("inf"), -0.0, 1e-300, 0.1],
        "nan": float("nan"),
        7: (1, True, None, "s"),
        "np": [np.float32(1.5), np.int64(-3), np.bool_(True), np.str_("P")],
        "arrays": [np.arange(6, dtype=np.int16).reshape(2, 3), np.array(["a", "bb"]),
                   np.array(["x", 3], dtype=object), np.zeros((0, 4), np.float32), np.eye(2)[::-1]],
        "torch": [torch.arange(4, dtype=torch.float64), torch.float32, torch.device("cpu")],
    }
    loaded = round_trip(est, tmp_path).extra_
    e = est.extra_
    assert loaded[7] == (1, True, None, "s") and type(loaded[7]) is tuple
    assert [math_bits(v) for v in loaded["floats"]] == [math_bits(v) for v in e["floats"]]
    assert np.isnan(loaded["nan"])
    assert [(type(v), v) for v in loaded["np"]] == [(type(v), v) for v in e["np"]]
    for a, b in zip(e["arrays"], loaded["arrays"]):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
    assert torch.equal(loaded["torch"][0], e["torch"][0]) and loaded["torch"][0].dtype == torch.float64
    assert loaded["torch"][1:] == e["torch"][1:]
    # the JSON in the file is standard JSON (no NaN or Infinity tokens)
    metadata, _ = _read_file(tmp_path / "model.skqflow")
    json.loads(metadata["tree"], parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


def math_bits(x):
    return np.float64(x).tobytes()


def test_model_saved_on_a_gpu_loads_on_the_cpu(flow_xy, data, tmp_path):
    """A file whose modules were on CUDA loads on the CPU when no GPU is present."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    path = tmp_path / "model.skqflow"
    skqflow.save(flow_xy, path)

    def to_cuda(tree):
        for node in nodes(tree):
            if node.get("$") == "module":
                node["device"] = "cuda:0"
        tree["attrs"]["device_"] = "cuda"

    rewrite(path, to_cuda)
    loaded = skqflow.load(path)
    assert loaded.device_ == "cuda"
    assert all(p.device.type == "cpu" for p in loaded.field_.parameters())
    X = data[0]
    assert_identical(flow_xy.transform(X), loaded.transform(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip(data, tmp_path):  # pragma: no cover - no GPU on CI
    X, y = data
    est = OTFlowTransformer(**{**FAST, "device": "cuda"}).fit(X, y)
    loaded = round_trip(est, tmp_path)
    assert next(loaded.field_.parameters()).is_cuda
    assert_identical(est.transform(X), loaded.transform(X))
    on_cpu = round_trip(est, tmp_path, device="cpu")
    assert next(on_cpu.field_.parameters()).device.type == "cpu"


def test_load_device_argument(flow_xy, tmp_path):
    loaded = round_trip(flow_xy, tmp_path, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.field_.parameters())


def test_da_adapter_round_trip(data, tmp_path):
    da = pytest.importorskip("skqflow.da")
    X, y = data
    domain = np.where(y == y[0], 1, -2)
    est = da.OTFlowAdapter(flow=OTFlowTransformer(**FAST)).fit(X, sample_domain=domain)
    loaded = round_trip(est, tmp_path)
    assert_identical(est.flow_.transform(X), loaded.flow_.transform(X))


# ------------------------------------------------------------------ what save refuses
def test_save_refuses_a_gaussian_mixture_reference(data, tmp_path):
    X = data[0]
    gmm = GaussianMixture(2, random_state=0).fit(X)
    path = tmp_path / "model.skqflow"
    for reference, where in ((gmm, "reference"), (FrozenEstimator(gmm), "reference.estimator")):
        est = OTFlowTransformer(**FAST, reference=reference)
        with pytest.raises(TypeError, match="GaussianMixture") as info:
            skqflow.save(est, path)
        assert f"OTFlowTransformer.{where}" in str(info.value)
    assert not path.exists()


def test_save_refuses_other_objects(flow_xy, tmp_path):
    path = tmp_path / "model.skqflow"
    with pytest.raises(TypeError, match="random_state.*Generator"):
        skqflow.save(OTFlowTransformer(random_state=np.random.default_rng(0)), path)
    with pytest.raises(TypeError, match="skqflow's estimators"):
        skqflow.save(GaussianMixture(), path)
    est = OTFlowTransformer(**FAST)
    est.field_ = torch.nn.Linear(2, 2)  # a module that is not on the allowlist
    with pytest.raises(TypeError, match=r"OTFlowTransformer\.field_.*Linear"):
        skqflow.save(est, path)
    est.field_ = lambda x: x
    with pytest.raises(TypeError, match=r"OTFlowTransformer\.field_.*function"):
        skqflow.save(est, path)
    assert not path.exists()


# ------------------------------------------------------------------ what load refuses
def test_damaged_files_fail_cleanly(flow_xy, tmp_path):
    path = tmp_path / "model.skqflow"
    skqflow.save(flow_xy, path)
    good = path.read_bytes()
    header_end = 8 + int.from_bytes(good[:8], "little")
    tree_at = good.index(b"gamma")
    cases = {
        "weight byte": bytearray(good),  # a byte of the tensor data
        "tree byte": bytearray(good),  # a character of the JSON tree (still valid JSON)
        "header byte": bytearray(good),  # the safetensors header itself
    }
    cases["weight byte"][len(good) - 3] ^= 0x10
    cases["tree byte"][tree_at] = ord("G")
    cases["header byte"][9] ^= 0xFF
    cases["truncated"] = good[: len(good) - 100]
    cases["header only"] = good[:header_end]
    cases["empty"] = b""
    for content in cases.values():
        path.write_bytes(bytes(content))
        with pytest.raises(ValueError):
            skqflow.load(path)
    path.write_bytes(good)
    assert skqflow.load(path).n_iter_ == flow_xy.n_iter_


def test_a_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not a readable skqflow file"):
        skqflow.load(path)
    assert not marker.exists()


def test_other_safetensors_and_versions_are_refused(flow_xy, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "model.skqflow"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not one written by skqflow.save"):
        skqflow.load(path)
    skqflow.save(flow_xy, path)
    metadata, tensors = _read_file(path)
    save_file(tensors, str(path), metadata={**metadata, "format_version": "99"})
    with pytest.raises(ValueError, match="format version '99'"):
        skqflow.load(path)


@pytest.mark.parametrize("kind", ["estimator", "module"])
@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "posix.system", "GaussianMixture"])
def test_unknown_class_keys_are_refused_without_running_code(kind, name, flow_xy, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    path = tmp_path / "model.skqflow"
    skqflow.save(flow_xy, path)

    def rename(tree):
        node = tree if kind == "estimator" else tree["attrs"]["field_"]
        assert node["$"] == kind
        node["class"] = name
        if kind == "estimator":
            node["params"] = {"command": "echo pwned"}

    rewrite(path, rename)
    with pytest.raises(ValueError, match=f"class '{name}' that skqflow does not load"):
        skqflow.load(path)
    assert calls == []


def set_arg(node, name, value):
    assert node["$"] == "dict"
    [pair] = [p for p in node["v"] if p[0] == name]
    pair[1] = value


def test_malformed_trees_fail_cleanly(flow_xy, tmp_path):
    path = tmp_path / "model.skqflow"
    edits = [
        lambda t: t["attrs"].update(__class__={"$": "ref", "id": 0}),  # dunder attribute
        lambda t: t["attrs"].update(field_={"$": "ref", "id": 999}),  # dangling reference
        lambda t: t["attrs"].update(shift_={"$": "pickle", "v": "gASV"}),  # unknown node type
        lambda t: t["params"].update(no_such_param=1),  # not a constructor parameter
        lambda t: set_arg(t["attrs"]["field_"]["args"], "n_features", 5),  # weights of the wrong shape
        lambda t: set_arg(t["attrs"]["field_"]["args"], "hidden_layer_sizes", [10**9]),  # huge, never built
        lambda t: t["attrs"]["field_"]["state"].popitem(),  # a missing weight
        lambda t: t["attrs"].update(transform=1.0),  # would hide the transform method
    ]
    for edit in edits:
        skqflow.save(flow_xy, path)
        rewrite(path, edit)
        with pytest.raises(ValueError):
            skqflow.load(path)


def test_digest_covers_tree_and_tensors():
    t = {"a": torch.zeros(3)}
    base = _digest("{}", t)
    assert _digest("{ }", t) != base
    assert _digest("{}", {"a": torch.tensor([0.0, 0.0, 1e-45])}) != base
    assert _digest("{}", {"a": torch.zeros(3, dtype=torch.float64)}) != base
    assert _digest("{}", {"b": torch.zeros(3)}) != base
