"""InfinitesimalDensityRatio against closed-form log ratios and its own invariants."""

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.mixture import GaussianMixture

from skqflow import InfinitesimalDensityRatio, OTFlowTransformer, stack
from skqflow._base import StandardNormal
from skqflow._torch.chains import pullback_chain
from skqflow._transport import torch_view
from skqflow.datasets import make_gaussian_mixture_pair, make_gaussian_pair

from .conftest import FAST, fast_ratio


@pytest.fixture(scope="module", params=["alternate", "pullback"])
def gaussian_fit(request):
    pair = make_gaussian_pair(2, random_state=3)
    X, y = stack(*pair.sample(8000, random_state=4))
    flow = OTFlowTransformer(max_iter=0, random_state=0)
    est = InfinitesimalDensityRatio(
        flow=flow, hidden_layer_sizes=(64, 64, 64), n_epochs=40, snapshot_rows=request.param,
        method="chain", random_state=0,
    ).fit(X, y)
    return pair, est


@pytest.mark.slow
def test_log_ratio_matches_closed_form(gaussian_fit):
    pair, est = gaussian_fit
    fresh_p, fresh_q = pair.sample(2000, random_state=11)
    for rows in (fresh_p, fresh_q):
        mae = np.abs(est.predict_log_ratio(rows) - pair.log_ratio(rows)).mean()
        assert mae < 0.1


@pytest.mark.slow
def test_partial_ratios_add_up(gaussian_fit):
    pair, est = gaussian_fit
    rows = np.vstack(pair.sample(300, random_state=12))
    whole = est.predict_log_ratio(rows)
    halves = est.predict_log_ratio(rows, t_end=0.4) + est.predict_log_ratio(rows, t_start=0.4)
    np.testing.assert_allclose(halves, whole, atol=1e-4)
    np.testing.assert_allclose(est.predict_log_ratio(rows, t_start=1.0, t_end=0.0), -whole, atol=1e-5)
    np.testing.assert_array_equal(est.predict_log_ratio(rows, t_start=0.3, t_end=0.3), 0.0)
    np.testing.assert_allclose(est.predict_ratio(rows), np.exp(whole), rtol=1e-5)


@pytest.mark.slow
def test_score_beats_the_prior_only_classifier(gaussian_fit):
    pair, est = gaussian_fit
    X, y = stack(*pair.sample(1000, random_state=13))
    assert est.score(X, y) > -np.log(2)  # the prior-only classifier scores -log 2
    # the true log ratio gives the best possible score; the estimate comes close
    logit = pair.log_ratio(X)
    best = -np.mean(np.logaddexp(0, np.where(y == 1, -logit, logit)))
    assert best > -np.log(2) + 0.03  # the task is not trivial
    assert est.score(X, y) > best - 0.01


def test_density_mode_improves_on_the_reference():
    pair = make_gaussian_mixture_pair()
    X_train, _ = pair.sample(4000, random_state=0)
    X_test, _ = pair.sample(2000, random_state=1)
    est = InfinitesimalDensityRatio(
        flow=OTFlowTransformer(max_iter=0, init_steps=600, random_state=0),
        hidden_layer_sizes=(64, 64, 64), n_epochs=20, random_state=0,
    ).fit(X_train)
    truth = pair.log_p(X_test)
    ref = -0.5 * (X_test**2).sum(1) - np.log(2 * np.pi)  # N(0, I), the default reference
    est_log_p = est.score_samples(X_test)
    assert np.abs(est_log_p - truth).mean() < 0.5 * np.abs(ref - truth).mean()
    assert est.score(X_test) == pytest.approx(est_log_p.mean())
    assert est.score(X_test) > ref.mean()
    assert est.classes_ is None


def test_density_mode_with_a_frozen_mixture_reference():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)) * [1.0, 0.3]
    gmm = GaussianMixture(2, random_state=0).fit(X)
    flow = OTFlowTransformer(**FAST, reference=FrozenEstimator(gmm))
    est = InfinitesimalDensityRatio(**fast_ratio(flow=flow)).fit(X)
    expected = gmm.score_samples(X[:5]) - est.predict_log_ratio(X[:5])
    np.testing.assert_allclose(est.score_samples(X[:5]), expected, rtol=1e-5)
    # an unfitted (e.g. cloned) reference is refused with advice
    with pytest.raises(ValueError, match="FrozenEstimator"):
        unfitted = OTFlowTransformer(**FAST, reference=GaussianMixture(2))
        InfinitesimalDensityRatio(**fast_ratio(flow=unfitted)).fit(X)


def test_pullback_chain_goes_back_through_the_inverse_flow(fitted_small, gaussian_2d):
    _, _, X_q = gaussian_2d
    flow = fitted_small  # 4 steps of 2 substeps: the chain of 5 states uses the same grid
    fmap, scaler = torch_view(flow)
    zp, zq = scaler.to_tensor(X_q[:10]), scaler.to_tensor(X_q)
    chain = pullback_chain(fmap, zp, zq, 5)
    assert torch_equal(chain[0], zp)  # the first snapshot is P itself
    states = torch.stack(chain[1:])
    assert states.shape == (5, *zq.shape)
    assert torch_equal(states[-1], zq)  # the last snapshot is Q itself
    back = scaler.from_tensor(states[0], np.float64)
    np.testing.assert_allclose(back, flow.inverse_transform(X_q), atol=1e-6)
    forward = fmap.grid_states(states[0], 5)
    np.testing.assert_allclose(forward.numpy(), states.numpy(), atol=1e-4)  # reversible


class RecordingNormal(StandardNormal):
    """The standard normal reference, keeping every draw."""

    def __init__(self, n_features):
        super().__init__(n_features)
        self.draws = []

    def sample(self, n_samples, random_state=None):
        self.draws.append(super().sample(n_samples, random_state=random_state))
        return self.draws[-1]


def test_pullback_draws_fresh_reference_rows_every_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) * [1.0, 0.3]
    ref = RecordingNormal(2)
    flow = OTFlowTransformer(**FAST, reference=ref).fit(X)
    # the single classifier of method="auto" also draws fresh rows every epoch
    for rows, method, n_draws in (
        ("alternate", "chain", 1), ("pullback", "chain", 1 + 4), ("alternate", "auto", 1 + 4),
        ("pullback", "auto", 1 + 4 + 4),
    ):
        ref.draws = []
        est = InfinitesimalDensityRatio(
            **fast_ratio(flow=FrozenEstimator(flow), n_epochs=4, snapshot_rows=rows, method=method)
        ).fit(X)
        assert len(ref.draws) == n_draws
        assert np.isfinite(est.score_samples(X)).all()
    # every epoch's rows are new
    for a, b in zip(ref.draws[1:], ref.draws[2:]):
        assert not np.allclose(a[: len(b)], b[: len(a)])


def test_pullback_with_an_unseeded_reference_warns_and_draws_once():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) * [1.0, 0.3]
    gmm = GaussianMixture(2, random_state=0).fit(X)  # sample() takes no random_state
    flow = OTFlowTransformer(**FAST, reference=FrozenEstimator(gmm)).fit(X)
    with pytest.warns(UserWarning, match="drawn once"):
        est = InfinitesimalDensityRatio(
            **fast_ratio(flow=FrozenEstimator(flow), snapshot_rows="pullback")
        ).fit(X)
    assert np.isfinite(est.score_samples(X)).all()


def test_score_samples_only_in_density_mode():
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(100, 2)), rng.normal(1.0, size=(100, 2)))
    est = InfinitesimalDensityRatio(**fast_ratio()).fit(X, y)
    assert not hasattr(est, "score_samples")
    with pytest.raises(ValueError, match="y is required"):
        est.score(X)


def test_frozen_flow_is_reused_not_refitted():
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(150, 2)), rng.normal(1.0, size=(150, 2)))
    flow = OTFlowTransformer(**FAST).fit(X, y)
    before = [p.detach().clone() for p in flow.field_.parameters()]
    est = InfinitesimalDensityRatio(**fast_ratio(flow=FrozenEstimator(flow))).fit(X, y)
    assert est.flow_ is flow
    for a, b in zip(before, flow.field_.parameters()):
        assert torch_equal(a, b)
    with pytest.raises(ValueError, match="features"):
        InfinitesimalDensityRatio(**fast_ratio(flow=FrozenEstimator(flow))).fit(np.c_[X, X], y)
    with pytest.raises(ValueError, match="labels"):
        InfinitesimalDensityRatio(**fast_ratio(flow=FrozenEstimator(flow))).fit(X, y + 5)
    with pytest.raises(ValueError, match="pass y"):
        InfinitesimalDensityRatio(**fast_ratio(flow=FrozenEstimator(flow))).fit(X)


def torch_equal(a, b):
    return bool((a == b).all())


def test_unfitted_flow_parameter_is_not_modified():
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(100, 2)), rng.normal(1.0, size=(100, 2)))
    flow = OTFlowTransformer(**{**FAST, "random_state": None})
    est = InfinitesimalDensityRatio(**fast_ratio(flow=flow)).fit(X, y)
    assert flow.random_state is None and not hasattr(flow, "field_")
    assert est.flow_ is not flow
    # the estimator's random_state seeds the cloned flow: the same seed, the same ratios
    again = InfinitesimalDensityRatio(**fast_ratio(flow=flow)).fit(X, y)
    np.testing.assert_array_equal(est.predict_log_ratio(X), again.predict_log_ratio(X))


def test_nested_flow_parameters():
    est = InfinitesimalDensityRatio(flow=OTFlowTransformer())
    est.set_params(flow__gamma=0.3)
    assert est.get_params()["flow__gamma"] == 0.3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(100, 2)), rng.normal(1.0, size=(100, 2)))
    est = InfinitesimalDensityRatio(**fast_ratio()).fit(X.astype(dtype), y)
    assert est.predict_log_ratio(X.astype(dtype)).dtype == dtype


def test_bad_input():
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(100, 2)), rng.normal(1.0, size=(100, 2)))
    est = InfinitesimalDensityRatio(**fast_ratio())
    with pytest.raises(ValueError, match="two"):
        est.fit(X, np.arange(len(X)) % 3)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    est.fit(X, y)
    with pytest.raises(ValueError, match="t_end"):
        est.predict_log_ratio(X, t_end=1.5)
    with pytest.raises(ValueError, match="features"):
        est.predict_log_ratio(X[:, :1])


# ------------------------------------------------------------ method="classifier"
def _sabotage(monkeypatch, which):
    """Make the net of one candidate (``"chain"`` or ``"single"``) a constant-logit classifier."""
    import skqflow._density_ratio as module

    real = module.fit_time_score

    def fit(net, snapshots, times, **kwargs):
        history = real(net, snapshots, times, **kwargs)
        if (len(times) == 2) == (which == "single"):
            with torch.no_grad():
                for p in net.parameters():
                    p.zero_()
                net.mlp.net[-1].bias.fill_(3.0)  # logit +3 everywhere: a bad classifier
        return history

    monkeypatch.setattr(module, "fit_time_score", fit)


@pytest.mark.parametrize("broken, kept", [("chain", "single classifier"), ("single", "chain")])
def test_classifier_keeps_the_net_that_classifies_held_out_rows_better(monkeypatch, broken, kept):
    pair = make_gaussian_pair(2, random_state=3)
    X, y = stack(*pair.sample(400, random_state=4))
    _sabotage(monkeypatch, broken)
    est = InfinitesimalDensityRatio(**fast_ratio(n_epochs=5, hidden_layer_sizes=(32,), n_intervals=3,
                                                 method="classifier")).fit(X, y)
    assert est.method_ == kept
    assert set(est.held_out_loss_) == {"chain", "single classifier"}
    other = ({"chain", "single classifier"} - {kept}).pop()
    assert est.held_out_loss_[kept] < est.held_out_loss_[other]
    assert len(est.times_) == (2 if kept == "single classifier" else 4)
    fresh = np.vstack(pair.sample(200, random_state=5))
    assert np.ptp(est.predict_log_ratio(fresh)) > 0.1  # not the constant net
    assert {r["direction"] for r in est.history_} == {"chain", "single classifier"}
    assert {r["direction"] for r in est.history_ if r.get("selected")} == {kept}


def test_classifier_without_held_out_rows_trains_only_the_chain():
    pair = make_gaussian_pair(2, random_state=3)
    X, y = stack(*pair.sample(200, random_state=4))
    est = InfinitesimalDensityRatio(**fast_ratio(n_intervals=3, validation_fraction=0.0,
                                                 method="classifier")).fit(X, y)
    assert est.method_ == "chain" and est.held_out_loss_ == {}
    assert {r["direction"] for r in est.history_} == {"chain"}


def test_partial_interval_of_a_single_classifier_is_refused():
    pair = make_gaussian_pair(2, random_state=3)
    X, y = stack(*pair.sample(200, random_state=4))
    est = InfinitesimalDensityRatio(**fast_ratio(n_intervals=1, method="classifier")).fit(X, y)
    assert est.method_ == "chain" and len(est.times_) == 2
    with pytest.raises(ValueError, match="single classifier"):
        est.predict_log_ratio(X, t_end=0.5)
    np.testing.assert_array_equal(est.predict_log_ratio(X[:3], t_start=0.5, t_end=0.5), 0.0)


@pytest.mark.parametrize(
    "chain_offset, stops, kept",
    [(1.0, True, "single classifier"), (-1.0, False, "chain"), (0.0, False, "single classifier")],
)
def test_classifier_stops_a_chain_that_is_clearly_behind_at_the_same_epoch(monkeypatch, chain_offset, stops, kept):
    """The chain's held-out classifier terms shifted by +1 (clearly worse) or -1 (better) per row,
    or (0) replaced by the single classifier's latest terms: an exact tie, which the single wins."""
    import skqflow._density_ratio as module

    real = module.held_out_terms

    latest_single = {}

    def shifted(net, grid, p_rows, q_rows, quadrature="gauss"):
        terms = real(net, grid, p_rows, q_rows, quadrature)
        if len(grid) == 2:
            latest_single["terms"] = terms
            return terms
        if chain_offset == 0.0:  # an exact tie with the single classifier's latest terms
            return latest_single["terms"]
        return tuple(t + chain_offset for t in terms)

    monkeypatch.setattr(module, "held_out_terms", shifted)
    pair = make_gaussian_pair(2, random_state=3)
    X, y = stack(*pair.sample(400, random_state=4))
    n_epochs = 10
    est = InfinitesimalDensityRatio(**fast_ratio(n_epochs=n_epochs, hidden_layer_sizes=(16,), n_intervals=3,
                                                 method="classifier")).fit(X, y)
    chain = [r for r in est.history_ if r["direction"] == "chain"]
    single = [r for r in est.history_ if r["direction"] == "single classifier"]
    assert len(single) == n_epochs
    first_check = max(2, int(np.ceil(module.ABANDON_AFTER * n_epochs)))
    if stops:
        assert len(chain) == first_check and chain[-1]["stopped_early"]
    else:
        assert len(chain) == n_epochs and not any(r.get("stopped_early") for r in chain)
    assert est.method_ == kept  # on a tie, the single classifier
    # method="chain" never compares, so never stops
    forced = InfinitesimalDensityRatio(**fast_ratio(n_epochs=n_epochs, hidden_layer_sizes=(16,), n_intervals=3,
                                                    method="chain")).fit(X, y)
    assert len(forced.history_) == n_epochs


def test_stop_training_ends_after_the_current_epoch():
    from skqflow._torch.train import Phase, StopTraining, run_epochs

    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.ones(4, 1)
    phase = Phase(modules=[net], optimizer=opt, batches=lambda: iter([x]), loss=lambda b: net(b).pow(2).mean())
    seen = []

    def on_epoch(epoch, loss):
        seen.append(epoch)
        if epoch == 2:
            raise StopTraining

    means = run_epochs(phase, 10, on_epoch)
    assert seen == [0, 1, 2] and len(means) == 3
