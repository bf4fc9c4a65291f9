"""``sample_weight``: P and Q as weighted empirical measures (POT's ``a`` and ``b``).

The oracles: integer weights equal repeated rows (in distribution for the
trained flow; exactly for weighted means such as the held-out criterion and
the score), weight zero equals an absent row, and scaling the weights of one
domain changes nothing.
"""

import importlib.util

import numpy as np
import pytest
import sklearn
import torch
from scipy import stats
from sklearn.frozen import FrozenEstimator

from skqflow import stack
from skqflow._torch.flow import RefineConfig, heldout_monitor, refine, train_classifier
from skqflow._torch.flowmap import FlowMap
from skqflow._torch.losses import path_cost
from skqflow._torch.nn import MLP, VelocityField
from skqflow._torch.ode import integrate, uniform_grid
from skqflow._torch.train import batch_indices, cycled_permutation, weighted_indices

from .conftest import tiny_flow

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------- the sampler
def test_weighted_indices_counts_follow_the_weights():
    gen = torch.Generator().manual_seed(0)
    w = torch.tensor([3.0, 1.0, 0.0, 2.0, 0.5, 0.0, 1.5])
    p = w / w.sum()
    for length in (1, 7, 16, 100, 1001):
        idx = weighted_indices(w, length, gen)
        counts = torch.bincount(idx, minlength=len(w)).double()
        assert idx.shape == (length,)
        # systematic resampling: every row floor or ceil of its expected count
        assert torch.all(counts >= torch.floor(length * p) - 1e-9)
        assert torch.all(counts <= torch.ceil(length * p) + 1e-9)
        assert counts[2] == 0 and counts[5] == 0  # weight zero: never drawn
    # equal weights over one epoch: a permutation
    idx = weighted_indices(torch.ones(50), 50, gen)
    assert sorted(idx.tolist()) == list(range(50))
    # the order is random (not the row order)
    assert idx.tolist() != list(range(50))


def test_weighted_indices_ignore_a_common_scale():
    w = torch.rand(40, generator=torch.Generator().manual_seed(1))
    a = weighted_indices(w, 500, torch.Generator().manual_seed(2))
    b = weighted_indices(w * 8.0, 500, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_epoch_samplers_take_the_weights_and_keep_the_unweighted_stream():
    w = torch.tensor([0.0, 1.0, 0.0, 1.0])
    gen = torch.Generator().manual_seed(0)
    assert set(cycled_permutation(4, 20, gen, w).tolist()) == {1, 3}
    assert set(torch.cat(batch_indices(4, 3, gen, w)).tolist()) <= {1, 3}
    # without weights: exactly the permutations drawn before weights existed
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    permutations = torch.cat([torch.randperm(7, generator=g2) for _ in range(3)])[:20]
    assert torch.equal(cycled_permutation(7, 20, g1), permutations)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert all(torch.equal(a, b) for a, b in zip(batch_indices(9, 4, g1), torch.randperm(9, generator=g2).split(4)))


# ------------------------------------------- exact oracles: weighted means
def test_heldout_criterion_with_integer_weights_equals_repeated_rows():
    torch.manual_seed(0)
    flow = FlowMap(VelocityField(2, (16,), "softplus").double(), 4)
    vp, vq = torch.randn(30, 2, dtype=torch.float64), torch.randn(25, 2, dtype=torch.float64) + 1.0
    # classifiers near the true log-ratios of N(1, I) against N(0, I), so the KL bounds are positive
    clfs = (torch.nn.Linear(2, 1).double(), torch.nn.Linear(2, 1).double())
    with torch.no_grad():
        for clf, sign in zip(clfs, (1.0, -1.0)):
            clf.weight.fill_(sign)
            clf.bias.fill_(-sign)
    gen = np.random.default_rng(0)
    wp, wq = torch.as_tensor(gen.integers(1, 4, 30)), torch.as_tensor(gen.integers(1, 4, 25))
    weighted = heldout_monitor(flow, clfs, vp, vq, 0.3, weights=(wp.double(), wq.double()))()
    repeated = heldout_monitor(flow, clfs, vp.repeat_interleave(wp, 0), vq.repeat_interleave(wq, 0), 0.3)()
    plain = heldout_monitor(flow, clfs, vp, vq, 0.3)()
    for key in ("criterion", "heldout_kl", "energy_distance", "transport_cost"):
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-9, abs=1e-12), key
        assert weighted[key] != pytest.approx(plain[key], rel=1e-3), key  # the weights matter


def test_score_with_integer_weights_equals_repeated_rows(gaussian_2d):
    _, X_p, X_q = gaussian_2d
    X, y = stack(X_p[:150], X_q[:150])
    flow = tiny_flow(max_iter=0).fit(X, y)
    w = np.random.default_rng(0).integers(0, 4, len(X))
    # the fit part (energy distances of the weighted measures) matches the repeated rows exactly
    from skqflow._torch.criteria import fit_and_optimality
    from skqflow._transport import torch_view

    fmap, scaler = torch_view(flow)

    def parts(X_, y_, w_=None):
        tensors = [scaler.to_tensor(X_[y_ == label]) for label in (0, 1)]
        weights = (None, None) if w_ is None else tuple(torch.as_tensor(w_[y_ == label]).double() for label in (0, 1))
        return fit_and_optimality(fmap, *tensors, weights)

    kept = w > 0  # rows of weight zero are dropped, as in fit
    weighted, repeated = parts(X[kept], y[kept], w[kept]), parts(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert weighted["energy_distance"] == pytest.approx(repeated["energy_distance"], rel=1e-5)
    # the asymmetry's probes are drawn per row, so a repeated row gets new ones: equal in expectation
    # (the squared shares, hence twice the relative spread of the shares)
    assert weighted["asymmetry_squared"] == pytest.approx(repeated["asymmetry_squared"], rel=0.4)
    expected = -(weighted["energy_distance"] + weighted["asymmetry_squared"]) * flow.scale_
    assert flow.score(X, y, sample_weight=w) == pytest.approx(expected, rel=1e-5)
    assert flow.score(X, y, sample_weight=w) != pytest.approx(flow.score(X, y), rel=1e-3)
    assert flow.score(X, y, sample_weight=np.full(len(X), 0.3)) == flow.score(X, y)


def test_refinement_batches_and_kl_record_follow_the_weights():
    """All the weight of P on one row: every refinement batch of P->Q is that row."""
    torch.manual_seed(0)
    field = VelocityField(2, (16,), "softplus").double()
    clfs = (MLP(2, (8,), "softplus").double(), MLP(2, (8,), "softplus").double())
    x_p, x_q = torch.randn(20, 2, dtype=torch.float64), torch.randn(20, 2, dtype=torch.float64) + 1.0
    w_p = torch.zeros(20, dtype=torch.float64)
    w_p[5] = 2.0
    cfg = RefineConfig(
        gamma=0.5, max_iter=1, refine_epochs=1, classifier_epochs=0, classifier_inner_epochs=0,
        batch_size=8, classifier_batch_size=8, refine_learning_rate=1e-30, classifier_learning_rate=1e-3,
        n_time_steps=2, n_substeps=1,
    )
    history = refine(field, clfs, x_p, x_q, cfg, torch.Generator().manual_seed(0), weights=(w_p, None))
    record = next(r for r in history if r["direction"] == "P->Q")
    grid = uniform_grid(0.0, 1.0, 2, like=x_p)
    with torch.no_grad():
        states = integrate(field, x_p[5:6], grid, 1)
        expected = float(-clfs[0](states[-1]).mean() + 0.5 * path_cost(states, grid))
        kl = float(-clfs[0](states[-1]).mean())
    assert record["loss"] == pytest.approx(expected, rel=1e-9)
    assert record["kl"] == pytest.approx(kl, rel=1e-9)


def test_classifier_learns_the_weighted_log_ratio():
    """Pushed rows against the same rows weighted by exp(a x): the optimal logit is a x + const."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 1)
    a = 1.0
    w = torch.exp(a * x[:, 0])
    clf = MLP(1, (32,), "softplus")
    opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
    train_classifier(clf, opt, x, x, 60, 200, gen, weights=(None, w))
    grid = torch.linspace(-1.5, 1.5, 31).reshape(-1, 1)
    with torch.no_grad():
        logit = clf(grid).reshape(-1)
    slope = float(np.polyfit(grid[:, 0].numpy(), logit.numpy(), 1)[0])
    assert abs(slope - a) < 0.3, slope


# ------------------------------------------------ the fitted flow: oracles
N_ORACLE = 400
ORACLE_FLOW = dict(max_iter=0, init_steps=300, batch_size=128, hidden_layer_sizes=(32, 32), n_time_steps=4)


@pytest.fixture(scope="module")
def weighted_problem():
    """P = N(0, I_2) with weight 3 on rows with x0 > 0 and 1 elsewhere; Q = N((3, 0), I/4).

    Weighted, P has density 1.5 phi(x0) phi(x1) for x0 > 0 and 0.5 phi(x0)
    phi(x1) otherwise: a product measure, like Q, so its OT map to Q is the
    product of the 1-D monotone maps and W2² the sum of the 1-D costs.
    """
    rng = np.random.default_rng(0)
    X_p = rng.normal(size=(N_ORACLE, 2))
    X_q = rng.normal(size=(N_ORACLE, 2)) * 0.5 + [3.0, 0.0]
    X, y = stack(X_p, X_q)
    w = np.where((y == 0) & (X[:, 0] > 0), 3, 1)
    return X, y, w


def _weighted_p_quantile(u):
    grid = np.linspace(-8, 8, 40001)
    cdf = np.cumsum(stats.norm.pdf(grid) * np.where(grid > 0, 1.5, 0.5))
    return np.interp(u, cdf / cdf[-1], grid)


def _true_w2(weighted):
    u = (np.arange(100000) + 0.5) / 100000
    q0 = _weighted_p_quantile(u) if weighted else stats.norm.ppf(u)
    return float(np.mean((q0 - (3.0 + 0.5 * stats.norm.ppf(u))) ** 2) + 0.25)


def _rms(a, b):
    return float(np.sqrt(((a - b) ** 2).sum(1).mean()))


def test_integer_weights_act_as_repeated_rows(weighted_problem):
    """Weighted fit vs the fit on repeated rows vs the unweighted fit, against the true W2².

    Measured with this configuration (seeds 0-2): the map on fresh points
    differs between seeds by an RMS of 0.09-0.12 and between the weighted and
    the repeated fit of the same seed by 0.04-0.06, against 0.19-0.24 between
    the weighted and the unweighted fit (true maps: 0.22 apart). Transport
    costs: weighted 7.54-7.61, repeated 7.52-7.55, unweighted 10.0-10.1 (true
    W2²: 7.20 and 9.50).
    """
    X, y, w = weighted_problem
    fresh = np.random.default_rng(9).normal(size=(300, 2))
    weighted = tiny_flow(**ORACLE_FLOW).fit(X, y, sample_weight=w)
    repeated = tiny_flow(**ORACLE_FLOW).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    plain = tiny_flow(**ORACLE_FLOW).fit(X, y)
    w2_weighted, w2_plain = _true_w2(True), _true_w2(False)  # 7.20, 9.50
    assert abs(weighted.transport_cost_ - w2_weighted) < 1.0
    assert abs(repeated.transport_cost_ - w2_weighted) < 1.0
    assert abs(plain.transport_cost_ - w2_plain) < 1.0
    assert abs(weighted.transport_cost_ - repeated.transport_cost_) < 0.3
    T_w, T_r, T_u = weighted.transform(fresh), repeated.transform(fresh), plain.transform(fresh)
    assert _rms(T_w, T_r) < 0.12  # within seed-to-seed variability
    assert _rms(T_w, T_u) > 0.15
    # the first coordinate of the true maps, at the median of each P: weighted P's median is below 0
    near = np.abs(fresh[:, 0]) < 1.0
    assert np.mean(T_w[near, 0]) < np.mean(T_u[near, 0]) - 0.15


def test_zero_weights_equal_removed_rows(weighted_problem):
    X, y, w = weighted_problem
    drop = np.arange(len(X)) % 3 == 0
    kept = ~drop
    flow = dict(ORACLE_FLOW, init_steps=30)
    # zero weight and equal weights elsewhere: exactly the fit without those rows
    a = tiny_flow(**flow).fit(X, y, sample_weight=kept.astype(float))
    b = tiny_flow(**flow).fit(X[kept], y[kept])
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.transport_cost_ == b.transport_cost_
    # zero weight and unequal weights elsewhere: exactly the weighted fit without those rows
    c = tiny_flow(**flow).fit(X, y, sample_weight=np.where(kept, w, 0))
    d = tiny_flow(**flow).fit(X[kept], y[kept], sample_weight=w[kept])
    np.testing.assert_array_equal(c.transform(X), d.transform(X))
    assert not np.array_equal(c.transform(X), a.transform(X))
    # with the reference distribution (y=None)
    P = X[y == 0]
    e = tiny_flow(**flow).fit(P, sample_weight=(np.arange(len(P)) % 2).astype(float))
    f = tiny_flow(**flow).fit(P[1::2])
    np.testing.assert_array_equal(e.transform(P), f.transform(P))


def test_scaling_the_weights_of_one_domain_changes_nothing(weighted_problem):
    X, y, w = weighted_problem
    flow = dict(ORACLE_FLOW, init_steps=30, max_iter=1, validation_fraction=0.2)
    a = tiny_flow(**flow).fit(X, y, sample_weight=w)  # weight 1 on every row of Q
    b = tiny_flow(**flow).fit(X, y, sample_weight=np.where(y == 0, 0.37 * w, 1e3))
    np.testing.assert_allclose(b.transform(X), a.transform(X), rtol=1e-6, atol=1e-6)
    assert b.scale_ == pytest.approx(a.scale_, rel=1e-12)
    np.testing.assert_allclose(b.shift_, a.shift_, rtol=1e-12, atol=1e-12)
    # weights whose sum overflows float64
    huge = tiny_flow(**flow).fit(X, y, sample_weight=np.where(y == 0, 1e306 * w, 1.0))
    np.testing.assert_allclose(huge.transform(X), a.transform(X), rtol=1e-6, atol=1e-6)
    # and the weights of Q do matter
    c = tiny_flow(**flow).fit(X, y, sample_weight=np.where(y == 0, w, np.random.default_rng(1).uniform(1, 2, len(w))))
    assert not np.allclose(c.transform(X), a.transform(X), atol=1e-3)


def test_every_phase_gets_the_weights_of_its_rows(weighted_problem, monkeypatch):
    """The initial flow, the refinement and the held-out monitor see each row with its weight."""
    import skqflow._transport as transport

    X, y, _ = weighted_problem
    # weight of a row: a function of the row, so it can be checked on the rows a phase gets
    w = np.where(y == 0, 1.0 + 2.0 * (X[:, 0] > 0), 1.0 + (X[:, 1] > 0))
    seen = []

    def spy(real, names):
        def wrapper(*args, **kwargs):
            seen.append((names, args, kwargs))
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(transport, "fit_flow_matching", spy(transport.fit_flow_matching, (1, 2)))
    monkeypatch.setattr(transport, "refine", spy(transport.refine, (2, 3)))
    monkeypatch.setattr(transport, "heldout_monitor", spy(transport.heldout_monitor, (2, 3)))
    flow = tiny_flow(init_steps=2, max_iter=1, validation_fraction=0.2).fit(X, y, sample_weight=w)
    assert len(seen) == 3
    for (i_p, i_q), args, kwargs in seen:
        w_p, w_q = kwargs["weights"]
        z_p, z_q = args[i_p], args[i_q]
        x_p = z_p.double().numpy() * flow.scale_ + flow.shift_
        x_q = z_q.double().numpy() * flow.scale_ + flow.shift_
        # each domain's weights up to a common factor
        np.testing.assert_allclose(w_p.numpy() / w_p.max().item(), (1.0 + 2.0 * (x_p[:, 0] > 0)) / 3.0)
        np.testing.assert_allclose(w_q.numpy() / w_q.max().item(), (1.0 + (x_q[:, 1] > 0)) / 2.0)


def test_standardisation_is_the_weighted_pooled_one(weighted_problem):
    X, y, w = weighted_problem
    flow = tiny_flow(max_iter=0, init_steps=1).fit(X, y, sample_weight=w)
    P, Q, wp = X[y == 0], X[y == 1], w[y == 0]
    n_p, n_q = len(P), len(Q)
    # each domain keeps its share of rows; inside P, rows count by their weights
    shift = (n_p * np.average(P, axis=0, weights=wp) + n_q * Q.mean(0)) / (n_p + n_q)
    var = (n_p * np.average((P - shift) ** 2, axis=0, weights=wp) + n_q * ((Q - shift) ** 2).mean(0)) / (n_p + n_q)
    np.testing.assert_allclose(flow.shift_, shift, rtol=1e-10)
    assert flow.scale_ == pytest.approx(np.sqrt(var.mean()), rel=1e-10)


def test_unweighted_fits_are_unchanged(gaussian_2d):
    _, X_p, X_q = gaussian_2d
    X, y = stack(X_p[:200], X_q[:200])
    a = tiny_flow().fit(X, y)
    b = tiny_flow().fit(X, y, sample_weight=None)
    c = tiny_flow().fit(X, y, sample_weight=np.full(len(X), 4.0))  # equal weights: the unweighted fit
    for other in (b, c):
        np.testing.assert_array_equal(other.transform(X), a.transform(X))
        assert other.transport_cost_ == a.transport_cost_
        assert other.history_[-1]["criterion"] == a.history_[-1]["criterion"]


# ----------------------------------------------------------- bad weights
@pytest.mark.parametrize(
    "make_weights, match",
    [
        (lambda n, y: -np.ones(n), "[Nn]egative"),
        (lambda n, y: np.where(np.arange(n) == 3, np.nan, 1.0), "NaN"),
        (lambda n, y: np.where(np.arange(n) == 3, np.inf, 1.0), "infinity"),
        (lambda n, y: np.ones(n + 1), "inconsistent|shape|number"),
        (lambda n, y: np.ones((n, 2)), "1D|shape"),
        (lambda n, y: np.zeros(n), "weight.*zero|zero.*weight"),
        (lambda n, y: (y == 0).astype(float), r"zero on every row of domain 1 \(Q\)"),
        (lambda n, y: (y == 1) + (np.arange(n) == np.argmax(y == 0)), r"domain 0 \(P\) has 1 row"),
    ],
)
def test_bad_weights_raise_clear_errors(make_weights, match):
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)))
    flow = tiny_flow(init_steps=1, max_iter=0)
    with pytest.raises(ValueError, match=match):
        flow.fit(X, y, sample_weight=make_weights(len(X), y))
    assert not hasattr(flow, "field_")


def test_fit_leaves_the_weights_unchanged():
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(30, 2)), rng.normal(size=(30, 2)))
    w = rng.uniform(0, 2, len(X))
    w[:4] = 0
    before = w.copy()
    tiny_flow(init_steps=2).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(w, before)


# ----------------------------------------------------------- skada routing
@pytest.mark.skipif(importlib.util.find_spec("skada") is None, reason="skada not installed")
def test_skada_pipeline_routes_sample_weight_to_the_flow():
    # importing skada switches metadata routing on for the process: import it
    # inside the context, which restores the configuration afterwards
    with sklearn.config_context(enable_metadata_routing=True):
        _check_skada_routing()


def _check_skada_routing():
    from skada import make_da_pipeline
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.svm import SVC

    from skqflow.da import OTFlowAdapter

    rng = np.random.default_rng(0)
    n = 120
    Xs, Xt = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + [3.0, 1.0]
    X = np.concatenate([Xs, Xt])
    y = np.concatenate([(Xs[:, 0] > 0).astype(int), -np.ones(n, int)])
    sd = np.concatenate([np.ones(n, int), -2 * np.ones(n, int)])
    w = np.ones(2 * n)
    w[: n // 2] = 0  # the first half of the source rows is absent
    flow = tiny_flow(max_iter=0, init_steps=30)
    pipe = make_da_pipeline(
        OTFlowAdapter(flow).set_fit_request(sample_weight=True), SVC().set_fit_request(sample_weight=False)
    ).fit(X, y, sample_domain=sd, sample_weight=w)
    dropped = OTFlowAdapter(flow).fit(
        np.concatenate([Xs[n // 2 :], Xt]), sample_domain=np.concatenate([sd[n // 2 : n], sd[n:]])
    )
    plain = make_da_pipeline(OTFlowAdapter(flow), SVC()).fit(X, y, sample_domain=sd)
    with pytest.raises(UnsetMetadataPassedError):  # sklearn's rule: each consumer says whether it wants them
        make_da_pipeline(OTFlowAdapter(flow), SVC()).fit(X, y, sample_domain=sd, sample_weight=w)
    routed = pipe.steps[0][1].base_estimator_.flow_
    np.testing.assert_array_equal(routed.transform(Xs), dropped.flow_.transform(Xs))
    assert not np.allclose(routed.transform(Xs), plain.steps[0][1].base_estimator_.flow_.transform(Xs), atol=1e-3)
    # and a frozen flow cannot take weights
    frozen = FrozenEstimator(dropped.flow_)
    with pytest.raises(ValueError, match="frozen flow"):
        OTFlowAdapter(frozen).fit(X, sample_domain=sd, sample_weight=w)


@pytest.mark.skipif(importlib.util.find_spec("skada") is None, reason="skada not installed")
def test_reweight_adapter_multiplies_the_ratio_by_each_source_rows_weight():
    with sklearn.config_context(enable_metadata_routing=True):
        _check_reweight_weights()


def _check_reweight_weights():
    from skada import make_da_pipeline
    from sklearn.linear_model import LogisticRegression

    from skqflow import InfinitesimalDensityRatio
    from skqflow.da import FlowDensityReweightAdapter

    rng = np.random.default_rng(1)
    n = 200
    Xs, Xt = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + [1.0, 0.0]
    X = np.concatenate([Xs, Xt])
    sd = np.concatenate([np.ones(n, int), -np.ones(n, int)])
    w = np.concatenate([rng.uniform(0.5, 2.0, n), np.ones(n)])
    w[:20] = 0.0  # absent source rows
    ratio = InfinitesimalDensityRatio(flow=tiny_flow(max_iter=0, init_steps=20), hidden_layer_sizes=(8,),
                                      n_epochs=2, random_state=0)
    adapter = FlowDensityReweightAdapter(ratio)
    _, params = adapter.fit_transform(X, None, sample_domain=sd, sample_weight=w)
    out = params["sample_weight"]
    assert np.all(out[:20] == 0) and np.all(out[n:] == 0)
    assert out[:n].mean() == pytest.approx(1.0)
    # each kept source row: (its own weight) x (the fitted density ratio), up to one constant
    r = np.exp(adapter.density_ratio_.predict_log_ratio(Xs[20:]))
    quotient = out[20:n] / (w[20:n] * r)
    np.testing.assert_allclose(quotient, quotient[0], rtol=1e-4)
    # the weights reach the ratio's fit: a weighted fit differs from the unweighted one
    plain = FlowDensityReweightAdapter(ratio).fit(X, sample_domain=sd)
    assert not np.allclose(plain.density_ratio_.predict_log_ratio(Xs), adapter.density_ratio_.predict_log_ratio(Xs))
    # and skada's pipeline routes them when asked
    clf = LogisticRegression().set_fit_request(sample_weight=True)
    y = np.concatenate([(Xs[:, 0] > 0).astype(int), -np.ones(n, int)])
    make_da_pipeline(FlowDensityReweightAdapter(ratio).set_fit_request(sample_weight=True), clf).fit(
        X, y, sample_domain=sd, sample_weight=w
    )
