"""MutualInformationEstimator: MI from the density ratio of the joint and the product."""

from __future__ import annotations

import warnings
from functools import partial
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import TorchStateMixin, atomic_fit, check_layers, make_reporter, torch_seed, torch_threads, warn_non_finite
from ._density_ratio import RATIO_NET_CONSTRAINTS, DefaultFlowMixin, InfinitesimalDensityRatio, _flow_threads
from ._gaussianize import fit_normal_scores, gaussian_mi, normal_scores, whitener
from ._stack import stack
from ._torch.copula import GaussianCopula, fit_copula_correction, predict_correction
from ._torch.nn import MLP
from ._torch.train import TrainingDiverged

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


#: Folds of the cross-fitting of the non-Gaussian correction (each net is
#: trained on the other folds and evaluated on its own).
N_FOLDS = 3
METHODS = ("auto", "copula", "flow")
#: Fitted attributes that only one of the methods sets.
_METHOD_ATTRIBUTES = (
    "density_ratio_", "correlation_", "gaussian_mutual_info_", "correction_", "correction_std_",
    "selection_gap_", "marginal_values_", "marginal_levels_", "whiteners_", "correction_nets_", "history_",
)
#: What ``hidden_layer_sizes=None`` and ``n_epochs=None`` mean for each method.
NET_DEFAULTS = {
    "copula": {"hidden_layer_sizes": (128, 128), "n_epochs": 30},
    "flow": {"hidden_layer_sizes": (256, 256, 256), "n_epochs": 50},
}


def _correlation(Z):
    """Correlation matrix of the rows ``Z``, made positive definite by a small ridge if needed."""
    Zc = Z - Z.mean(0)
    C = Zc.T @ Zc / max(len(Z) - 1, 1)
    sd = np.sqrt(np.diag(C))
    R = C / np.outer(sd, sd)
    np.fill_diagonal(R, 1.0)
    ridge = 1e-9
    while True:
        try:
            np.linalg.cholesky(R)
            return R
        except np.linalg.LinAlgError:
            ridge *= 10
            R = (R + ridge * np.eye(len(R))) / (1.0 + ridge)


def _blocks(n_x, d):
    """The Gaussian blocks (joint, x, y) as (start, stop, sign) in ``I = sum sign * term``."""
    return {"joint": (0, d, 1.0), "x": (0, n_x, -1.0), "y": (n_x, d, -1.0)}


def _fold_excess_variance(fold_means: np.ndarray, row_variance: float) -> float:
    """Variance of the cross-fitted correction from the nets' differences, beyond row noise.

    The ``K`` fold means come from nets trained on overlapping rows (two
    folds' nets share ``(K - 2) / (K - 1)`` of their training rows), so
    their spread understates how much a net trained on other data would
    differ. The variance of their mean is taken as ``var(fold_means) *
    (1 / K + n_test / n_train)`` with ``n_test / n_train = 1 / (K - 1)``, the
    correction of Nadeau & Bengio (2003) for estimates from overlapping
    training sets, less ``row_variance`` (the row noise, counted apart);
    never negative.
    """
    k = len(fold_means)
    if k < 2:
        return 0.0
    return max(0.0, float(fold_means.var(ddof=1)) * (1.0 / k + 1.0 / (k - 1)) - row_variance)


def _selection_gap(history: list[dict]) -> float:
    """Mean ``g`` over a fold's own rows under its epoch of smallest held-out loss, minus under the epoch kept.

    Zero without held-out rows (nothing was selected) or when no epoch has a
    finite held-out loss.
    """
    scored = [h for h in history if "probe_correction" in h and np.isfinite(h.get("validation_loss", np.nan))]
    kept = [h for h in scored if h.get("selected")]
    if not kept:
        return 0.0
    best = min(scored, key=lambda h: h["validation_loss"])
    return float(best["probe_correction"] - kept[0]["probe_correction"])


def _warn_if_implausible(mi: float, std: float) -> None:
    """Mutual information is never negative: say so when the estimate is."""
    if not np.isfinite(mi):
        warnings.warn(f"the mutual-information estimate is {mi}: training failed", RuntimeWarning, stacklevel=3)
    elif mi < 0:
        warnings.warn(
            f"the mutual-information estimate is negative ({mi:.4g} nats, standard error "
            f"{std:.2g}); mutual information is never negative, so the estimator is "
            + ("not resolving a small dependence (the truth is most likely near 0)" if mi > -3 * std - 0.05
               else "wrong here (check for a ConvergenceWarning)"),
            RuntimeWarning,
            stacklevel=3,
        )


class MutualInformationEstimator(DefaultFlowMixin, TorchStateMixin, BaseEstimator):
    """Mutual information between two multivariate variables.

    Two methods (``method``):

    ``"copula"`` (the default when no ``flow`` is given). Mutual information
    is unchanged by an invertible map of ``X`` and one of ``y``, so every
    column is first mapped to standard-normal scores, ``u = Phi^-1(F(x))``
    with ``F`` the column's empirical CDF (interpolated between the training
    rows, so new rows can be mapped). With ``R`` the correlation of the
    scores ``z = [u, v]``, the Gaussian copula gives the closed form
    ``I_G = 0.5 (log det R_uu + log det R_vv - log det R)`` (each
    log-determinant corrected for its small-sample bias), and
    ``I = I_G + C``: the correction ``C`` is the mean over joint rows of
    ``g(z)``, a net trained as a classifier of joint rows against product
    rows (``v`` shuffled, afresh every epoch) with the logit
    ``pmi_G(z) + g(z)``. ``C`` is cross-fitted (three folds: each row's
    ``g`` comes from the net that did not train on it), and a net is kept
    only when it beats ``g = 0`` on held-out rows by two standard errors, so
    a Gaussian copula (including any per-coordinate monotone warp of
    Gaussian data) gets no correction. Heavy tails and bimodal or skewed
    marginals are absorbed by the normal scores.

    ``"flow"`` (the default when ``flow`` is given; the paper's estimator).
    P is the joint distribution of ``[X, y]`` (the rows as given) and Q the
    product of the marginals (the same rows with ``y`` shuffled across
    rows). An :class:`InfinitesimalDensityRatio` along the OT flow from P to
    Q gives ``log q/p``, and ``I(X; y) = -E_P[log q/p]``, estimated by the
    mean over the rows. Columns are standardised first.

    Parameters
    ----------
    flow : OTFlowTransformer or None, default=None
        The flow between the joint and the product rows of ``method="flow"``,
        cloned and fitted in :meth:`fit` (``None`` means
        ``OTFlowTransformer()``); its parameters are reachable as
        ``flow__gamma`` (setting one makes the default flow explicit, which
        selects ``method="flow"`` under ``"auto"``).
    method : {"auto", "copula", "flow"}, default="auto"
        ``"auto"`` is ``"copula"`` when ``flow`` is None and ``"flow"``
        otherwise. See above.
    n_permutations : int, default=1
        Shuffles of ``y`` that make up the product sample of
        ``method="flow"``.
    n_intervals : int or None, default=None
        Intervals of the chain of the density-ratio estimator (see
        :class:`InfinitesimalDensityRatio`); ``method="flow"`` only.
    hidden_layer_sizes : tuple of int or None, default=None
        Hidden widths of the net: ``None`` means ``(128, 128)`` for the
        copula's correction net and ``(256, 256, 256)`` for the flow's ratio
        net.
    activation : {"softplus", "tanh", "silu", "elu", "gelu"}, default="softplus"
        Activation of the net.
    quadrature : {"gauss", "simpson"}, default="gauss"
        Quadrature rule of the ratio net's integrals (``method="flow"``).
    snapshot_rows : {"alternate", "shared", "pullback"}, default="alternate"
        Which rows make up the snapshots of the chain (see
        :class:`InfinitesimalDensityRatio`; ``method="flow"``). With
        ``"pullback"`` every epoch draws new product rows (fresh shuffles of
        ``y``) and carries them back by the inverse flow.
    n_epochs : int or None, default=None
        Training epochs of the net (of each fold's net for the copula):
        ``None`` means 30 for the copula and 50 for the flow.
    batch_size : int, default=256
        Rows per batch (of each sample).
    learning_rate_init : float, default=1e-3
        Adam learning rate of the net (cosine-decayed).
    weight_decay : float, default=0.0
        Adam weight decay of the net.
    validation_fraction : float, default=0.1
        Share of the training rows held out to select the epoch of the net
        (copula: the epoch of smallest held-out loss if it beats ``g = 0``
        by two paired standard errors, else ``g = 0``; ``0`` keeps the last
        epoch; flow: see :class:`InfinitesimalDensityRatio`).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds, the shuffles and every network.
    verbose : int, default=0
        ``0`` silent; ``>= 1`` one progress bar per net with the live losses.

    Attributes
    ----------
    mutual_info_ : float
        The estimate of ``I(X; y)`` in nats on the training rows (copula:
        each row's correction from the net that did not train on it).
    mutual_info_std_ : float
        Its standard error. Copula: the row standard deviation of the
        pointwise values over ``sqrt(n)`` (for the Gaussian part this is the
        delta-method standard error of the log-determinants), plus the
        fold-to-fold spread of the correction beyond its row noise (its
        variance scaled by ``1/K + 1/(K - 1)`` for ``K = 3`` folds, the
        Nadeau-Bengio correction for nets trained on overlapping rows), plus
        ``selection_gap_`` (added in quadrature: the uncertainty of choosing
        each net's epoch, which row noise does not see). Flow: the
        row standard deviation of the pointwise values over ``sqrt(n)`` only
        (it ignores the error of the ratio net).
    method_ : str
        The method used, ``"copula"`` or ``"flow"``.
    gaussian_mutual_info_ : float
        Copula only: ``I_G``, the bias-corrected mutual information of the
        Gaussian copula.
    correction_ : float
        Copula only: ``C = mutual_info_ - gaussian_mutual_info_``.
    correction_std_ : float
        Copula only: the standard error of ``C`` (same terms as above).
    selection_gap_ : float
        Copula only: how far ``C`` would move had every fold kept its
        correction net at the epoch of smallest held-out loss rather than the
        one chosen (``g = 0`` when the net did not beat it significantly, else
        the earliest epoch within one standard error of the best), each
        evaluated on the fold's own rows. Part of the standard errors: where
        the held-out rows cannot decide between a correction and none, the
        size of that correction is uncertainty.
    correlation_ : ndarray of shape (n_active, n_active)
        Copula only: the correlation of the normal scores of the non-constant
        columns (``X``'s first).
    marginal_values_, marginal_levels_ : list of ndarray
        Copula only: per column of ``[X, y]``, the distinct training values
        and their CDF levels (mean rank minus 0.5, over ``n``); new values
        are interpolated, values outside the training range get the level
        of the nearest end.
    whiteners_ : dict of ndarray
        Copula only: ``L^-1`` (Cholesky ``R_b = L L^T``) of the joint, ``X``
        and ``y`` blocks of ``correlation_``.
    correction_nets_ : list of torch.nn.Module
        Copula only: the correction net of each fold (new rows get their
        mean).
    history_ : list of dict
        Copula only: one record per fold and epoch (epoch 0 is the untrained
        net): ``phase`` (``"correction fold k"``), ``epoch``, ``loss``,
        ``validation_loss`` and ``selected`` (the epoch kept in its fold).
        :func:`skqflow.plotting.plot_history` draws it.
    density_ratio_ : InfinitesimalDensityRatio
        Flow only: the fitted ratio estimator between the joint (P) and the
        product (Q).
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
    >>> from skqflow import MutualInformationEstimator
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 1))
    >>> y = 0.8 * x[:, 0] + 0.6 * rng.normal(size=400)
    >>> est = MutualInformationEstimator(n_epochs=5, random_state=0).fit(x, y)
    >>> round(est.mutual_info_, 1)   # the truth is -0.5 log(1 - 0.64) = 0.51
    0.5
    """

    _parameter_constraints: dict = {
        **RATIO_NET_CONSTRAINTS,
        "hidden_layer_sizes": [None, "array-like"],
        "n_epochs": [None, Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions(set(METHODS))],
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        flow=None,
        *,
        method="auto",
        n_permutations=1,
        n_intervals=None,
        hidden_layer_sizes=None,
        activation="softplus",
        quadrature="gauss",
        snapshot_rows="alternate",
        n_epochs=None,
        batch_size=256,
        learning_rate_init=1e-3,
        weight_decay=0.0,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
    ):
        self.flow = flow
        self.method = method
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
        self._n_y = joint.shape[1] - self.n_features_in_
        rng = check_random_state(self.random_state)
        method = self._resolved_method()
        for name in _METHOD_ATTRIBUTES:
            vars(self).pop(name, None)  # a refit with the other method leaves none of the first
        if method == "flow":
            self._fit_flow_chain(joint, rng)
        else:
            with torch_threads(_flow_threads(self)):
                self._fit_copula(joint, rng)
        self.method_ = method
        _warn_if_implausible(self.mutual_info_, self.mutual_info_std_)
        return self

    def _net_param(self, name, method):
        value = getattr(self, name)
        return NET_DEFAULTS[method][name] if value is None else value

    def _resolved_method(self):
        if self.method == "auto":
            return "copula" if self.flow is None else "flow"
        return self.method

    # ------------------------------------------------------------ flow chain
    def _fit_flow_chain(self, joint, rng):
        n_x = self.n_features_in_
        self._center = joint.mean(0)
        std = joint.std(0)
        self._std = np.where(std > 0, std, 1.0)
        joint = self._standardise(joint)
        sample_product = partial(_product_rows, joint, n_x)
        product = sample_product(self.n_permutations * len(joint), random_state=rng)
        params = {k: getattr(self, k) for k in RATIO_NET_CONSTRAINTS}
        params["random_state"] = rng
        params["hidden_layer_sizes"] = self._net_param("hidden_layer_sizes", "flow")
        params["n_epochs"] = self._net_param("n_epochs", "flow")
        # the classifiers only: the bridge's net ignores sample_q's fresh product rows
        ratio = InfinitesimalDensityRatio(method="classifier", **params)
        # with snapshot_rows="pullback" every epoch draws new product rows
        ratio.fit(*stack(joint, product), sample_q=sample_product)
        log_ratio = ratio.predict_log_ratio(joint).astype(np.float64)
        self.density_ratio_ = ratio
        self.mutual_info_ = float(-log_ratio.mean())
        self.mutual_info_std_ = float(log_ratio.std(ddof=1) / np.sqrt(len(log_ratio)))

    # ------------------------------------------------------------ copula
    def _fit_copula(self, joint, rng):
        n, d = joint.shape
        n_x = self.n_features_in_
        sizes = check_layers(self._net_param("hidden_layer_sizes", "copula"), "hidden_layer_sizes")
        n_epochs = self._net_param("n_epochs", "copula")
        values, levels = fit_normal_scores(joint)
        active = np.array([len(v) > 1 for v in values])  # constant columns carry no information
        self._active = active
        self._active_x = int(active[:n_x].sum())
        self.marginal_values_, self.marginal_levels_ = values, levels
        Z = normal_scores(joint, values, levels)[:, active]
        ax, da = self._active_x, Z.shape[1]
        if ax == 0 or ax == da:  # one side constant: independent
            self.correlation_ = np.eye(da)
            self.gaussian_mutual_info_ = self.correction_ = 0.0
            self._bias_shift = 0.0
            self.whiteners_, self.correction_nets_ = {}, []
            self.correction_std_ = self.selection_gap_ = 0.0
            self.mutual_info_, self.mutual_info_std_ = 0.0, 0.0
            self.history_ = []
            return
        R = _correlation(Z)
        self.correlation_ = R
        self.gaussian_mutual_info_ = float(gaussian_mi(R, ax, n))
        self.whiteners_ = {}
        self._logdets = {}
        for name, (a, b, _) in _blocks(ax, da).items():
            self.whiteners_[name], self._logdets[name] = whitener(R[a:b, a:b])
        copula = self._copula()
        Zt = torch.as_tensor(Z, dtype=torch.float32)
        pmi_g = self._copula(torch.float64).pmi(torch.as_tensor(Z)).numpy()
        # mean(pmi_g) is the plug-in Gaussian MI; shift it to the bias-corrected one
        self._bias_shift = float(self.gaussian_mutual_info_ - pmi_g.mean())
        pmi_g = pmi_g + self._bias_shift

        folds = np.array_split(rng.permutation(n), N_FOLDS)
        correction = np.zeros(n)
        nets, history, gaps = [], [], []
        report, close = make_reporter(self.verbose, {"correction": n_epochs + 1})
        try:
            with torch_seed(rng, torch.device("cpu")) as gen:
                for k, test in enumerate(folds):
                    train = np.concatenate([f for j, f in enumerate(folds) if j != k])
                    n_val = int(round(self.validation_fraction * len(train)))
                    val = train[:n_val] if n_val >= 2 else None
                    fit_rows = train[n_val:] if val is not None else train
                    net = MLP(da + 3, sizes, self.activation)
                    with torch.no_grad():  # g = 0 at the start: the Gaussian copula
                        net.net[-1].weight.zero_()
                        net.net[-1].bias.zero_()
                    phase = f"correction fold {k + 1}"
                    try:
                        hist = fit_copula_correction(
                            net, copula, Zt[torch.as_tensor(fit_rows)], n_epochs=n_epochs,
                            batch_size=self.batch_size, learning_rate_init=self.learning_rate_init,
                            generator=gen, weight_decay=self.weight_decay,
                            validation=None if val is None else Zt[torch.as_tensor(val)],
                            probe=Zt[torch.as_tensor(test)],
                            on_epoch=None if report is None else (lambda e, m, p=phase: report(p, e, m)),
                        )
                    except TrainingDiverged as exc:
                        hist = []
                        warnings.warn(
                            f"Training of the correction net diverged ({exc}). Try a smaller "
                            "learning_rate_init.", ConvergenceWarning, stacklevel=3,
                        )
                    correction[test] = predict_correction(net, copula, Zt[torch.as_tensor(test)]).double().numpy()
                    nets.append(net)
                    gaps.append(_selection_gap(hist))
                    history += [{"phase": phase, **record} for record in hist]
        finally:
            close()
        self.correction_nets_, self.history_ = nets, history
        pmi = pmi_g + correction
        self.correction_ = float(correction.mean())
        self.mutual_info_ = float(pmi.mean())
        # row noise of the whole estimate, plus the fold-to-fold spread of the
        # correction beyond its own row noise (the nets differ between folds)
        var_rows = pmi.var(ddof=1) / n
        fold_means = np.array([correction[f].mean() for f in folds])
        extra = _fold_excess_variance(fold_means, correction.var(ddof=1) / n)
        # and how far the correction would move had each fold kept its net of
        # smallest held-out loss instead (the selection's own uncertainty)
        self.selection_gap_ = float(np.mean(gaps)) if gaps else 0.0
        extra += self.selection_gap_**2
        self.correction_std_ = float(np.sqrt(correction.var(ddof=1) / n + extra))
        self.mutual_info_std_ = float(np.sqrt(var_rows + extra))

    def _copula(self, dtype=torch.float32):
        ws = {k: torch.as_tensor(v, dtype=dtype) for k, v in self.whiteners_.items()}
        return GaussianCopula(ws, self._logdets, self._active_x)

    def _copula_pmi(self, joint):
        Z = normal_scores(joint, self.marginal_values_, self.marginal_levels_)[:, self._active]
        if not self.whiteners_:
            return np.zeros(len(Z))
        copula = self._copula()
        Zt = torch.as_tensor(Z, dtype=torch.float32)
        with torch_threads(_flow_threads(self)):
            g = np.mean([predict_correction(net, copula, Zt).double().numpy() for net in self.correction_nets_], axis=0)
        return self._copula(torch.float64).pmi(torch.as_tensor(Z)).numpy() + self._bias_shift + g

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
        joint = self._joint(X, y, reset=False)
        if self.method_ == "copula":
            pmi = self._copula_pmi(joint)
        else:
            pmi = -self.density_ratio_.predict_log_ratio(self._standardise(joint)).astype(np.float64)
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
