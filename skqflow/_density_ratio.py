"""InfinitesimalDensityRatio: log q(x)/p(x) accumulated along the flow."""

from __future__ import annotations

import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import (
    StandardNormal,
    TorchStateMixin,
    atomic_fit,
    check_domain_labels,
    check_layers,
    check_time,
    make_reporter,
    reference_is_seeded,
    sample_reference,
    split_domains,
    split_sample_weight,
    torch_seed,
    warn_non_finite,
    with_torch_threads,
)
from ._torch.chains import SNAPSHOT_ROWS, holdout_split, training_chains
from ._torch.ctsm import BRIDGE_PAIRINGS, fit_bridge_time_score
from ._torch.losses import logistic_terms
from ._torch.nn import ACTIVATIONS
from ._torch.ratio import (
    OBJECTIVES,
    QUADRATURES,
    TimeScoreNet,
    fit_time_score,
    held_out_terms,
    log_ratio,
    paired_standard_error,
    select_epoch,
)
from ._torch.train import RATIO_NET, StopTraining, TrainingDiverged, phase_name
from ._transport import OTFlowTransformer, check_weights, resample_by_weight, torch_view

__all__ = ["InfinitesimalDensityRatio"]

SINGLE = "single classifier"  # the candidate of method="classifier" besides the chain
CTSM = "ctsm"  # method="ctsm": time-score matching on a noisy bridge
#: What each ``method`` trains: (one classifier to choose against the chain,
#: the chain, the time-score-matching net of the noisy bridge).
METHODS: dict[str, tuple[bool, bool, bool]] = {
    "auto": (True, True, True),
    "classifier": (True, True, False),
    "chain": (False, True, False),
    CTSM: (False, False, True),
}
#: Every epoch the bridge's ends are paired anew by exact assignments in blocks
#: of CTSM_BLOCK_ROWS rows, on at most CTSM_PAIRED_ROWS rows of each sample.
CTSM_BLOCK_ROWS = 1024
CTSM_PAIRED_ROWS = 4096
#: Intervals of the time grid on which a time-score-matching net is integrated.
CTSM_INTERVALS = 16
#: Adam steps in one epoch of time-score matching (batches of 2 x batch_size pairs).
CTSM_STEPS_PER_EPOCH = 320

# Parameters of the ratio net, shared with MutualInformationEstimator.
RATIO_NET_CONSTRAINTS: dict = {
    "flow": [None, HasMethods(["fit", "interpolate"])],
    "n_intervals": [None, Interval(Integral, 1, None, closed="left")],
    "hidden_layer_sizes": ["array-like"],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "quadrature": [StrOptions(set(QUADRATURES))],
    "snapshot_rows": [StrOptions(set(SNAPSHOT_ROWS))],
    "n_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def _flow_threads(est):
    """Torch threads of the estimator's flow (the fitted one once there is one)."""
    flow = getattr(est, "flow_", None) or est.flow
    flow = _frozen_flow(flow) or flow
    return OTFlowTransformer().n_threads if flow is None else getattr(flow, "n_threads", None)


def _frozen_flow(flow):
    """The fitted transformer inside a FrozenEstimator, or None."""
    return flow.estimator if isinstance(flow, FrozenEstimator) else None


class DefaultFlowMixin:
    """``set_params`` for estimators whose ``flow`` defaults to None (a default flow)."""

    def set_params(self, **params):
        """Set the parameters of this estimator, including those of its flow.

        With ``flow=None`` (the default flow), a nested ``flow__<name>``
        parameter first makes the default :class:`OTFlowTransformer` explicit,
        so that ``GridSearchCV(est, {"flow__gamma": [...]})`` works on the
        estimator as constructed.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``flow__<name>`` for the flow's.

        Returns
        -------
        self : estimator instance
        """
        if self.flow is None and "flow" not in params and any(k.startswith("flow__") for k in params):
            self.flow = OTFlowTransformer()
        return super().set_params(**params)


#: ``method="auto"`` and ``"classifier"`` stop training the chain once, after at least this share
#: of its epochs, its held-out loss as a classifier of Q against P exceeds the
#: single classifier's at the same epoch by more than this many paired
#: standard errors: a chain that far behind at equal training is not kept.
ABANDON_AFTER = 0.2
ABANDON_SIGNIFICANCE = 2.0


def _mean_log_ratio(parts, rows, quadrature):
    """Mean over ``parts`` (``(net, time grid)`` pairs) of ``int r`` on each grid, at ``rows``."""
    return sum(log_ratio(net, rows, grid, quadrature) for net, grid in parts) / len(parts)


class _EpochComparison:
    """Per-epoch check of the chain against one classifier: record the single one, or compare the chain with it.

    With ``record`` it stores the net's held-out terms (as a classifier of Q
    against P, :func:`~skqflow._torch.ratio.held_out_terms`) after every
    epoch in ``single_terms``; otherwise it computes the chain's and raises
    :class:`~skqflow._torch.train.StopTraining` when the chain is clearly
    worse than the single classifier was after the same epoch.
    """

    def __init__(self, net, grid, held, quadrature, single_terms, *, record, n_epochs):
        self.net, self.grid, self.held, self.quadrature = net, grid, held, quadrature
        self.single_terms, self.record = single_terms, record
        self.first_check = max(2, int(np.ceil(ABANDON_AFTER * n_epochs)))
        self.stopped = False

    def __call__(self, epoch: int) -> None:
        if not self.record and (epoch + 1 < self.first_check or epoch >= len(self.single_terms)):
            return
        terms = held_out_terms(self.net, self.grid, *self.held, self.quadrature)
        if self.record:
            self.single_terms.append(terms)
            return
        single = self.single_terms[epoch]
        gap = float(sum(t.mean() for t in terms)) - float(sum(t.mean() for t in single))
        if gap > ABANDON_SIGNIFICANCE * paired_standard_error(terms, single):
            self.stopped = True
            raise StopTraining


class InfinitesimalDensityRatio(DefaultFlowMixin, TorchStateMixin, BaseEstimator):
    """Log density ratio ``log q(x) / p(x)`` accumulated along an OT flow.

    The fitted :class:`OTFlowTransformer` carries P to Q through a chain of
    intermediate distributions ``p_0 = P, p_1, ..., p_L = Q`` (snapshots of
    the flow, the last one the real rows of Q). A time-conditioned net
    ``r(x, t)``, an estimate of the time score ``d/dt log p_t(x)``, is
    trained so that its integral over each interval is the logit of a
    classifier between the two neighbouring snapshots. Neighbours are close,
    so each classification is easy, and the log ratio is the integral of
    ``r`` from 0 to 1. This keeps the estimate accurate when P and Q are far
    apart, where a single classifier saturates.

    Parameters
    ----------
    flow : OTFlowTransformer, FrozenEstimator or None, default=None
        The flow between P and Q. An unfitted transformer is cloned and
        fitted in :meth:`fit` (``None`` means ``OTFlowTransformer()``); a
        fitted one wrapped in :class:`sklearn.frozen.FrozenEstimator` is
        reused as it is. Its parameters are reachable as ``flow__gamma``.
        It also fixes the device and the precision of the computation.
    n_intervals : int or None, default=None
        ``L``, the number of intervals of the chain. The flow is sampled at
        ``L`` equally spaced times from 0 to 1 and the rows of Q are the last
        snapshot (with ``snapshot_rows="pullback"``, the rows of P are the
        first). ``None`` means ``flow.n_time_steps + 1``; ``1`` is the
        single-classifier estimator (no intermediate distributions).
    hidden_layer_sizes : tuple of int, default=(256, 256, 256)
        Hidden widths of the ratio net ``r(x, t)``.
    activation : {"softplus", "tanh", "silu", "elu", "gelu"}, default="softplus"
        Activation of the ratio net.
    quadrature : {"gauss", "simpson"}, default="gauss"
        Rule for the integral of ``r`` over each interval: two-point
        Gauss-Legendre or Simpson's 3/8 rule (four points). Both are exact
        for cubics; Gauss needs half the evaluations.
    snapshot_rows : {"alternate", "shared", "pullback"}, default="alternate"
        Which rows make up the intermediate snapshots. ``"shared"``: the
        flow moves every row of P forward, so neighbouring snapshots are the
        same points slightly shifted, and a flexible net can learn to
        recognise the points rather than the densities. ``"alternate"``:
        the rows of P are split in two halves and neighbouring snapshots
        come from different halves. ``"pullback"``: the rows of Q are carried
        back by the inverse flow (the first snapshot is the rows of P); in
        density-estimation mode every epoch draws fresh rows of the
        reference, so the net sees new intermediate rows each epoch and
        cannot memorise them (one inverse ODE solve per epoch). A reference
        whose ``sample`` takes no ``random_state`` (a fitted
        ``GaussianMixture``) is drawn once, with a warning.
    method : {"auto", "classifier", "chain", "ctsm"}, default="auto"
        How the log ratio is estimated.

        ``"chain"``: the ratio net along the flow's chain, as above (the
        paper's estimator).

        ``"classifier"``: also train the same net as one classifier of Q
        against P on the same rows, and keep the chain only if its held-out
        loss (the implied classifier of Q against P on the held-out rows) is
        smaller than the single classifier's by more than one standard
        error. Where the flow moves whole modes far (low-dimensional
        mixtures) the chain's neighbouring snapshots lose their overlap and
        one classifier is more accurate; where P and Q are far apart in many
        dimensions the chain is. The single classifier is trained first; the
        chain's training stops early (from a fifth of ``n_epochs`` on) once
        its held-out loss is worse than the single classifier's after the
        same epoch by more than two paired standard errors. Needs held-out
        rows (``validation_fraction > 0``); without them, or with
        ``n_intervals=1``, only the chain is trained.

        ``"ctsm"``: no chain and no classifier, but conditional time-score
        matching on a noisy bridge between rows of P and Q (vectorised, Yu
        et al. 2025): ``x_t = (1 - t) x0 + t x1 + bridge_noise sqrt(t (1 -
        t)) eps`` has mass at every point for ``0 < t < 1``, the net (one
        output per feature) regresses on the bridge's closed-form
        conditional time score, and ``log q(x) - log p(x)`` is the integral
        of its outputs' sum over ``t`` (16 intervals). The ends ``(x0, x1)``
        are paired as ``bridge_pairing`` says. It trains for ``n_epochs``
        epochs of 320 Adam steps on ``2 * batch_size`` pairs each (two to
        three minutes at the defaults on one core, whatever the number of
        rows). The weights scored and kept are a running average of the
        Adam iterates (over a tenth of all steps; the regression's targets
        are noisy), and of those averages the epoch of smallest held-out
        classifier loss is kept, as for the other nets: where the net
        starts to memorise the rows early (8 features, 4000 rows: after
        about a sixth of the steps) the average of the early iterates is
        what is kept.

        ``"auto"``: the mean of the two estimates above, ``"classifier"``'s
        and ``"ctsm"``'s (both nets are trained, so the fit costs their
        sum). They fail in different places: one classifier saturates
        where one density is orders of magnitude below the other, the
        bridge's regression is noisy where the densities change fast. On
        the benchmark's 2-D tasks the mean is 37-41% more accurate than one
        classifier given the same time, on an 8-D Gaussian pair 6% more
        accurate (docs/benchmarks.md). The held-out
        loss cannot choose between them (it barely sees errors where one
        density is far below the other), so neither is chosen: both count
        equally. ``method_`` names both (``"single classifier + ctsm"``).
    objective : {"chain", "anchored", "multinomial"}, default="chain"
        What the chain's net is trained on: ``"chain"``, neighbouring
        snapshots only (logistic loss of each interval's integral);
        ``"anchored"``, the same plus the whole integral as a classifier of
        Q against P; ``"multinomial"``, one softmax classifier over all the
        snapshots whose logits are the integrals from 0 (every pair of
        snapshots compared; ``L / 2`` times the cost).
    bridge_noise : float, default=0.5
        ``method="ctsm"`` and ``"auto"``: ``sigma`` of the noisy bridge, in
        the flow's standardised units (pooled mean removed, one pooled
        scale). Small values keep the densities' structure, large values
        make the regression less noisy (docs/benchmarks.md).
    bridge_pairing : {"minibatch_ot", "independent"}, default="minibatch_ot"
        ``method="ctsm"`` and ``"auto"``: how the ends of the bridges are
        paired. ``"minibatch_ot"``: every epoch anew, by exact optimal
        assignments in random blocks of 1024 rows (of at most 4096 rows of
        each sample drawn at random), so the pairs are close and the
        regression target less noisy;
        ``"independent"``: independent rows of P and Q.
    n_epochs : int, default=50
        Training epochs of the ratio net.
    batch_size : int, default=256
        Rows of each snapshot per batch.
    learning_rate_init : float, default=1e-3
        Adam learning rate of the ratio net (cosine-decayed to zero).
    weight_decay : float, default=0.0
        Adam weight decay of the ratio net.
    validation_fraction : float, default=0.1
        Share of the rows of each snapshot held out to choose the epoch of
        the ratio net: the latest epoch whose held-out loss is within one
        standard error (of the paired difference, on the same rows) of the
        smallest. Where the loss is flat, as in low dimension, that is the
        last, cosine-annealed epoch; where the net starts to memorise its
        rows, as in high dimension, it is the epoch before (without it the
        estimates of large log-ratios grow with the number of epochs). ``0``
        trains on all rows and keeps the last epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the ratio net, its batches, the reference draws (one per epoch
        with ``snapshot_rows="pullback"``) and, when its own ``random_state``
        is None, the cloned flow.
    verbose : int, default=0
        ``0`` silent; ``>= 1`` one progress bar (tqdm, on stderr) per phase:
        the flow's phases (when it is fitted here), then the ratio net, with
        the live losses. Without tqdm, one line per epoch.

    Attributes
    ----------
    flow_ : OTFlowTransformer
        The fitted flow.
    net_ : torch.nn.Module
        The ratio net ``r(x, t)`` (inputs standardised like the flow's): the
        classifier kept, or with ``method="ctsm"`` the time-score net.
    times_ : ndarray of shape (n_intervals + 1,) or (2,) or (17,)
        Times of the snapshots, ``k / L`` (``[0, 1]`` when the single
        classifier was kept; ``k / 16``, the integration grid, with
        ``method="ctsm"``).
    bridge_net_ : torch.nn.Module
        With ``method="auto"`` only: the time-score net of the noisy
        bridge, whose estimate is averaged with ``net_``'s.
    bridge_times_ : ndarray of shape (17,)
        With ``method="auto"`` only: the integration grid of
        ``bridge_net_``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit`` (only for inputs with string
        column names).
    classes_ : ndarray of shape (2,) or None
        Domain labels (``classes_[1]`` is Q, the numerator); ``None`` when
        fitted against the flow's reference distribution.
    method_ : str
        The estimate returned: ``"chain"``, ``"single classifier"`` or
        ``"ctsm"``, or with ``method="auto"`` the mean of two, ``"single
        classifier + ctsm"`` or ``"chain + ctsm"`` (see ``method``).
    held_out_loss_ : dict
        Held-out loss of the classifier of Q against P implied by each net
        trained (``"chain"``, ``"single classifier"``, ``"ctsm"``) and by the
        mean returned with ``method="auto"`` (key ``method_``); empty
        without held-out rows.
    history_ : list of dict
        Per epoch of each ratio net trained: ``phase`` (``"ratio net"``),
        ``direction`` (the net: ``"chain"``, ``"single classifier"`` or
        ``"ctsm"``), ``epoch``, ``loss`` and, with held-out rows,
        ``validation_loss`` and ``selected`` (True for the epoch whose
        weights were kept, in the nets that were kept); the chain's last
        record has ``stopped_early`` when ``method="auto"`` or
        ``"classifier"`` ended its training early.

    See Also
    --------
    OTFlowTransformer : the flow between P and Q.
    MutualInformationEstimator : mutual information from these ratios.

    References
    ----------
    C. Xu, X. Cheng, Y. Xie, "Computing high-dimensional optimal transport by
    flow neural networks", arXiv:2305.11857, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> from skqflow import InfinitesimalDensityRatio, OTFlowTransformer, stack
    >>> rng = np.random.default_rng(0)
    >>> X, y = stack(rng.normal(size=(300, 2)), rng.normal(1.0, 1.0, size=(300, 2)))
    >>> flow = OTFlowTransformer(init_steps=20, max_iter=0, random_state=0)
    >>> est = InfinitesimalDensityRatio(flow=flow, n_epochs=5, random_state=0).fit(X, y)
    >>> est.predict_log_ratio(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **RATIO_NET_CONSTRAINTS,
        "method": [StrOptions(set(METHODS))],
        "bridge_noise": [Interval(Real, 0, None, closed="neither")],
        "bridge_pairing": [StrOptions(set(BRIDGE_PAIRINGS))],
        "objective": [StrOptions(set(OBJECTIVES))],
    }

    def __init__(
        self,
        flow=None,
        *,
        n_intervals=None,
        hidden_layer_sizes=(256, 256, 256),
        activation="softplus",
        quadrature="gauss",
        snapshot_rows="alternate",
        method="auto",
        objective="chain",
        bridge_noise=0.5,
        bridge_pairing="minibatch_ot",
        n_epochs=50,
        batch_size=256,
        learning_rate_init=1e-3,
        weight_decay=0.0,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
    ):
        self.flow = flow
        self.n_intervals = n_intervals
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.quadrature = quadrature
        self.snapshot_rows = snapshot_rows
        self.method = method
        self.objective = objective
        self.bridge_noise = bridge_noise
        self.bridge_pairing = bridge_pairing
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    @atomic_fit
    @with_torch_threads(_flow_threads)
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, *, sample_q=None):
        """Fit the flow (unless frozen) and the ratio net.

        The fit is all or nothing: if it raises or is interrupted (Ctrl-C),
        the estimator keeps exactly the state it had before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of both samples stacked (see :func:`skqflow.stack`), or the
            rows of P alone when ``y`` is None.
        y : array-like of shape (n_samples,), default=None
            Two distinct domain labels, ``classes_[0]`` for P and
            ``classes_[1]`` for Q. ``None`` takes Q to be the flow's
            ``reference`` distribution (density-estimation mode).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row: P and Q are the weighted
            empirical measures of their rows (each domain's weights
            normalised inside it). The flow (unless frozen) is fitted with
            them (see :meth:`OTFlowTransformer.fit`), and the ratio net sees
            each domain resampled once in proportion to the weights
            (systematic resampling to as many rows as have a positive
            weight: a row appears ``floor`` or ``ceil`` of its expected
            count), so an integer weight acts, in distribution, as that many
            copies of the row. Rows of weight zero are dropped; equal weights
            within a domain give exactly the unweighted fit. With ``y=None``
            the weights are those of the rows of P.
        sample_q : callable, default=None
            ``sample_q(n_samples, random_state=rng)`` draws fresh rows of Q
            (an array of shape (n_samples, n_features)), for example the
            product of the marginals in mutual-information estimation. The
            pullback chain (``snapshot_rows="pullback"``) and the single
            classifier of ``method="auto"`` and ``"classifier"`` use it: every epoch then sees new
            rows of Q (carried back along the flow, for the chain). In density-estimation mode the
            reference is the sampler when its ``sample`` takes a
            ``random_state``.

        Returns
        -------
        self : InfinitesimalDensityRatio
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        sizes = check_layers(self.hidden_layer_sizes, "hidden_layer_sizes")
        sample_weight = check_weights(sample_weight, X)
        rng = check_random_state(self.random_state)
        flow = self._fit_flow(X, y, rng, sample_weight)
        if y is None:
            classes, X_p = None, resample_by_weight(X, sample_weight, "X (P)", rng)
            X_q = sample_reference(flow.reference, len(X_p), X.shape[1], rng)
            if reference_is_seeded(flow.reference):
                sample_q = partial(sample_reference, flow.reference, n_features=X.shape[1])
            elif self.snapshot_rows == "pullback":
                warnings.warn(
                    f"the reference's sample method ({type(flow.reference).__name__}) takes no "
                    "random_state, so the pulled-back reference rows are drawn once, not every "
                    "epoch",
                    UserWarning, stacklevel=2,
                )
        else:
            classes, X_p, X_q = split_domains(X, y)
            if sample_weight is not None:
                w_p, w_q = split_sample_weight(sample_weight, y, classes)
                X_p = resample_by_weight(X_p, w_p, f"domain {classes[0]!r} (P)", rng)
                X_q = resample_by_weight(X_q, w_q, f"domain {classes[1]!r} (Q)", rng)
            if flow.classes_ is not None and not np.array_equal(flow.classes_, classes):
                raise ValueError(
                    f"the frozen flow was fitted on labels {flow.classes_.tolist()}, "
                    f"y holds {classes.tolist()}"
                )
        fmap, scaler = torch_view(flow)
        n_int = self.n_intervals or flow.n_time_steps + 1
        draw_q = None if sample_q is None else (lambda n: scaler.to_tensor(sample_q(n, random_state=rng)))
        with torch_seed(rng, scaler.device) as gen:
            zp, zq = scaler.to_tensor(X_p), scaler.to_tensor(X_q)
            (zp_fit, zq_fit), held = holdout_split([zp, zq], self.validation_fraction, gen)
            times = torch.linspace(0.0, 1.0, n_int + 1, dtype=zp.dtype, device=scaler.device)
            candidates = {}
            single_too, classifiers, bridge = METHODS[self.method]
            if single_too and n_int > 1 and held is not None:
                # the single classifier first: the chain is then compared with it epoch by epoch
                single = [zp_fit, zq_fit] if draw_q is None else (lambda: [zp_fit, draw_q(len(zq_fit))])
                candidates[SINGLE] = ((single, list(held)), times[[0, -1]])
            if classifiers:
                candidates["chain"] = (training_chains(
                    self.snapshot_rows, fmap, zp_fit, zq_fit, n_int, held=held, generator=gen, draw_q=draw_q,
                ), times)
            if bridge:
                grid = torch.linspace(0.0, 1.0, CTSM_INTERVALS + 1, dtype=zp.dtype, device=scaler.device)
                candidates[CTSM] = (None, grid)
            report, close = make_reporter(self.verbose, {RATIO_NET: self.n_epochs})
            nets, history, single_terms = {}, [], []
            try:
                for name, (data, grid) in candidates.items():
                    n_components = X.shape[1] if name == CTSM else 1
                    nets[name] = TimeScoreNet(X.shape[1], sizes, self.activation, n_components).to(
                        scaler.device, zp.dtype)
                    if name == CTSM:
                        records = self._train_ctsm(nets[name], zp_fit, zq_fit, grid, held, gen, report)
                        history += [{"phase": RATIO_NET, "direction": name, **r} for r in records]
                        continue
                    train, held_chain = data
                    watch = None
                    if SINGLE in candidates:
                        watch = _EpochComparison(nets[name], grid, held, self.quadrature, single_terms,
                                                 record=name == SINGLE, n_epochs=self.n_epochs)
                    records = self._train_net(nets[name], train, held_chain, grid, gen, report, name, watch)
                    if watch is not None and watch.stopped and records:
                        records[-1]["stopped_early"] = True
                    history += [{"phase": RATIO_NET, "direction": name, **r} for r in records]
            finally:
                close()
            losses = {} if held is None else {
                name: held_out_terms(nets[name], grid, *held, self.quadrature)
                for name, (_, grid) in candidates.items()
            }
            # the single classifier unless the chain is better by more than a standard error
            # (select_epoch keeps the *latest* candidate within a standard error of the best,
            # so the single classifier goes last, whatever the order of training)
            names = sorted((n for n in candidates if n != CTSM), key=lambda name: name == SINGLE) or [CTSM]
            chosen = names[select_epoch([losses[n] for n in names])] if len(names) > 1 else names[0]
            kept = [chosen] + ([CTSM] if classifiers and bridge else [])
            if len(kept) > 1 and held is not None:
                losses[" + ".join(kept)] = tuple(t.double().cpu() for t in logistic_terms(*(
                    _mean_log_ratio([(nets[n], candidates[n][1]) for n in kept], rows, self.quadrature)
                    for rows in held)))
        for r in history:
            r["selected"] = bool(r.get("selected")) and r["direction"] in kept
        self.classes_ = classes
        self.flow_ = flow
        self.net_ = nets[chosen]
        self.method_ = " + ".join(kept)
        self.held_out_loss_ = {n: float(sum(t.mean() for t in terms)) for n, terms in losses.items()}
        self.history_ = history
        self.times_ = candidates[chosen][1].cpu().double().numpy()
        if len(kept) > 1:
            self.bridge_net_ = nets[CTSM]
            self.bridge_times_ = candidates[CTSM][1].cpu().double().numpy()
        else:
            vars(self).pop("bridge_net_", None)  # a refit with another method leaves none behind
            vars(self).pop("bridge_times_", None)
        return self

    def _train_net(self, net, train, held, times, gen, report, name, watch=None):
        """Train one ratio net on a chain; its per-epoch records.

        ``watch(epoch)`` (if given) runs after every epoch and may end the
        training early (:class:`~skqflow._torch.train.StopTraining`).
        """
        phase = phase_name(RATIO_NET, name)

        def on_epoch(epoch, metrics):
            if report is not None:
                report(phase, epoch, metrics)
            if watch is not None:
                watch(epoch)

        try:
            return fit_time_score(
                net, train, times, n_epochs=self.n_epochs, batch_size=self.batch_size,
                learning_rate_init=self.learning_rate_init, generator=gen, quadrature=self.quadrature,
                weight_decay=self.weight_decay, validation=held, objective=self.objective,
                on_epoch=on_epoch if (report is not None or watch is not None) else None,
            )
        except TrainingDiverged as exc:
            warnings.warn(
                f"Training of the ratio net diverged ({name}: {exc}). Try a smaller learning_rate_init.",
                ConvergenceWarning, stacklevel=3,
            )
            return []

    def _train_ctsm(self, net, zp, zq, grid, held, gen, report):
        """Train the time-score-matching net of ``method="ctsm"``."""
        phase = phase_name(RATIO_NET, CTSM)
        on_epoch = None if report is None else (lambda epoch, metrics: report(phase, epoch, metrics))
        batch = 2 * self.batch_size
        try:
            return fit_bridge_time_score(
                net, zp, zq, grid, n_epochs=self.n_epochs, batch_size=batch,
                steps_per_epoch=CTSM_STEPS_PER_EPOCH,
                learning_rate_init=self.learning_rate_init, sigma=self.bridge_noise, generator=gen,
                pairing=self.bridge_pairing, block_size=CTSM_BLOCK_ROWS, max_rows=CTSM_PAIRED_ROWS,
                quadrature=self.quadrature,
                weight_decay=self.weight_decay, validation=held, on_epoch=on_epoch,
            )
        except TrainingDiverged as exc:
            warnings.warn(
                f"Training of the ratio net diverged ({CTSM}: {exc}). Try a smaller learning_rate_init.",
                ConvergenceWarning, stacklevel=3,
            )
            return []

    def _fit_flow(self, X, y, rng, sample_weight=None):
        frozen = _frozen_flow(self.flow)
        if frozen is not None:
            check_is_fitted(frozen)
            if frozen.n_features_in_ != X.shape[1]:
                raise ValueError(
                    f"X has {X.shape[1]} features, but the frozen flow was fitted on "
                    f"{frozen.n_features_in_}"
                )
            if (y is None) != (frozen.classes_ is None):
                raise ValueError(
                    "the frozen flow was fitted "
                    + ("against its reference; fit with y=None" if y is not None else "with labels; pass y")
                )
            return frozen
        flow = clone(self.flow if self.flow is not None else OTFlowTransformer())
        if flow.get_params().get("random_state") is None:
            flow.set_params(random_state=int(rng.randint(0, 2**31 - 1)))
        if self.verbose and not flow.verbose:
            flow.set_params(verbose=self.verbose)
        return flow.fit(X, y) if sample_weight is None else flow.fit(X, y, sample_weight=sample_weight)

    # ------------------------------------------------------------ predict
    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    @with_torch_threads(_flow_threads)
    def predict_log_ratio(self, X, *, t_start=0.0, t_end=1.0):
        """Log density ratio ``log q(x) - log p(x)`` (Q is ``classes_[1]``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to evaluate the ratio.
        t_start, t_end : float, default=0.0 and 1.0
            Integrate ``r`` over ``[t_start, t_end]`` only, which gives
            ``log p_{t_end}(x) - log p_{t_start}(x)`` for the intermediate
            distributions of the chain (snapshot ``k`` lives at ``k / L``).

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
            Same dtype as ``X``.
        """
        X = self._check_X(X)
        t_start, t_end = check_time(t_start, "t_start"), check_time(t_end, "t_end")
        lo, hi = sorted((t_start, t_end))
        partial = (lo, hi) != (0.0, 1.0) and lo != hi
        if partial and hasattr(self, "bridge_net_"):
            raise ValueError(
                f"method_={self.method_!r} averages two estimates along different paths from P to Q, "
                f"which agree only on the whole interval: t_start={t_start} and t_end={t_end} need "
                "method='chain' or method='ctsm'"
            )
        if partial and len(self.times_) == 2:
            raise ValueError(
                f"the ratio net is a single classifier of Q against P (method_={self.method_!r}), which "
                f"knows only the whole interval: t_start={t_start} and t_end={t_end} need the chain "
                "(method='chain' and n_intervals > 1)"
            )
        parts = [(self.net_, self.times_)]
        if hasattr(self, "bridge_net_"):
            parts.append((self.bridge_net_, self.bridge_times_))
        _, scaler = torch_view(self.flow_)
        Z = scaler.to_tensor(X)
        grids = [np.concatenate([[lo], times[(times > lo) & (times < hi)], [hi]]) for _, times in parts]
        out = _mean_log_ratio([
            (net.to(scaler.device), torch.as_tensor(grid, dtype=Z.dtype, device=scaler.device))
            for (net, _), grid in zip(parts, grids)
        ], Z, self.quadrature)
        out = out.cpu().double().numpy() * (1.0 if t_end >= t_start else -1.0)
        return warn_non_finite(out.astype(X.dtype, copy=False), "predict_log_ratio")

    def predict_ratio(self, X):
        """Density ratio ``q(x) / p(x)``, e.g. importance weights of rows of P.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to evaluate the ratio.

        Returns
        -------
        ratio : ndarray of shape (n_samples,)
        """
        log_ratio_ = self.predict_log_ratio(X)
        with np.errstate(over="ignore"):
            ratio = np.exp(log_ratio_)
        if np.any(np.isinf(ratio) & np.isfinite(log_ratio_)):
            warnings.warn(
                "predict_ratio overflows to infinity for some rows (log ratio above "
                f"{float(np.max(log_ratio_)):.4g}); use predict_log_ratio for such rows",
                RuntimeWarning,
                stacklevel=2,
            )
        return ratio

    def _density_mode(self):
        return getattr(self, "classes_", None) is None

    @available_if(_density_mode)
    def score_samples(self, X):
        """Log density of P: ``log q(x) - int_0^1 r(x, t) dt`` (density-estimation mode).

        Only available when fitted with ``y=None``: Q is then the flow's
        ``reference`` distribution, whose ``score_samples`` gives ``log q``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to evaluate the density.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        X = self._check_X(X)
        ref = self.flow_.reference
        ref = StandardNormal(X.shape[1]) if ref is None else ref
        if not hasattr(ref, "score_samples"):
            raise TypeError(
                f"the flow's reference ({type(ref).__name__}) has no score_samples method, "
                "so the density of P cannot be computed"
            )
        log_q = np.asarray(ref.score_samples(X), dtype=np.float64)
        return (log_q - self.predict_log_ratio(X).astype(np.float64)).astype(X.dtype, copy=False)

    def score(self, X, y=None):
        """Held-out log-likelihood of the classifier implied by the log ratio.

        With labels, the classifier of Q against P has logit
        ``log q(x)/p(x) + log(n_Q / n_P)`` (the prior odds of ``y``); the score
        is its mean log-likelihood of the labels, a proper scoring rule
        (higher is better; 0 is perfect). With ``y=None`` (density mode) it is
        the mean of :meth:`score_samples`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stacked rows of both domains.
        y : array-like of shape (n_samples,), default=None
            Domain labels as in ``fit``.

        Returns
        -------
        score : float
        """
        if y is None or self._density_mode():
            if not self._density_mode():
                raise ValueError("y is required: the estimator was fitted on two labelled samples")
            return float(np.mean(self.score_samples(X)))
        X = self._check_X(X)
        y = check_domain_labels(y, len(X))
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y holds labels {np.unique(y[unknown]).tolist()} not seen in fit")
        is_q = y == self.classes_[1]
        n_q = is_q.sum()
        prior = np.log(max(n_q, 1) / max(len(y) - n_q, 1))
        logit = self.predict_log_ratio(X).astype(np.float64) + prior
        return float(-np.mean(np.logaddexp(0.0, np.where(is_q, -logit, logit))))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.non_deterministic = False
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

