"""Matplotlib views of fitted skqflow estimators.

matplotlib is an optional dependency (``pip install skqflow[plot]``): it is
imported inside each function. Every function draws on the Axes it is given
or, without one, on a new :class:`matplotlib.figure.Figure` that is not
registered with pyplot; the backend and the ``rcParams`` are never changed.
In scripts and notebooks, pass Axes made with ``matplotlib.pyplot.subplots``
to see the figures with ``pyplot.show()``.

Functions
---------
plot_history
    Per-epoch training curves from ``history_``, phase by phase.
plot_snapshots
    The rows of P carried to a few times along the flow (2-D).
plot_trajectories
    The paths of the rows along the flow (2-D).
plot_log_ratio_field
    A heat map of ``predict_log_ratio`` on a 2-D grid, beside the truth.
plot_image_interpolation
    Rows of images carried along the flow, one column per time.
plot_demo
    One figure of a 2-D flow: snapshots, the target, trajectories and the
    inverse push (the picture of ``python -m skqflow demo``).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ._torch.train import RATIO_NET, phase_name

__all__ = [
    "plot_demo",
    "plot_history",
    "plot_image_interpolation",
    "plot_log_ratio_field",
    "plot_snapshots",
    "plot_trajectories",
]

_ADVICE = "skqflow.plotting needs matplotlib: pip install skqflow[plot] (or pip install matplotlib)"


def _require_matplotlib():
    """Import matplotlib or raise an ImportError that says how to install it."""
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401
    except ImportError as exc:
        raise ImportError(_ADVICE) from exc
    return matplotlib


def _new_figure(figsize):
    """A figure outside pyplot (no backend is selected or changed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _new_axes(figsize=(5.0, 5.0)):
    return _new_figure(figsize).add_subplot()


def _axis_limits(*samples, margin=0.05):
    """Square-padded limits holding 99.8% of the points of ``samples``.

    Parameters
    ----------
    *samples : ndarray of shape (..., 2)
        Point clouds or trajectories; only the last axis is read as
        coordinates.
    margin : float, default=0.05
        Padding, as a share of the widest range, added on each side.

    Returns
    -------
    xlim, ylim : tuple of float
        ``(low, high)`` of each coordinate.
    """
    pooled = np.concatenate([np.asarray(s, dtype=float).reshape(-1, np.shape(s)[-1]) for s in samples])
    lo, hi = np.quantile(pooled, [0.001, 0.999], axis=0)
    pad = margin * (hi - lo).max()
    return (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad)


def _check_2d(X, what):
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"{what} needs two-dimensional rows; got an array of shape {X.shape}")
    return X


def _as_input(estimator, A):
    """``A`` as the estimator expects it: a DataFrame with its column names if it was fitted on one."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return A
    import pandas as pd  # fitted on a DataFrame, so pandas is there

    return pd.DataFrame(A, columns=names)


def _colour_values(values):
    """Values scaled to [0, 1] for a colour map."""
    values = np.asarray(values, dtype=float)
    return (values - values.min()) / (np.ptp(values) or 1.0)


# ----------------------------------------------------------------- history
def _history_records(estimator, include_flow):
    """``(phase, records)`` segments of an estimator's training history, in order."""
    if isinstance(estimator, (list, tuple)):
        return _split_phases(list(estimator), default="training")
    inner = getattr(estimator, "density_ratio_", None)  # MutualInformationEstimator
    if inner is not None:
        return _history_records(inner, include_flow)
    if not hasattr(estimator, "history_"):
        raise ValueError(
            f"{type(estimator).__name__} has no history_: fit it first (plot_history reads the "
            "history_ of an OTFlowTransformer, an InfinitesimalDensityRatio or a "
            "MutualInformationEstimator)"
        )
    segments = []
    flow = getattr(estimator, "flow_", None)  # InfinitesimalDensityRatio
    if include_flow and flow is not None and hasattr(flow, "history_"):
        segments += _history_records(flow, include_flow=False)
    default = RATIO_NET if flow is not None else "training"
    return segments + _split_phases(list(estimator.history_), default=default)


def _phase_of(record, default):
    """Display name of the phase of a history record (:func:`~skqflow._torch.train.phase_name`).

    Returns None for the record of the held-out state before the refinement
    (``direction == "initial"``), which opens the next segment.
    """
    direction = record.get("direction")
    if direction == "initial":
        return None
    return phase_name(record.get("phase", default), direction, record.get("round"))


def _split_phases(records, default):
    segments = []  # [name, records]; name None: opened by the state before the refinement
    for record in records:
        name = _phase_of(record, default)
        if name is None:
            segments.append([None, [record]])
        elif segments and segments[-1][0] in (name, None):
            segments[-1][0] = name
            segments[-1][1].append(record)
        else:
            segments.append([name, [record]])
    return [(name or phase_name(recs[0].get("phase", default)), recs) for name, recs in segments]


def _is_metric(value):
    return isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool)


_NOT_METRICS = {"epoch", "round", "time"}


def plot_history(estimator, *, ax=None, keys=None, include_flow=True):
    """Per-epoch training curves of a fitted estimator, phase by phase.

    Reads ``history_``: one record (dict) per epoch. An
    :class:`~skqflow.OTFlowTransformer` has the phase ``"initial flow"``
    (flow matching) and, when ``max_iter > 0``, refinement epochs in each
    direction and round (with held-out metrics such as ``criterion``,
    ``transport_cost`` and ``energy_distance``); an
    :class:`~skqflow.InfinitesimalDensityRatio` adds the epochs of its ratio
    net after those of its flow (``flow_``); a
    :class:`~skqflow.MutualInformationEstimator` shows its ``density_ratio_``.

    The x axis counts epochs across all phases; phases are separated by
    dotted vertical lines and named at the top as the progress bars name
    them (e.g. ``"initial flow"``, ``"refinement P->Q round 1"``, ``"ratio
    net"``); the held-out metrics of the flow before the refinement (epoch
    0) open the first refinement phase; phases that hold none of
    ``keys`` are left out. Each metric is one colour, drawn as one line per
    phase (the losses of different phases are different quantities and are
    not joined).

    Parameters
    ----------
    estimator : fitted estimator or list of dict
        An estimator with ``history_`` (see above) or such a list of records.
    ax : matplotlib.axes.Axes or None, default=None
        Where to draw; ``None`` makes a new figure.
    keys : str, sequence of str or None, default=None
        The metrics to draw. ``None`` draws ``"loss"`` and
        ``"validation_loss"`` (those that appear).
    include_flow : bool, default=True
        For a density-ratio (or mutual-information) estimator, also draw the
        epochs of its flow before those of the ratio net.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn on; each curve segment is a ``Line2D`` labelled with
        its metric (segments after the first have labels starting with
        ``"_"`` so that the legend shows each metric once; the phase
        boundaries are labelled ``"_phase boundary"``).

    Raises
    ------
    ValueError
        If the estimator has no ``history_`` or none of ``keys`` appears.
    """
    _require_matplotlib()
    segments = _history_records(estimator, include_flow)
    records = [r for _, recs in segments for r in recs]
    found = []
    for r in records:
        found += [k for k, v in r.items() if k not in _NOT_METRICS and _is_metric(v) and k not in found]
    if keys is None:
        keys = [k for k in ("loss", "validation_loss") if k in found]
    elif isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    missing = [k for k in keys if k not in found]
    if not keys or len(missing) == len(keys):
        raise ValueError(f"none of the metrics {keys} is in the history; it holds {found}")
    if ax is None:
        ax = _new_axes((7.0, 4.0))
    offset, bounds, drawn, labelled = 0, [], [], set()
    for name, recs in segments:
        xs = [offset + r.get("epoch", i + 1) for i, r in enumerate(recs)]
        shown = False
        for j, key in enumerate(keys):
            pts = [(x, float(r[key])) for x, r in zip(xs, recs) if _is_metric(r.get(key))]
            if not pts:
                continue
            x, y = zip(*pts)
            ax.plot(x, y, color=f"C{j}", marker="." if len(pts) < 30 else None,
                    label=key if key not in labelled else f"_{key}")
            labelled.add(key)
            drawn += x
            shown = True
        if shown:  # phases without any of the metrics are left out
            bounds.append((name, offset, max(xs)))
        offset = max(xs)
    import matplotlib.transforms as mtransforms

    top = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    for k, (name, lo, hi) in enumerate(bounds):
        if k > 0:
            ax.axvline(lo, color="0.5", linestyle=":", linewidth=1, label="_phase boundary")
        ax.text(
            (lo + hi) / 2, 0.98, name, transform=top, ha="center", va="top", fontsize="x-small",
            rotation=90 if len(bounds) > 2 else 0, color="0.3",
        )
    lo, hi = min(drawn), max(drawn)
    ax.set_xlim(lo - 0.02 * (hi - lo) - 0.5, hi + 0.02 * (hi - lo) + 0.5)
    ax.set_xlabel("epoch (all phases)")
    ax.set_ylabel(keys[0] if len(keys) == 1 else "value")
    ax.legend(loc="center right", fontsize="small")
    return ax


# ------------------------------------------------------------- 2-D flows
def plot_snapshots(flow, X, *, times=(0.0, 0.25, 0.5, 0.75, 1.0), axes=None, target=None, start=0.0, s=1.0):
    """Scatter plots of the rows carried along a 2-D flow to a few times.

    Panel ``i`` shows ``flow.interpolate(X, times[i], start=start)``, the
    distribution at that time (the top row of the paper's figure 2). Points
    are coloured by their first coordinate in ``X``, so that one can follow
    where each part of the sample goes. ``target`` (e.g. the sample of Q)
    is drawn in light grey behind the panel of time ``1 - start``.

    Parameters
    ----------
    flow : OTFlowTransformer
        Fitted on two-dimensional data.
    X : array-like of shape (n_samples, 2)
        Rows at time ``start`` (rows of P for ``start=0``).
    times : array-like of shape (n_times,), default=(0, 0.25, 0.5, 0.75, 1)
        Times of the panels.
    axes : sequence of matplotlib.axes.Axes or None, default=None
        One Axes per time; ``None`` makes a new figure with one row.
    target : array-like of shape (n_target, 2) or None, default=None
        Rows of the other end of the flow.
    start : float, default=0.0
        Time at which ``X`` lives.
    s : float, default=1.0
        Marker size.

    Returns
    -------
    axes : ndarray of matplotlib.axes.Axes, shape (n_times,)
    """
    _require_matplotlib()
    X = _check_2d(X, "plot_snapshots")
    times = np.atleast_1d(np.asarray(times, dtype=float))
    states = flow.interpolate(_as_input(flow, X), times, start=start)
    if axes is None:
        fig = _new_figure((3.0 * len(times), 3.2))
        axes = fig.subplots(1, len(times), squeeze=False)[0]
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) != len(times):
        raise ValueError(f"got {len(axes)} Axes for {len(times)} times")
    colour = _colour_values(X[:, 0])
    end = 1.0 - start
    xlim, ylim = _axis_limits(states, *(() if target is None else (_check_2d(target, "target"),)))
    for ax, t, state in zip(axes, times, states):
        if target is not None and np.isclose(t, end):
            ax.scatter(*np.asarray(target).T, s=s, c="0.8", rasterized=True)
        ax.scatter(*state.T, s=s, c=colour, cmap="viridis", vmin=0.0, vmax=1.0, rasterized=True)
        ax.set_title(f"t = {t:g}")
        ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    return axes


def _draw_trajectories(ax, lines, colour=None):
    """Draw trajectories ``lines`` (n_times, n, 2) with their start and end points.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    lines : ndarray of shape (n_times, n_lines, 2)
        Positions of each path at each time.
    colour : array-like of shape (n_lines,) or None, default=None
        Values mapped to the viridis colours of the paths; ``None`` colours
        by the first coordinate of the start points.

    Returns
    -------
    collection : matplotlib.collections.LineCollection
        One segment (polyline) per path.
    """
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    lines = np.asarray(lines)
    colour = lines[0, :, 0] if colour is None else colour
    colours = colormaps["viridis"](_colour_values(colour))
    collection = LineCollection(
        np.transpose(lines, (1, 0, 2)), colors=colours, linewidths=0.5, alpha=0.6, label="paths"
    )
    ax.add_collection(collection)
    ax.scatter(*lines[0].T, s=3, c="k", zorder=3, label="start")
    ax.scatter(*lines[-1].T, s=3, c="tab:red", zorder=3, label="end")
    ax.legend(loc="lower right", fontsize="small", markerscale=3)
    ax.set_title(f"{lines.shape[1]} trajectories")
    return collection


def plot_trajectories(flow, X, *, n_lines=200, times=None, ax=None, target=None, start=0.0):
    """Paths of rows along a two-dimensional flow.

    The first ``n_lines`` rows of ``X`` are carried along the flow by
    ``flow.interpolate(X, times, start=start)`` and drawn as polylines
    coloured by their first coordinate, with their start (black) and end
    (red) points; ``target``, if given, is scattered in light grey behind.

    Parameters
    ----------
    flow : OTFlowTransformer
        Fitted on two-dimensional data.
    X : array-like of shape (n_samples, 2)
        Rows at time ``start`` (rows of P for ``start=0``).
    n_lines : int, default=200
        Number of paths drawn (all rows if ``X`` has fewer).
    times : array-like of shape (n_times,) or None, default=None
        Times at which the paths are sampled, in drawing order; ``None``
        means 41 equally spaced times from ``start`` to ``1 - start``.
    ax : matplotlib.axes.Axes or None, default=None
        Where to draw; ``None`` makes a new figure.
    target : array-like of shape (n_target, 2) or None, default=None
        Rows of the other end of the flow, e.g. the sample of Q.
    start : float, default=0.0
        Time at which ``X`` lives (1 for rows of Q, drawn backwards).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn on; the paths are its ``LineCollection``, one segment
        per path.
    """
    _require_matplotlib()
    X = _check_2d(X, "plot_trajectories")
    if not isinstance(n_lines, Integral) or n_lines < 1:
        raise ValueError(f"n_lines must be a positive integer; got {n_lines!r}")
    times = np.linspace(start, 1.0 - start, 41) if times is None else np.asarray(times, dtype=float)
    lines = flow.interpolate(_as_input(flow, X[:n_lines]), np.atleast_1d(times), start=start)
    if ax is None:
        ax = _new_axes()
    clouds = [lines]
    if target is not None:
        target = _check_2d(target, "target")
        ax.scatter(*target.T, s=1, c="0.85", rasterized=True, label="target")
        clouds.append(target)
    _draw_trajectories(ax, lines)
    xlim, ylim = _axis_limits(*clouds)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    return ax


def plot_demo(
    flow, X_p, X_q, *, pulled=None, times=(0.0, 0.25, 0.5, 0.75, 1.0), n_lines=300, title=None, fig=None,
):
    """One figure of a two-dimensional flow from P to Q.

    Top row: the rows of P carried to each of ``times`` (coloured by their
    first coordinate; ``X_q`` in grey behind the panel of t = 1), drawn by
    :func:`plot_snapshots`. Bottom row: the sample of Q, the paths of the
    first ``n_lines`` rows of P (:func:`plot_trajectories`), and the inverse
    push ``T^{-1}(X_q)`` over the sample of P. All panels share the same
    limits. This is the picture of ``python -m skqflow demo``.

    Parameters
    ----------
    flow : OTFlowTransformer
        Fitted on two-dimensional data.
    X_p : array-like of shape (n_p, 2)
        Rows of P, e.g. test rows not used in training.
    X_q : array-like of shape (n_q, 2)
        Rows of Q.
    pulled : array-like of shape (n_q, 2) or None, default=None
        ``flow.inverse_transform(X_q)`` if already computed; ``None``
        computes it.
    times : array-like of shape (n_times,), default=(0, 0.25, 0.5, 0.75, 1)
        Times of the panels of the top row.
    n_lines : int, default=300
        Number of trajectories drawn.
    title : str or None, default=None
        Title of the figure; ``None`` gives a generic one.
    fig : matplotlib.figure.Figure or None, default=None
        An empty figure to draw on; ``None`` makes a new figure (16 x 7
        inches) outside pyplot.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; its Axes are ``fig.axes``: the ``len(times)`` snapshots,
        then Q, the trajectories and the inverse push.
    """
    _require_matplotlib()
    X_p, X_q = _check_2d(X_p, "plot_demo"), _check_2d(X_q, "plot_demo")
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if pulled is None:
        pulled = flow.inverse_transform(_as_input(flow, X_q))
    pulled = _check_2d(pulled, "pulled")
    if fig is None:
        fig = _new_figure((16.0, 7.0))
    width = max(len(times), 3)
    left = (width - 3) // 2
    mosaic = [
        [f"t{i}" for i in range(len(times))] + ["."] * (width - len(times)),
        ["."] * left + ["q", "lines", "pulled"] + ["."] * (width - 3 - left),
    ]
    axes = fig.subplot_mosaic(mosaic)
    snapshots = [axes[f"t{i}"] for i in range(len(times))]
    plot_snapshots(flow, X_p, times=times, axes=snapshots, target=X_q)
    for ax, t in zip(snapshots, times):
        ax.set_title(f"T(X_P) at t = {t:g}")
    axes["q"].scatter(*X_q.T, s=1, c="tab:red", rasterized=True)
    axes["q"].set_title("X_Q (target)")
    plot_trajectories(flow, X_p, n_lines=n_lines, ax=axes["lines"])
    axes["pulled"].scatter(*X_p.T, s=1, c="0.8", rasterized=True)
    axes["pulled"].scatter(*pulled.T, s=1, c="tab:orange", rasterized=True)
    axes["pulled"].set_title("T^-1(X_Q) (orange) over X_P (grey)")
    xlim, ylim = _axis_limits(X_p, X_q, pulled)
    (x0, x1), (y0, y1) = snapshots[0].get_xlim(), snapshots[0].get_ylim()
    xlim, ylim = (min(xlim[0], x0), max(xlim[1], x1)), (min(ylim[0], y0), max(ylim[1], y1))
    for ax in axes.values():
        ax.set(xlim=xlim, ylim=ylim, aspect="equal", xticks=[], yticks=[])
    fig.suptitle("optimal-transport flow from P to Q" if title is None else title)
    return fig


# ------------------------------------------------------------ log ratios
def _grid(xlim, ylim, resolution):
    nx, ny = (resolution, resolution) if isinstance(resolution, Integral) else resolution
    if int(nx) < 2 or int(ny) < 2:
        raise ValueError(f"resolution must be at least 2 points per axis; got {resolution!r}")
    xs = np.linspace(float(xlim[0]), float(xlim[1]), int(nx))
    ys = np.linspace(float(ylim[0]), float(ylim[1]), int(ny))
    xx, yy = np.meshgrid(xs, ys)
    return xs, ys, np.column_stack([xx.ravel(), yy.ravel()])


def plot_log_ratio_field(
    ratio, *, xlim, ylim, resolution=100, ax=None, truth=None, t_start=0.0, t_end=1.0,
    vmin=None, vmax=None, cmap="coolwarm", colorbar=True,
):
    """Heat map of an estimated log density ratio over a 2-D box, beside the truth.

    Evaluates ``ratio.predict_log_ratio`` (``log q(x) - log p(x)``) on a
    ``resolution`` grid over ``xlim`` x ``ylim``. With ``t_start`` and
    ``t_end`` it shows a partial ratio ``log p_{t_end}(x) - log p_{t_start}(x)``
    between two distributions of the chain along the flow (the bottom row of
    the paper's figure 2). If ``truth`` is given, the exact log ratio is
    drawn in a second panel with the same colour scale.

    Parameters
    ----------
    ratio : InfinitesimalDensityRatio
        Fitted on two-dimensional data (any object with
        ``predict_log_ratio(X)`` works when the times are left at 0 and 1).
    xlim, ylim : tuple of float
        ``(low, high)`` of the box.
    resolution : int or tuple of int, default=100
        Grid points along x and y (one int for both).
    ax : matplotlib.axes.Axes, pair of Axes or None, default=None
        Where to draw: one Axes, or two when ``truth`` is given (estimate,
        truth). ``None`` makes a new figure.
    truth : callable or None, default=None
        ``truth(X) -> ndarray of shape (n,)``, the exact log ratio with the
        same sign convention (e.g. ``GaussianMixturePair.log_ratio``).
    t_start, t_end : float, default=0.0 and 1.0
        Time range of the integral of the ratio net.
    vmin, vmax : float or None, default=None
        Colour limits. ``None``: symmetric around 0 at the 98th percentile
        of the absolute values (of both panels), so that far-off corners do
        not wash out the picture.
    cmap : str, default="coolwarm"
        Colour map (blue: Q less likely than P).
    colorbar : bool, default=True
        Add a colour bar.

    Returns
    -------
    ax : matplotlib.axes.Axes, or tuple (ax, ax_truth)
        The panel(s). The estimate is the ``AxesImage`` of ``ax``; its array
        has shape ``(ny, nx)``, row ``i`` and column ``j`` holding the value
        at ``(xs[j], ys[i])`` with ``xs``, ``ys`` equally spaced from the
        low to the high limits (``origin="lower"``).
    """
    _require_matplotlib()
    xs, ys, points = _grid(xlim, ylim, resolution)
    n_features = getattr(ratio, "n_features_in_", 2)
    if n_features != 2:
        raise ValueError(
            f"plot_log_ratio_field draws two-dimensional ratios; this one has {n_features} features"
        )
    kwargs = {} if (t_start, t_end) == (0.0, 1.0) else {"t_start": t_start, "t_end": t_end}
    log_ratio = ratio.predict_log_ratio(_as_input(ratio, points), **kwargs)
    fields = [np.asarray(log_ratio, dtype=float).reshape(len(ys), len(xs))]
    titles = ["estimated log q/p" if not kwargs else f"estimated log p({t_end:g}) / p({t_start:g})"]
    if truth is not None:
        fields.append(np.asarray(truth(points), dtype=float).reshape(len(ys), len(xs)))
        titles.append("exact log q/p")
    if ax is None:
        fig = _new_figure((4.6 * len(fields) + 0.8, 4.2))
        axes = list(fig.subplots(1, len(fields), squeeze=False)[0])
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != len(fields):
            raise ValueError(
                f"got {len(axes)} Axes for {len(fields)} panel(s); pass two Axes when truth is given"
            )
    if vmin is None or vmax is None:
        finite = np.concatenate([f[np.isfinite(f)] for f in fields])
        bound = float(np.quantile(np.abs(finite), 0.98)) if finite.size else 1.0
        vmin = -bound if vmin is None else vmin
        vmax = bound if vmax is None else vmax
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    for a, field, title in zip(axes, fields, titles):
        im = a.imshow(
            field, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
            interpolation="nearest", aspect="equal",
        )
        a.set_title(title)
    if colorbar:
        axes[0].figure.colorbar(im, ax=axes, shrink=0.85, label="log ratio")
    return axes[0] if len(axes) == 1 else tuple(axes)


# ----------------------------------------------------------------- images
def plot_image_interpolation(
    flow, X, *, times, image_shape, axes=None, start=0.0, inverse_func=None, cmap="gray_r",
    vmin=None, vmax=None,
):
    """Images carried along the flow: one row per image, one column per time.

    ``flow.interpolate(X, times, start=start)`` moves each row of ``X`` (a
    flattened image) to each time; the states are reshaped to
    ``image_shape`` and shown left to right in the order of ``times`` (the
    paper's figure 4). For the generation direction of a density model,
    draw rows of the reference (``start=1``) and give decreasing times.

    Parameters
    ----------
    flow : OTFlowTransformer
        Fitted on flattened images (``prod(image_shape)`` features).
    X : array-like of shape (n_images, n_features)
        The images at time ``start``, one per row.
    times : array-like of shape (n_times,)
        Times of the columns.
    image_shape : tuple of int
        Shape of one image, e.g. ``(8, 8)`` (or ``(h, w, 3)`` for RGB).
    axes : 2-D array of matplotlib.axes.Axes or None, default=None
        Axes of shape ``(n_images, n_times)``; ``None`` makes a new figure.
    start : float, default=0.0
        Time at which ``X`` lives.
    inverse_func : callable or None, default=None
        Maps states ``(n, n_features)`` back to pixel values before drawing,
        e.g. the ``inverse_transform`` of a scaler the flow was fitted
        after.
    cmap : str, default="gray_r"
        Colour map of single-channel images.
    vmin, vmax : float or None, default=None
        Common colour limits of all panels; ``None`` takes the range of the
        images at ``start`` (after ``inverse_func``), so that every column
        is drawn on the same scale.

    Returns
    -------
    axes : ndarray of matplotlib.axes.Axes, shape (n_images, n_times)
        Panel ``[i, j]`` shows image ``i`` at ``times[j]`` as an
        ``AxesImage``.
    """
    _require_matplotlib()
    X = np.asarray(X)
    image_shape = tuple(int(s) for s in np.atleast_1d(image_shape))
    if X.ndim != 2 or X.shape[1] != int(np.prod(image_shape)):
        raise ValueError(f"X must have shape (n_images, {int(np.prod(image_shape))}); got {X.shape}")
    times = np.atleast_1d(np.asarray(times, dtype=float))
    states = flow.interpolate(_as_input(flow, X), times, start=start)
    if inverse_func is not None:
        states = np.stack([np.asarray(inverse_func(s)) for s in states])
        X_shown = np.asarray(inverse_func(X))
    else:
        X_shown = X
    n_images, n_times = X.shape[0], len(times)
    if axes is None:
        fig = _new_figure((1.2 * n_times + 0.4, 1.2 * n_images + 0.4))
        axes = fig.subplots(n_images, n_times, squeeze=False)
    axes = np.asarray(axes, dtype=object)
    if axes.size != n_images * n_times:
        raise ValueError(f"got {axes.size} Axes for {n_images} images x {n_times} times")
    axes = axes.reshape(n_images, n_times)
    vmin = float(np.min(X_shown)) if vmin is None else vmin
    vmax = float(np.max(X_shown)) if vmax is None else vmax
    for i in range(n_images):
        for j, t in enumerate(times):
            ax = axes[i, j]
            ax.imshow(
                states[j, i].reshape(image_shape), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t = {t:g}", fontsize="small")
    return axes
