"""MutualInformationEstimator: MI from the density ratio of the joint and the product."""

from __future__ import annotations

import warnings
from functools import partial
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import TorchStateMixin, atomic_fit, warn_non_finite
from ._density_ratio import RATIO_NET_CONSTRAINTS, DefaultFlowMixin, InfinitesimalDensityRatio
from ._stack import stack

__all__ = ["MutualInformationEstimator"]


def _product_rows(joint, n_x, n_samples, random_state):
    """``n_samples`` rows of the product of the empirical marginals of ``joint``.

    Each block of ``len(joint)`` rows pairs the ``X`` part of every row with
    the ``y`` part of a shuffle of the rows; when ``n_samples`` is not a
    multiple of ``len(joint)`` a random subset of the blocks' rows is kept.
    """
    n = len(joint)
    n_blocks = -(-n_samples // n)
    blocks = [np.hstack([joint[:, :n_x], joint[random_state.permutation(n), n_x:]]) for _ in range(n_blocks)]
    rows = np.vstack(blocks)
    if len(rows) > n_samples:
        rows = rows[random_state.choice(len(rows), n_samples, replace=False)]
    return rows


def _warn_if_implausible(mi: float, std: float) -> None:
    """Mutual information is never negative: say so when the estimate is."""
    if not np.isfinite(mi):
        warnings.warn(f"the mutual-information estimate is {mi}: training failed", RuntimeWarning, stacklevel=3)
    elif mi < 0:
        warnings.warn(
            f"the mutual-information estimate is negative ({mi:.4g} nats, standard error "
            f"{std:.2g}); mutual information is never negative, so the ratio net is "
            + ("not resolving a small dependence (the truth is most likely near 0)" if mi > -3 * std - 0.05
               else "wrong here (check for a ConvergenceWarning)"),
            RuntimeWarning,
            stacklevel=3,
        )


class MutualInformationEstimator(DefaultFlowMixin, TorchStateMixin, BaseEstimator):
    """Mutual information between two multivariate variables, from density ratios.

    P is the joint distribution of ``[X, y]`` (the rows as given) and Q the
    product of the marginals (the same rows with ``y`` shuffled across rows).
    An :class:`InfinitesimalDensityRatio` along the OT flow from P to Q gives
    ``log q/p``, and ``I(X; y) = E_P[log p/q] = -E_P[log q/p]``, estimated by
    the mean over the rows. Columns are standardised first (mutual
    information does not change under a separate affine map of each
    variable).

    Parameters
    ----------
    flow : OTFlowTransformer or None, default=None
        The flow between the joint and the product rows, cloned and fitted
        in :meth:`fit` (``None`` means ``OTFlowTransformer()``); its
        parameters are reachable as ``flow__gamma``.
    n_permutations : int, default=1
        Shuffles of ``y`` that make up the product sample (more shuffles, a
        larger sample of Q).
    n_intervals : int or None, default=None
        Intervals of the chain of the density-ratio estimator (see
        :class:`InfinitesimalDensityRatio`).
    hidden_layer_sizes : tuple of int, default=(256, 256, 256)
        Hidden widths of the ratio net.
    activation : {"softplus", "tanh", "silu", "elu", "gelu"}, default="softplus"
        Activation of the ratio net.
    quadrature : {"gauss", "simpson"}, default="gauss"
        Quadrature rule of the ratio net's integrals.
    snapshot_rows : {"alternate", "shared", "pullback"}, default="alternate"
        Which rows make up the snapshots of the chain (see
        :class:`InfinitesimalDensityRatio`). With ``"pullback"`` every epoch
        draws new product rows (fresh shuffles of ``y``) and carries them back
        by the inverse flow, so the net cannot memorise the intermediate
        snapshots (one inverse ODE solve per epoch).
    n_epochs : int, default=50
        Training epochs of the ratio net.
    batch_size : int, default=256
        Rows of each snapshot per batch.
    learning_rate_init : float, default=1e-3
        Adam learning rate of the ratio net.
    weight_decay : float, default=0.0
        Adam weight decay of the ratio net.
    validation_fraction : float, default=0.1
        Share of rows held out to select the epoch of the ratio net (see
        :class:`InfinitesimalDensityRatio`).
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles and every network.
    verbose : int, default=0
        ``0`` silent; ``>= 1`` the progress bars of
        :class:`InfinitesimalDensityRatio` (one per phase, live losses).

    Attributes
    ----------
    mutual_info_ : float
        The estimate of ``I(X; y)`` in nats on the training rows.
    mutual_info_std_ : float
        Its standard error over rows.
    density_ratio_ : InfinitesimalDensityRatio
        The fitted ratio estimator between the joint (P) and the product (Q).
    n_features_in_ : int
        Number of columns of ``X``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the columns of ``X`` (only for inputs with string column
        names).

    See Also
    --------
    sklearn.feature_selection.mutual_info_regression : univariate k-NN estimates.

    Examples
    --------
    >>> import numpy as np
    >>> from skqflow import MutualInformationEstimator, OTFlowTransformer
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 1))
    >>> y = 0.8 * x[:, 0] + 0.6 * rng.normal(size=400)
    >>> flow = OTFlowTransformer(init_steps=20, max_iter=0, random_state=0)
    >>> est = MutualInformationEstimator(flow=flow, n_epochs=5, random_state=0).fit(x, y)
    >>> est.mutual_info_ > 0
    True
    """

    _parameter_constraints: dict = {
        **RATIO_NET_CONSTRAINTS,
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        flow=None,
        *,
        n_permutations=1,
        n_intervals=None,
        hidden_layer_sizes=(256, 256, 256),
        activation="softplus",
        quadrature="gauss",
        snapshot_rows="alternate",
        n_epochs=50,
        batch_size=256,
        learning_rate_init=1e-3,
        weight_decay=0.0,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
    ):
        self.flow = flow
        self.n_permutations = n_permutations
        self.n_intervals = n_intervals
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.quadrature = quadrature
        self.snapshot_rows = snapshot_rows
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    @atomic_fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Estimate the mutual information between ``X`` and ``y``.

        The fit is all or nothing: if it raises or is interrupted (Ctrl-C),
        the estimator keeps exactly the state it had before the call. A
        negative or non-finite estimate comes with a warning.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The first variable.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The second variable.

        Returns
        -------
        self : MutualInformationEstimator
            The fitted estimator.
        """
        joint = self._joint(X, y, reset=True)
        n_x = self.n_features_in_
        self._n_y = joint.shape[1] - n_x
        self._center = joint.mean(0)
        std = joint.std(0)
        self._std = np.where(std > 0, std, 1.0)
        joint = self._standardise(joint)
        rng = check_random_state(self.random_state)
        sample_product = partial(_product_rows, joint, n_x)
        product = sample_product(self.n_permutations * len(joint), random_state=rng)
        params = {k: getattr(self, k) for k in RATIO_NET_CONSTRAINTS}
        params["random_state"] = rng
        ratio = InfinitesimalDensityRatio(**params)
        # with snapshot_rows="pullback" every epoch draws new product rows
        ratio.fit(*stack(joint, product), sample_q=sample_product)
        log_ratio = ratio.predict_log_ratio(joint).astype(np.float64)
        self.density_ratio_ = ratio
        self.mutual_info_ = float(-log_ratio.mean())
        self.mutual_info_std_ = float(log_ratio.std(ddof=1) / np.sqrt(len(log_ratio)))
        _warn_if_implausible(self.mutual_info_, self.mutual_info_std_)
        return self

    def _joint(self, X, y, *, reset):
        """Validated rows ``[X, y]`` (``y`` as columns)."""
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True,
            ensure_min_samples=4 if reset else 1, reset=reset,
        )
        y = np.asarray(y, dtype=X.dtype).reshape(len(X), -1)
        if not reset and y.shape[1] != self._n_y:
            raise ValueError(f"y has {y.shape[1]} columns, but fit saw {self._n_y}")
        return np.hstack([X, y])

    def _standardise(self, joint):
        return ((joint - self._center) / self._std).astype(joint.dtype, copy=False)

    def pointwise_mutual_info(self, X, y):
        """Estimated ``log p(x, y) / (p(x) p(y))`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The first variable.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The second variable.

        Returns
        -------
        pmi : ndarray of shape (n_samples,)
            Its mean over rows of the joint distribution is the mutual
            information.
        """
        check_is_fitted(self)
        joint = self._standardise(self._joint(X, y, reset=False))
        pmi = -self.density_ratio_.predict_log_ratio(joint).astype(np.float64)
        return warn_non_finite(pmi, "pointwise_mutual_info")

    def score(self, X, y):
        """The mutual-information estimate on the rows ``(X, y)`` (nats).

        Used by :func:`~sklearn.model_selection.cross_val_score`, this gives
        held-out estimates: the mean of :meth:`pointwise_mutual_info`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The first variable.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The second variable.

        Returns
        -------
        mutual_info : float
        """
        return float(np.mean(self.pointwise_mutual_info(X, y)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.non_deterministic = False
        return tags
