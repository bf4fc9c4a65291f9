"""skqflow.plotting: the drawn content matches the estimators' outputs (headless)."""

import io
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skqflow import (  # noqa: E402
    InfinitesimalDensityRatio,
    MutualInformationEstimator,
    OTFlowTransformer,
    plotting,
    stack,
)
from skqflow._torch.train import INITIAL_FLOW, REFINEMENT, phase_name  # noqa: E402

from .conftest import FAST  # noqa: E402

TINY = {**FAST, "max_iter": 0}  # the one tiny configuration (tests/conftest.py), no refinement


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 2)), rng.normal(2.0, 0.5, size=(100, 2))


@pytest.fixture(scope="module")
def flow(samples):
    return OTFlowTransformer(**TINY).fit(*stack(*samples))


@pytest.fixture(scope="module")
def ratio(samples):
    return InfinitesimalDensityRatio(
        flow=OTFlowTransformer(**TINY), hidden_layer_sizes=(16,), n_epochs=3, n_intervals=2, method="chain",
        random_state=0,
    ).fit(*stack(*samples))


def _axes():
    return Figure().add_subplot()


def _render(fig):
    fig.savefig(io.BytesIO(), format="png")


def _curves(ax, key):
    """The history curves of metric ``key`` (one Line2D per phase)."""
    return [ln for ln in ax.get_lines() if ln.get_label().lstrip("_") == key]


# ------------------------------------------------------------ trajectories
@pytest.mark.parametrize("n_lines", [7, 500])
def test_trajectories_one_path_per_line(flow, samples, n_lines):
    X_p, X_q = samples
    times = np.linspace(0.0, 1.0, 5)
    ax = _axes()
    assert plotting.plot_trajectories(flow, X_p, n_lines=n_lines, times=times, ax=ax, target=X_q) is ax
    (paths,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = paths.get_segments()
    n = min(n_lines, len(X_p))
    assert len(segments) == n
    expected = flow.interpolate(X_p[:n], times)
    for i in (0, n - 1):
        np.testing.assert_allclose(segments[i], expected[:, i], rtol=1e-6)
    np.testing.assert_allclose(segments[0][0], X_p[0])  # paths start at the rows of P
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters[0].get_offsets()) == len(X_q)  # the target behind the paths
    _render(ax.figure)


def test_trajectories_default_times_and_new_figure(flow, samples):
    ax = plotting.plot_trajectories(flow, samples[0], n_lines=3)
    assert isinstance(ax.figure, Figure)
    (paths,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert [len(s) for s in paths.get_segments()] == [41, 41, 41]
    with pytest.raises(ValueError, match="two-dimensional"):
        plotting.plot_trajectories(flow, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="n_lines"):
        plotting.plot_trajectories(flow, samples[0], n_lines=0)


def test_snapshots_show_the_flow_at_each_time(flow, samples):
    X_p, X_q = samples
    times = [0.0, 0.5, 1.0]
    axes = plotting.plot_snapshots(flow, X_p, times=times, target=X_q)
    assert len(axes) == 3
    first = axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(first, X_p)
    np.testing.assert_allclose(axes[1].collections[0].get_offsets(), flow.interpolate(X_p, 0.5), rtol=1e-6)
    last = [c.get_offsets() for c in axes[2].collections]
    assert len(last) == 2  # Q in grey, then T(X_p)
    np.testing.assert_allclose(last[0], X_q)
    np.testing.assert_allclose(last[1], flow.transform(X_p), rtol=1e-5, atol=1e-5)
    _render(axes[0].figure)


def test_demo_figure_panels(flow, samples):
    X_p, X_q = samples
    times = (0.0, 0.5, 1.0)
    fig = plotting.plot_demo(flow, X_p, X_q, times=times, n_lines=9, title="my title")
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "my title"
    assert len(fig.axes) == len(times) + 3  # snapshots, Q, trajectories, inverse push
    *snapshots, ax_q, ax_lines, ax_pulled = fig.axes
    expected = flow.interpolate(X_p, times)
    for ax, state in zip(snapshots, expected):
        np.testing.assert_allclose(ax.collections[-1].get_offsets(), state, rtol=1e-6)
    np.testing.assert_allclose(ax_q.collections[0].get_offsets(), X_q)
    (paths,) = [c for c in ax_lines.collections if isinstance(c, LineCollection)]
    assert len(paths.get_segments()) == 9
    pulled = ax_pulled.collections[1].get_offsets()
    np.testing.assert_allclose(pulled, flow.inverse_transform(X_q), rtol=1e-6)
    assert {ax.get_xlim() for ax in fig.axes} == {snapshots[0].get_xlim()}  # shared limits
    _render(fig)
    given = plotting.plot_demo(flow, X_p, X_q, pulled=X_q, fig=Figure())
    np.testing.assert_allclose(given.axes[-1].collections[1].get_offsets(), X_q)
    with pytest.raises(ValueError, match="two-dimensional"):
        plotting.plot_demo(flow, X_p[:, :1], X_q)


# -------------------------------------------------------------- log ratio
def test_log_ratio_field_image_is_the_prediction_on_the_grid(ratio):
    ax = _axes()
    out = plotting.plot_log_ratio_field(ratio, xlim=(-1.0, 3.0), ylim=(-2.0, 2.0), resolution=(7, 5), ax=ax)
    assert out is ax
    (image,) = ax.get_images()
    xs, ys = np.linspace(-1.0, 3.0, 7), np.linspace(-2.0, 2.0, 5)
    xx, yy = np.meshgrid(xs, ys)
    expected = ratio.predict_log_ratio(np.column_stack([xx.ravel(), yy.ravel()])).reshape(5, 7)
    np.testing.assert_allclose(image.get_array(), expected, rtol=1e-6)
    assert image.get_extent() == [-1.0, 3.0, -2.0, 2.0]
    assert image.origin == "lower"
    _render(ax.figure)


def test_log_ratio_field_beside_the_truth(ratio):
    def truth(X):
        return X[:, 0] - 2.0 * X[:, 1]

    est_ax, truth_ax = plotting.plot_log_ratio_field(
        ratio, xlim=(0, 1), ylim=(0, 2), resolution=4, truth=truth, t_start=0.0, t_end=0.5
    )
    xx, yy = np.meshgrid(np.linspace(0, 1, 4), np.linspace(0, 2, 4))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    np.testing.assert_allclose(truth_ax.get_images()[0].get_array(), truth(grid).reshape(4, 4))
    partial = ratio.predict_log_ratio(grid, t_start=0.0, t_end=0.5).reshape(4, 4)
    np.testing.assert_allclose(est_ax.get_images()[0].get_array(), partial, rtol=1e-6)
    # one colour scale for both panels, symmetric around 0
    clims = {im.get_clim() for a in (est_ax, truth_ax) for im in a.get_images()}
    assert len(clims) == 1 and clims.pop()[0] < 0
    with pytest.raises(ValueError, match="two Axes"):
        plotting.plot_log_ratio_field(ratio, xlim=(0, 1), ylim=(0, 1), resolution=3, truth=truth, ax=_axes())


# ----------------------------------------------------------------- images
def test_image_interpolation_rows_are_images_columns_are_times():
    rng = np.random.default_rng(1)
    X_img = rng.normal(size=(60, 6))
    flow = OTFlowTransformer(**TINY).fit(X_img)  # a normalizing flow to N(0, I)
    X = X_img[:3]
    times = [0.0, 0.5, 1.0]
    axes = plotting.plot_image_interpolation(flow, X, times=times, image_shape=(2, 3))
    assert axes.shape == (3, 3)
    for i in range(3):
        np.testing.assert_array_equal(axes[i, 0].get_images()[0].get_array(), X[i].reshape(2, 3))
    pushed = flow.transform(X)
    np.testing.assert_allclose(axes[1, 2].get_images()[0].get_array(), pushed[1].reshape(2, 3), rtol=1e-5)
    assert [a.get_title() for a in axes[0]] == ["t = 0", "t = 0.5", "t = 1"]
    _render(axes[0, 0].figure)

    # backwards from t=1 with a map to pixel space, on given Axes
    fig = Figure()
    given = fig.subplots(2, 2)
    out = plotting.plot_image_interpolation(
        flow, pushed[:2], times=[1.0, 0.0], image_shape=(2, 3), axes=given, start=1.0,
        inverse_func=lambda Z: 10.0 * Z,
    )
    assert out[0, 0] is given[0, 0]
    np.testing.assert_allclose(out[0, 0].get_images()[0].get_array(), 10.0 * pushed[0].reshape(2, 3))
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_image_interpolation(flow, X, times=times, image_shape=(4, 4))


# ---------------------------------------------------------------- history
def test_history_of_a_flow_has_one_point_per_epoch(flow):
    ax = plotting.plot_history(flow, ax=_axes())
    (line,) = _curves(ax, "loss")
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(flow.history_) + 1))
    np.testing.assert_allclose(line.get_ydata(), [r["loss"] for r in flow.history_])
    assert "initial flow" in [t.get_text() for t in ax.texts]


def test_history_phases_of_a_refined_flow(samples):
    flow = OTFlowTransformer(**{**TINY, "max_iter": 1, "refine_epochs": 2}).fit(*stack(*samples))
    ax = plotting.plot_history(flow, keys=["loss", "transport_cost"])
    losses = _curves(ax, "loss")
    n_initial = sum(r["phase"] == INITIAL_FLOW for r in flow.history_)
    assert [len(ln.get_xdata()) for ln in losses] == [n_initial, 2, 2]  # init, P->Q, Q->P
    assert np.all(np.diff(np.concatenate([ln.get_xdata() for ln in losses])) > 0)
    costs = _curves(ax, "transport_cost")
    # held-out cost of the initial flow (epoch 0 of the refinement), then after each epoch
    assert sum(len(ln.get_xdata()) for ln in costs) == 1 + 2 * 2
    names = [t.get_text() for t in ax.texts]
    # named as the progress bars name them (skqflow._torch.train.phase_name)
    assert names == [
        phase_name(INITIAL_FLOW), phase_name(REFINEMENT, "P->Q", 1), phase_name(REFINEMENT, "Q->P", 1)
    ]
    assert names == ["initial flow", "refinement P->Q round 1", "refinement Q->P round 1"]
    assert len(_curves(ax, "phase boundary")) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["loss", "transport_cost"]
    _render(ax.figure)
    # a metric of the refinement only: the flow-matching phase is left out
    ax = plotting.plot_history(flow, keys="energy_distance")
    assert "initial flow" not in [t.get_text() for t in ax.texts]
    assert ax.get_xlim()[0] > 1
    with pytest.raises(ValueError, match="none of the metrics"):
        plotting.plot_history(flow, keys="no_such_metric")


def test_history_of_ratio_and_mutual_info(ratio, samples):
    ax = plotting.plot_history(ratio)
    n_flow, n_net = len(ratio.flow_.history_), len(ratio.history_)
    assert [len(ln.get_xdata()) for ln in _curves(ax, "loss")] == [n_flow, n_net]
    assert [t.get_text() for t in ax.texts] == ["initial flow", "ratio net chain"]
    ax = plotting.plot_history(ratio, include_flow=False)
    assert [len(ln.get_xdata()) for ln in _curves(ax, "loss")] == [3]

    X, y = samples[0][:, :1], samples[0][:, 1]
    mi = MutualInformationEstimator(
        flow=OTFlowTransformer(**TINY), hidden_layer_sizes=(8,), n_epochs=4, n_intervals=2, random_state=0
    ).fit(X, y)
    ax = plotting.plot_history(mi, include_flow=False)
    nets = list(dict.fromkeys(r["direction"] for r in mi.density_ratio_.history_))
    for curve, net in zip(_curves(ax, "loss"), nets, strict=True):  # one curve per ratio net
        expected = [r["loss"] for r in mi.density_ratio_.history_ if r["direction"] == net]
        np.testing.assert_allclose(curve.get_ydata(), expected)
    with pytest.raises(ValueError, match="fit it first"):
        plotting.plot_history(OTFlowTransformer())


# ------------------------------------------------------------ conventions
def test_global_matplotlib_state_is_left_alone(flow, samples):
    import matplotlib

    before = dict(matplotlib.rcParams)
    plotting.plot_trajectories(flow, samples[0], n_lines=2)
    plotting.plot_history(flow)
    assert dict(matplotlib.rcParams) == before


def test_missing_matplotlib_says_how_to_install(monkeypatch, flow, ratio, samples):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    calls = [
        lambda: plotting.plot_history(flow),
        lambda: plotting.plot_trajectories(flow, samples[0]),
        lambda: plotting.plot_snapshots(flow, samples[0]),
        lambda: plotting.plot_log_ratio_field(ratio, xlim=(0, 1), ylim=(0, 1)),
        lambda: plotting.plot_image_interpolation(flow, samples[0][:1], times=[0.0], image_shape=(1, 2)),
    ]
    for call in calls:
        with pytest.raises(ImportError, match=r"pip install skqflow\[plot\]"):
            call()


def test_estimators_fitted_on_frames_get_frames(samples):
    """No "X does not have valid feature names" warning for models fitted on DataFrames."""
    import warnings

    from sklearn.frozen import FrozenEstimator

    pd = pytest.importorskip("pandas")
    X, y = stack(*samples)
    frame = pd.DataFrame(X, columns=["a", "b"])
    flow = OTFlowTransformer(**TINY).fit(frame, y)
    ratio = InfinitesimalDensityRatio(flow=FrozenEstimator(flow), hidden_layer_sizes=(8,), n_epochs=1,
                                      random_state=0).fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plotting.plot_trajectories(flow, frame, n_lines=5, ax=_axes())
        plotting.plot_log_ratio_field(ratio, xlim=(-2, 2), ylim=(-2, 2), resolution=5, ax=_axes())
    segments = ax.collections[0].get_segments()
    np.testing.assert_allclose(segments[0][-1], flow.transform(frame.iloc[:1])[0], rtol=1e-5, atol=1e-6)
