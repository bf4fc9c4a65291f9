"""Domain-adaptation adapters for `skada <https://scikit-adaptation.github.io>`_ pipelines.

This module needs the optional dependency skada (``pip install "skqflow[da]"``).
skada describes a domain-adaptation problem by one stacked ``X`` and a
``sample_domain`` array (``>= 0`` for source rows, ``< 0`` for target rows);
its pipelines call an adapter's ``fit_transform`` with ``sample_domain`` while
fitting and ``transform(X)`` without it when predicting, which means that every
row is a target row.

* :class:`OTFlowAdapter` pushes the source rows to the target domain through an
  :class:`~skqflow.OTFlowTransformer` learned between them and leaves target rows
  unchanged; :func:`OTFlow` puts it in front of a classifier.
* :class:`FlowDensityReweightAdapter` leaves the rows unchanged and weights
  the source rows by the density ratio target/source estimated by
  :class:`~skqflow.InfinitesimalDensityRatio`; :func:`FlowDensityReweight`
  puts it in front of an estimator that accepts ``sample_weight``.

Importing skqflow does not import this module. Importing this module imports
skada, and skada's own import switches on scikit-learn's metadata routing
(``sklearn.set_config(enable_metadata_routing=True)``), which its pipelines
need; skqflow itself never changes scikit-learn's configuration.
"""

import warnings
from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._base import atomic_fit
from ._density_ratio import InfinitesimalDensityRatio
from ._stack import stack
from ._transport import OTFlowTransformer

try:
    from skada import make_da_pipeline
    from skada.base import BaseAdapter
    from skada.utils import check_X_domain, extract_source_indices
except ImportError as exc:  # pragma: no cover - exercised without skada
    raise ImportError(
        "skqflow.da needs skada, the scikit-learn domain-adaptation package: "
        'pip install "skqflow[da]"'
    ) from exc

__all__ = ["FlowDensityReweight", "FlowDensityReweightAdapter", "OTFlow", "OTFlowAdapter"]


def _source_target(adapter, X, sample_domain, *, fitting, allow_source=True):
    """Validate ``X`` and ``sample_domain`` for ``adapter``.

    Checks (or, when ``fitting``, records) the feature names and the number of
    features, converts non-float input to float64, and returns ``X`` with the
    mask of source rows.
    """
    if not fitting:
        check_is_fitted(adapter)
    elif sample_domain is None:
        raise ValueError(
            "fitting a domain-adaptation adapter needs sample_domain (>= 0 for source "
            "rows, < 0 for target rows)"
        )
    validate_data(adapter, X, skip_check_array=True, reset=fitting)  # feature names
    X, sample_domain = check_X_domain(X, sample_domain, allow_source=allow_source)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    if fitting:
        adapter.n_features_in_ = X.shape[1]
    elif X.shape[1] != adapter.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(adapter).__name__} was fitted on "
            f"{adapter.n_features_in_}"
        )
    source = extract_source_indices(sample_domain)
    if fitting and (source.sum() < 2 or (~source).sum() < 2):
        raise ValueError(
            f"sample_domain must mark at least two source rows (>= 0) and two target rows "
            f"(< 0); got {int(source.sum())} source and {int((~source).sum())} target rows"
        )
    return X, source


def _fit_template(template, kind, name, X, source, sample_weight=None, default=None):
    """Clone ``template`` (None: ``default``, or ``kind()``) and fit it from the source rows to the target rows.

    A :class:`~sklearn.frozen.FrozenEstimator` is used as it is, after checking
    that it wraps a fitted ``kind`` with the right number of features.
    ``sample_weight`` (one per row of ``X``, or None) is passed to the fit,
    in the stacked order.
    """
    inner = getattr(template, "estimator", template)
    if template is not None and not isinstance(inner, kind):
        raise TypeError(
            f"{name} must be None, a {kind.__name__} or a FrozenEstimator wrapping a fitted "
            f"one; got {type(template).__name__}"
        )
    if inner is not template:  # frozen
        check_is_fitted(inner)
        if inner.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the frozen {name} was fitted on {inner.n_features_in_}"
            )
    estimator = clone(template if template is not None else default if default is not None else kind())
    X_stacked, y_stacked = stack(X[source], X[~source])
    if sample_weight is None:
        return estimator.fit(X_stacked, y_stacked)
    if inner is not template:
        raise ValueError(
            f"sample_weight cannot reach the frozen {name}: it is already fitted; "
            "unfreeze it, or do not route sample_weight to this adapter"
        )
    # stack orders the rows by domain and position only, so the weights follow the same order
    w = sample_weight.reshape(-1, 1)
    return estimator.fit(X_stacked, y_stacked, sample_weight=stack(w[source], w[~source])[0].ravel())


class OTFlowAdapter(BaseAdapter):
    """Push source rows to the target domain along a learned optimal-transport flow.

    ``fit`` learns an :class:`~skqflow.OTFlowTransformer` from the source rows
    (P) to the target rows (Q). ``transform`` maps source rows through it and
    returns target rows unchanged, so a classifier trained on the adapted
    source rows applies to target rows as they are.

    Parameters
    ----------
    flow : OTFlowTransformer or None, default=None
        The flow to learn, as a template cloned in ``fit``: its parameters are
        reachable as ``flow__gamma`` etc. (``otflowadapter__flow__gamma`` in a
        pipeline made by :func:`OTFlow`). ``None`` uses
        ``OTFlowTransformer()``. A :class:`sklearn.frozen.FrozenEstimator`
        wrapping a flow already fitted from source to target is used as it is.

    Notes
    -----
    ``fit`` (and ``fit_transform``) accept ``sample_weight``: the flow is then
    learned between the weighted source and target rows (see
    :meth:`skqflow.OTFlowTransformer.fit`). In a skada pipeline, weights
    passed to the pipeline's ``fit`` reach the adapter by scikit-learn's
    metadata routing once it requests them::

        make_da_pipeline(
            OTFlowAdapter(flow).set_fit_request(sample_weight=True),
            SVC().set_fit_request(sample_weight=False),  # or True
        ).fit(X, y, sample_domain=sample_domain, sample_weight=w)

    Every step that accepts ``sample_weight`` must say whether it wants it.

    Attributes
    ----------
    flow_ : OTFlowTransformer
        The fitted flow from the source domain to the target domain.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    OTFlow : This adapter followed by an estimator, in a skada pipeline.
    skqflow.OTFlowTransformer : The flow itself, with the plain transformer API.

    Examples
    --------
    >>> from skada.datasets import make_shifted_datasets
    >>> from skqflow import OTFlowTransformer
    >>> from skqflow.da import OTFlowAdapter
    >>> X, y, sample_domain = make_shifted_datasets(20, 20, random_state=0)
    >>> adapter = OTFlowAdapter(OTFlowTransformer(init_steps=20, max_iter=0, random_state=0))
    >>> X_adapted = adapter.fit_transform(X, y, sample_domain=sample_domain)
    >>> X_adapted.shape == X.shape
    True
    """

    _parameter_constraints = {"flow": [None, HasMethods(["fit", "transform"])]}

    def __init__(self, flow=None):
        self.flow = flow

    @atomic_fit
    def fit(self, X, y=None, *, sample_domain=None, sample_weight=None):
        """Learn the flow from the source rows to the target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows stacked.
        y : array-like of shape (n_samples,), default=None
            Ignored (the flow needs no class labels).
        sample_domain : array-like of shape (n_samples,)
            Domain of each row: ``>= 0`` source, ``< 0`` target. Several
            source (or target) domains are pooled.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, source and target alike: the
            flow goes from the weighted source rows to the weighted target
            rows (each domain's weights normalised to sum to one; weight
            zero drops a row). In a pipeline, routed here when requested
            with ``set_fit_request(sample_weight=True)``.

        Returns
        -------
        self : OTFlowAdapter
            The fitted adapter.
        """
        self._validate_params()
        X, source = _source_target(self, X, sample_domain, fitting=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        self.flow_ = _fit_template(self.flow, OTFlowTransformer, "flow", X, source, sample_weight)
        return self

    def fit_transform(self, X, y=None, *, sample_domain=None, sample_weight=None, **params):
        """Fit the flow and return ``X`` with its source rows pushed to the target.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows stacked.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_domain : array-like of shape (n_samples,)
            Domain of each row: ``>= 0`` source, ``< 0`` target.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, passed to :meth:`fit`.
        **params : dict
            Ignored; accepted for skada's routing.

        Returns
        -------
        X_adapted : ndarray of shape (n_samples, n_features)
            Source rows mapped by the flow, target rows unchanged.
        """
        self.fit(X, y, sample_domain=sample_domain, sample_weight=sample_weight)
        return self.transform(X, sample_domain=sample_domain, allow_source=True)

    def transform(self, X, y=None, *, sample_domain=None, allow_source=False, **params):
        """Push source rows to the target domain; leave target rows unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to adapt.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_domain : array-like of shape (n_samples,), default=None
            Domain of each row. ``None`` means every row is a target row (what
            skada's pipelines pass at predict time), so ``X`` comes back
            unchanged.
        allow_source : bool, default=False
            Whether source rows may be passed (skada's convention: only while
            fitting or when asked for explicitly).
        **params : dict
            Ignored; accepted for skada's routing.

        Returns
        -------
        X_adapted : ndarray of shape (n_samples, n_features)
            Source rows mapped by the flow, target rows unchanged.
        """
        X, source = _source_target(self, X, sample_domain, fitting=False, allow_source=allow_source)
        X_adapted = X.copy()
        if source.any():
            X_adapted[source] = self.flow_.transform(X[source])
        return X_adapted


class FlowDensityReweightAdapter(BaseAdapter):
    """Weight source rows by the target/source density ratio learned along a flow.

    ``fit`` learns an :class:`~skqflow.InfinitesimalDensityRatio` between the
    source rows (P) and the target rows (Q). ``fit_transform`` returns the rows
    unchanged with ``sample_weight``: ``q(x)/p(x)`` on source rows, scaled to
    mean one, and zero on target rows (whose labels are unknown), the
    importance weights that correct a covariate shift.

    Parameters
    ----------
    density_ratio : InfinitesimalDensityRatio or None, default=None
        The ratio estimator, as a template cloned in ``fit``; its flow's
        parameters are reachable as ``density_ratio__flow__gamma``.
        ``None`` uses ``InfinitesimalDensityRatio(method="classifier")``:
        the estimator's default ``method="auto"`` adds a time-score net of
        two to three minutes on one core whatever the number of rows, which
        this adapter's benchmarks have not measured.
    max_weight : float or None, default=None
        If given, weights (after scaling to mean one) are clipped at this value
        and scaled to mean one again, which bounds the variance that a few
        large ratios add to the weighted fit.

    Attributes
    ----------
    density_ratio_ : InfinitesimalDensityRatio
        The fitted ratio estimator (``predict_log_ratio`` = log target/source
        density).
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    FlowDensityReweight : This adapter followed by an estimator, in a skada pipeline.
    skqflow.InfinitesimalDensityRatio : The ratio estimator itself.
    """

    _parameter_constraints = {
        "density_ratio": [None, HasMethods(["fit", "predict_log_ratio"])],
        "max_weight": [None, Interval(Real, 1, None, closed="left")],
    }

    def __init__(self, density_ratio=None, max_weight=None):
        self.density_ratio = density_ratio
        self.max_weight = max_weight

    @atomic_fit
    def fit(self, X, y=None, *, sample_domain=None, sample_weight=None):
        """Learn the density ratio between the source rows and the target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows stacked.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_domain : array-like of shape (n_samples,)
            Domain of each row: ``>= 0`` source, ``< 0`` target.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, source and target alike: the
            ratio is then that of the weighted target rows to the weighted
            source rows (each domain's weights normalised to sum to one;
            weight zero drops a row). In a pipeline, routed here when
            requested with ``set_fit_request(sample_weight=True)``.

        Returns
        -------
        self : FlowDensityReweightAdapter
            The fitted adapter.
        """
        self._validate_params()
        X, source = _source_target(self, X, sample_domain, fitting=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        self.density_ratio_ = _fit_template(
            self.density_ratio, InfinitesimalDensityRatio, "density_ratio", X, source, sample_weight,
            default=InfinitesimalDensityRatio(method="classifier"),
        )
        return self

    def compute_weights(self, X, y=None, *, sample_domain=None, **params):
        """Importance weights: the density ratio on source rows, zero on target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to weight.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_domain : array-like of shape (n_samples,), default=None
            Domain of each row; ``None`` means every row is a target row.
        **params : dict
            Ignored; accepted for skada's routing.

        Returns
        -------
        sample_weight : ndarray of shape (n_samples,)
            Target/source density ratio on source rows, scaled to mean one
            over them (and clipped at ``max_weight`` if set); zero on target
            rows.
        """
        return self._weights(X, sample_domain)

    def _weights(self, X, sample_domain, base=None):
        """:meth:`compute_weights`, with the source rows' ratios multiplied by ``base`` (one per row of X) first."""
        X, source = _source_target(self, X, sample_domain, fitting=False, allow_source=True)
        weights = np.zeros(len(X))
        if source.any():
            log_ratio = self.density_ratio_.predict_log_ratio(X[source]).astype(np.float64)
            finite = np.isfinite(log_ratio)
            if not finite.all():
                warnings.warn(
                    f"{int((~finite).sum())} source rows have a non-finite log density ratio; "
                    "they get weight zero",
                    RuntimeWarning, stacklevel=2,
                )
            top = log_ratio[finite].max() if finite.any() else 0.0
            w = np.where(finite, np.exp(log_ratio - top), 0.0)
            if base is not None:
                w = w * base[source]
            w = _normalise(w, self.max_weight)
            weights[source] = w
        return weights

    def fit_transform(self, X, y=None, *, sample_domain=None, sample_weight=None, **params):
        """Fit the ratio and return the rows with their importance weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows stacked.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_domain : array-like of shape (n_samples,)
            Domain of each row: ``>= 0`` source, ``< 0`` target.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row, passed to :meth:`fit`; each
            source row's importance weight is then its density ratio times
            its own weight (so that the weighted source rows stand for the
            target), scaled to mean one over the source rows.
        **params : dict
            Ignored; accepted for skada's routing.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The rows, unchanged.
        params : dict
            ``{"sample_weight": weights}``, passed on by skada's pipeline to
            the next step's ``fit``.
        """
        self.fit(X, y, sample_domain=sample_domain, sample_weight=sample_weight)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        weights = self._weights(X, sample_domain, sample_weight)
        X, _ = _source_target(self, X, sample_domain, fitting=False)
        return X, {"sample_weight": weights}

    def transform(self, X, y=None, *, sample_domain=None, allow_source=False, **params):
        """Return the rows unchanged (weights matter only while fitting).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to pass through.
        y : array-like of shape (n_samples,), default=None
            Ignored.
        sample_domain : array-like of shape (n_samples,), default=None
            Domain of each row; ``None`` means every row is a target row.
        allow_source : bool, default=False
            Whether source rows may be passed (skada's convention).
        **params : dict
            Ignored; accepted for skada's routing.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The validated rows, unchanged.
        """
        return _source_target(self, X, sample_domain, fitting=False, allow_source=allow_source)[0]


def _normalise(w, max_weight):
    """Scale ``w`` to mean one, clipping at ``max_weight`` (if set) with the mean kept at one.

    With a cap ``M``, the result is ``min(c w, M)`` with ``c`` chosen so that
    the mean is one: if the ``k`` largest weights are clipped, ``c = (n - k M)
    / (sum of the others)``; ``k`` is the smallest count consistent with the
    cap.
    """
    if not w.sum() > 0:
        warnings.warn("every importance weight is zero; using uniform weights", RuntimeWarning, stacklevel=2)
        return np.ones_like(w)
    w = w / w.mean()
    if max_weight is None or w.max() <= max_weight:
        return w
    ranked = np.sort(w)[::-1]
    n = len(w)
    rest = np.cumsum(ranked[::-1])[::-1]  # rest[k]: sum of all but the k largest
    for k in range(1, n):
        c = (n - k * max_weight) / rest[k]
        if c * ranked[k] <= max_weight:
            return np.minimum(c * w, max_weight)
    return np.full_like(w, 1.0)  # max_weight = 1: only uniform weights fit


def OTFlow(base_estimator=None, **flow_params):
    """A skada pipeline: :class:`OTFlowAdapter` followed by ``base_estimator``.

    Parameters
    ----------
    base_estimator : estimator or None, default=None
        Trained on the adapted source rows; ``None`` uses ``SVC(kernel="rbf")``
        like skada's ``OTMapping``.
    **flow_params : dict
        Parameters of the :class:`~skqflow.OTFlowTransformer` (e.g.
        ``gamma``, ``max_iter``, ``random_state``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"otflowadapter"`` and the estimator's lowercased class name;
        the flow's gamma is ``"otflowadapter__flow__gamma"`` in a parameter grid.
    """
    if base_estimator is None:
        base_estimator = SVC(kernel="rbf")
    return make_da_pipeline(OTFlowAdapter(flow=OTFlowTransformer(**flow_params)), base_estimator)


def FlowDensityReweight(base_estimator=None, max_weight=None, **ratio_params):
    """A skada pipeline: :class:`FlowDensityReweightAdapter` followed by ``base_estimator``.

    Parameters
    ----------
    base_estimator : estimator or None, default=None
        Fitted on the source rows with ``sample_weight``; it must request it
        (``estimator.set_fit_request(sample_weight=True)``). ``None`` uses
        ``LogisticRegression()`` with that request set.
    max_weight : float or None, default=None
        Passed to the adapter.
    **ratio_params : dict
        Parameters of the :class:`~skqflow.InfinitesimalDensityRatio` (e.g.
        ``flow``, ``n_epochs``, ``random_state``); ``method`` defaults to
        ``"classifier"`` here (see :class:`FlowDensityReweightAdapter`).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"flowdensityreweightadapter"`` and the estimator's; the flow's
        gamma is ``"flowdensityreweightadapter__density_ratio__flow__gamma"``.
    """
    if base_estimator is None:
        base_estimator = LogisticRegression().set_fit_request(sample_weight=True)
    adapter = FlowDensityReweightAdapter(
        density_ratio=InfinitesimalDensityRatio(**{"method": "classifier", **ratio_params}), max_weight=max_weight
    )
    return make_da_pipeline(adapter, base_estimator)
