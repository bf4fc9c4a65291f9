"""OTFlowTransformer: the optimal-transport flow between two samples."""

from __future__ import annotations

import copy
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._base import (
    TORCH_DTYPES,
    Standardiser,
    TorchStateMixin,
    atomic_fit,
    check_layers,
    check_scale,
    check_time,
    make_reporter,
    resolve_device,
    runtime_device,
    sample_reference,
    split_domains,
    split_sample_weight,
    torch_seed,
    warn_non_finite,
    with_torch_threads,
)
from ._torch.chains import holdout_split
from ._torch.coupling import INITS
from ._torch.criteria import antisymmetric_share, fit_and_optimality
from ._torch.flow import (
    RefineConfig,
    fit_flow_matching,
    heldout_monitor,
    refine,
    weighted_mean,
)
from ._torch.flowmap import FlowMap
from ._torch.losses import monge_gap
from ._torch.nn import ACTIVATIONS, MLP, VelocityField
from ._torch.train import CLASSIFIER, INITIAL_FLOW, REFINEMENT, TrainingDiverged, weighted_indices

__all__ = ["OTFlowTransformer", "check_weights", "resample_by_weight", "torch_view"]

# A fitted flow whose transport cost exceeds this many times the cost of the
# independent coupling (an upper bound on W2²), or whose push-forward mean is
# further from Q's mean than a typical row of P is from a row of Q, is absurd.
_ABSURD_COST_FACTOR = 10.0


def _own_threads(est):
    return est.n_threads


def torch_view(flow, device=None) -> tuple[FlowMap, Standardiser]:
    """The fitted flow as torch objects: its :class:`FlowMap` and its :class:`Standardiser`.

    Reads only public fitted attributes of ``flow`` (``field_``, ``shift_``,
    ``scale_``, ``device_``) and its step counts. ``device`` defaults to the
    fitted device when it exists here, else the CPU.
    """
    check_is_fitted(flow, "field_")
    device = runtime_device(flow.device_) if device is None else device
    field = flow.field_.to(device)
    fmap = FlowMap(field, flow.n_time_steps * flow.n_substeps)
    return fmap, Standardiser(flow.shift_, flow.scale_, fmap.dtype, device)


class OTFlowTransformer(TorchStateMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Optimal-transport flow between two distributions known by samples (Q-flow).

    Learns a time-dependent velocity field ``f(x, t)`` whose ODE flow carries
    the sample of P (at ``t=0``) onto the sample of Q (at ``t=1``) with the
    least kinetic energy, i.e. the dynamic (Benamou-Brenier) optimal
    transport. Training has two stages: an initial flow by flow matching,
    then the refinement of Algorithm 1 of Xu, Cheng and Xie (2023), which
    minimises ``KL(T#P || Q) + gamma * W2-path-cost`` in both directions, the
    KL terms estimated by two logistic classifiers.

    Inputs are centred and divided by one common scale (the pooled standard
    deviation) before training; ``gamma`` and the costs in ``history_`` are in
    those standardised units, so ``gamma`` has the same meaning whatever the
    scale of the data. One scale for all features keeps optimal transport
    maps optimal (per-feature scaling would not).

    ``fit`` takes ``sample_weight``: P and Q are then the weighted empirical
    measures of their rows (POT's ``a`` and ``b``), each domain's weights
    normalised to sum to one, so that integer weights act as repeated rows
    and rows of weight zero as absent rows.

    Parameters
    ----------
    gamma : float, default=0.01
        Weight of the W2 path cost in the refinement (standardised units).
        Smaller values follow the KL term more closely; larger values
        straighten and shorten the paths but shrink the map.
    reference : object or None, default=None
        The distribution Q when ``fit`` gets no ``y``: any object with
        ``sample(n_samples)`` (``random_state=`` accepted if it has one) and,
        for density estimation downstream, ``score_samples(X)``, e.g. a
        fitted :class:`~sklearn.mixture.GaussianMixture` wrapped in
        :class:`sklearn.frozen.FrozenEstimator` (so that ``clone``, and with
        it grid searches, keeps it fitted). ``None`` means the standard
        normal ``N(0, I_d)``.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden widths of the velocity field (time-gated ConcatSquash layers).
    activation : {"softplus", "tanh", "silu", "elu", "gelu"}, default="softplus"
        Smooth activation of every network (softplus has ``beta=20``).
    n_time_steps : int, default=8
        ``K``, the coarse time grid on which the W2 path cost is computed.
    n_substeps : int, default=2
        ``S``, RK4 steps inside each coarse interval; transforms use
        ``K * S`` RK4 steps.
    init : {"minibatch_ot", "block_ot", "linear", "brenier"}, default="minibatch_ot"
        Initial flow: flow matching on straight paths between rows paired by
        an optimal assignment inside each group of ``coupling_batch_size``
        rows, drawn afresh at every pass (``"minibatch_ot"``),
        by exact assignments inside random blocks of ``batch_size`` rows made
        once before training (``"block_ot"``: every row keeps one partner, so
        the field learns sharper maps, e.g. the demo's checkerboard, and
        steps are cheaper; on small samples from smooth distributions it
        memorises the sample's noise slightly more, 4-7% larger map errors on
        the small-data benchmark), drawn independently (``"linear"``, the
        paper's linear interpolant), or by a Brenier potential fitted once on all rows (``"brenier"``:
        the closed-form Gaussian map's quadratic plus an input-convex
        network, fitted by the semi-dual of optimal transport in
        ``init_steps`` steps of its own before the flow's; each row of P is
        paired with the potential's gradient at it, each row of Q with the
        conjugate's). ``"brenier"`` is the most accurate on Gaussian pairs
        (it starts at their exact model) and costs about twice the default's
        time; a potential's gradient is continuous, so it cannot tear one
        cluster into several (docs/benchmarks.md).
    max_iter : int, default=0
        Refinement rounds of Algorithm 1 (the paper's "Tot"). The default
        ``0`` keeps the initial flow: measured on this package's benchmarks,
        the refinement does not improve a flow that starts near the optimal
        transport (the default minibatch-OT initial flow), and ``gamma`` then
        has no effect. ``max_iter=1`` (or more) with ``init="linear"`` is the
        paper's setting, where the refinement shortens a far-from-optimal
        initial flow.
    init_steps : int or "auto", default="auto"
        Optimizer steps of flow matching (the initial flow); the learning
        rate decays to zero over these steps. The budget is in steps, not
        passes over the data: 30 passes were 30 steps on 500 rows and far
        more than needed on 100 000. ``"auto"`` takes ``n² / 50 000`` steps
        for ``n`` rows in the larger sample, between 300 and 2000 (300 up to
        about 3900 rows, 500 at 5000, 2000 from 10 000): small samples are
        memorised past a few hundred steps (the map gets worse: Gaussian
        pairs of 2000 rows, the bent moons of the domain-adaptation benchmark
        at 5000 rows), while large ones keep improving (with the default
        pairing groups, 2000 steps at 10 000 rows a side gave 3-19% lower
        map errors than 1000 on a non-linear map).
    refine_epochs : int, default=5
        ``E``, flow epochs per direction and round.
    classifier_epochs : int, default=20
        ``E0``, classifier epochs at the start of each direction of a round
        (classifiers are warm-started across rounds).
    classifier_inner_epochs : int, default=6
        ``E_in``, classifier epochs after each flow epoch. Enough for the
        classifier to follow the flow at the default learning rates; with
        too few, it lags and the flow and the classifier oscillate.
    batch_size : int or "auto", default="auto"
        Rows per batch for flow matching and the refinement. ``"auto"``
        adapts it to the data: an eighth of the larger sample, between 64
        and 256 rows (smaller batches for small data give the exact
        assignment fresh pairs at every step instead of one fixed pairing;
        the cap keeps the cubic cost of the assignment below that of the
        network's step).
    coupling_batch_size : int or "auto", default="auto"
        Rows of each sample paired together by one assignment with
        ``init="minibatch_ot"``, rounded to a whole number of batches (at
        least one); each paired group is then cut into batches. Larger
        groups bring every row's partner closer to its partner in the
        optimal plan of all rows: the pairs of small groups are biased
        towards a blurred map, the more so in higher dimensions. Groups of up
        to 256 rows get the exact assignment; larger ones a domain
        decomposition (exact assignments of 128 nearby rows, repeated over
        shifting cells until the total cost stops falling), whose cost grows
        linearly with the group instead of as its cube. ``"auto"`` takes a
        quarter of the larger sample, at most 8 batches (2048 rows from
        8192 rows a side); small samples thus keep small groups, whose
        partners change from pass to pass. Measured at 10 000 rows a side
        on three non-linear maps, with the same steps, groups of 2048
        instead of 256 rows lower the map error by 5% / 11% / 27% on
        average at d=2 / 8 / 32 (and raise it by 3-7% on some pairs), for
        about twice the fit time (docs/benchmarks.md).
    classifier_batch_size : int, default=256
        Rows per batch (of each side) for the classifiers.
    classifier_hidden_layer_sizes : tuple of int, default=(64, 64, 64)
        Hidden widths of the two classifiers. Small on purpose: measured
        on a Gaussian pair (d=8, 4000 rows a side, ``init="linear"``),
        3 x 256 classifiers memorise the rows (training KL estimates of
        2-4 nats while the held-out bound is 0) and the flow follows their
        noise: two refinement rounds took the map error from 0.19 to
        0.25-0.34 whatever ``gamma`` (0 included). With 3 x 64 they took it
        to 0.14-0.16 at ``gamma`` 0.003-0.03 (both at
        ``refine_learning_rate=2e-4``; docs/benchmarks.md, "Why the
        refinement did not shorten").
    learning_rate_init : float, default=3e-3
        Adam learning rate of flow matching (the initial flow), decayed to
        zero on a cosine schedule.
    classifier_learning_rate : float, default=1e-3
        Adam learning rate of the two classifiers of the refinement.
    refine_learning_rate : float, default=1e-5
        Adam learning rate of the flow during the refinement; all learning
        rates are halved after each round. At this default 5 epochs leave
        the flow about where it started; 2e-4 moves it (measured: better
        maps at d=8 from ``init="linear"``, 0.19 -> 0.14-0.16, but worse on
        the 2-D pair of the README, 0.10 -> 0.23 with ``max_iter=1``; see
        docs/benchmarks.md, "Why the refinement did not shorten").
    warm_start : bool, default=False
        When the estimator is already fitted on data of the same width, skip
        the initial flow and run ``max_iter`` more refinement rounds from
        the current flow (and classifiers), e.g. with another ``gamma``.
    validation_fraction : float, default=0.1
        Share of rows of each domain held out during the refinement (the
        initial flow learns from every row); the flow kept at the end is
        the epoch (or the initial flow) with the smallest held-out
        criterion: lower bounds on the KL of both directions plus the
        energy distances of both push-forwards to the held-out rows of the
        other domain plus ``gamma`` times both transport costs. ``0`` keeps
        the last epoch.
    adjoint : bool, default=False
        In the refinement, backpropagate through the ODE by torchdiffeq's
        adjoint method (memory constant in the number of solver steps, about
        twice the compute) instead of through the RK4 steps.
    device : str or torch.device, default="auto"
        Where torch runs: ``"auto"`` (CUDA when present, else the CPU) or
        anything :class:`torch.device` accepts (``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``). A device that is not available here is a
        ``ValueError`` at fit.
    n_threads : int or None, default=1
        Torch intra-op threads while this estimator computes (fit and every
        prediction method); torch's own setting is restored afterwards.
        ``None`` uses torch's setting as it is. One thread is the default
        because it is never much slower than several on these small networks
        and does not collapse when other jobs keep the cores busy (see the
        threads benchmark in the documentation). With ``init="minibatch_ot"``
        the exact assignments of the next batches run on two worker threads
        while the current step trains (they release the GIL): a 1000-step
        fit is about 40% faster on a quiet 2-core machine and 20% on a busy
        one, and the fit is the same as with the assignments inline.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the computation. Outputs keep the dtype of the input.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, batches and held-out splits (torch's global RNG is
        left untouched).
    verbose : int, default=0
        ``0`` silent; ``>= 1`` one progress bar (tqdm, on stderr) per phase:
        the initial flow, then in each refinement round the warm-up of each
        direction's classifier and each direction's flow epochs, with the
        live losses. Without tqdm, one line per epoch.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen in ``fit`` (only for inputs with string
        column names).
    classes_ : ndarray of shape (2,)
        Domain labels, ``classes_[0]`` is P and ``classes_[1]`` is Q; ``None``
        when fitted against the reference.
    n_iter_ : int
        Epochs of flow training run: the initial flow's epochs plus the
        refinement's flow epochs (both directions, every round); always at
        least 1 after a fit. A warm start adds to it.
    history_ : list of dict
        One record per training epoch: ``phase``, ``epoch``, ``loss`` and,
        for the refinement, ``direction``, ``kl`` (classifier KL estimate),
        ``classifier_loss``, ``kept`` (True for the one refinement record
        whose flow was kept: the held-out ``"initial"`` record when no
        refinement epoch beat the initial flow), and on the held-out rows
        (standardised units)
        ``criterion`` (the refinement loss plus both energy distances),
        ``heldout_kl`` (the sum of the two Donsker-Varadhan KL bounds),
        ``transport_cost`` and ``energy_distance``, and ``time`` (seconds
        since the start of ``fit``).
    transport_cost_ : float
        Kinetic energy of the flow averaged over the training rows of P (the
        W2² estimate, original units); over a random 4096 of them when there
        are more. A weighted mean under ``sample_weight``.
    inversion_error_ : float
        Mean squared round-trip error ``||T^{-1}(T(x)) - x||²`` over training
        rows of both domains (original units; at most 512 of each, drawn at
        random; weighted means under ``sample_weight``).
    device_ : str
        Device the model was fitted on.
    shift_ : ndarray of shape (n_features,)
        Mean of the pooled rows; the networks see ``(X - shift_) / scale_``.
        Under ``sample_weight``, the weighted mean (each domain keeping its
        share of rows of positive weight).
    scale_ : float
        Pooled standard deviation (one scale for all features); weighted
        like ``shift_``.
    field_ : torch.nn.Module
        The velocity field ``f(x, t)`` (on standardised inputs).
    classifiers_ : list of torch.nn.Module
        The two classifiers of the refinement, P->Q (pushed P against Q) then
        Q->P (pulled Q against P); set only when ``max_iter > 0``.

    See Also
    --------
    InfinitesimalDensityRatio : log density ratios along the flow.

    References
    ----------
    C. Xu, X. Cheng, Y. Xie, "Computing high-dimensional optimal transport by
    flow neural networks", arXiv:2305.11857.

    Examples
    --------
    >>> import numpy as np
    >>> from skqflow import OTFlowTransformer, stack
    >>> rng = np.random.default_rng(0)
    >>> X, y = stack(rng.normal(size=(200, 2)), rng.normal(3.0, 0.5, size=(200, 2)))
    >>> flow = OTFlowTransformer(init_steps=50, max_iter=0, random_state=0).fit(X, y)
    >>> flow.transform(X[:3]).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        "gamma": [Interval(Real, 0, None, closed="left")],
        "reference": "no_validation",
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "n_time_steps": [Interval(Integral, 1, None, closed="left")],
        "n_substeps": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions(set(INITS))],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "init_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "refine_epochs": [Interval(Integral, 0, None, closed="left")],
        "classifier_epochs": [Interval(Integral, 0, None, closed="left")],
        "classifier_inner_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "coupling_batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "classifier_batch_size": [Interval(Integral, 1, None, closed="left")],
        "classifier_hidden_layer_sizes": ["array-like"],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "classifier_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "refine_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "warm_start": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "adjoint": ["boolean"],
        "device": [str, torch.device],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "dtype": [StrOptions(set(TORCH_DTYPES))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        gamma=0.01,
        reference=None,
        hidden_layer_sizes=(256, 256),
        activation="softplus",
        n_time_steps=8,
        n_substeps=2,
        init="minibatch_ot",
        max_iter=0,
        init_steps="auto",
        refine_epochs=5,
        classifier_epochs=20,
        classifier_inner_epochs=6,
        batch_size="auto",
        coupling_batch_size="auto",
        classifier_batch_size=256,
        classifier_hidden_layer_sizes=(64, 64, 64),
        learning_rate_init=3e-3,
        classifier_learning_rate=1e-3,
        refine_learning_rate=1e-5,
        warm_start=False,
        validation_fraction=0.1,
        adjoint=False,
        device="auto",
        n_threads=1,
        dtype="float32",
        random_state=None,
        verbose=0,
    ):
        self.gamma = gamma
        self.reference = reference
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.n_time_steps = n_time_steps
        self.n_substeps = n_substeps
        self.init = init
        self.max_iter = max_iter
        self.init_steps = init_steps
        self.refine_epochs = refine_epochs
        self.classifier_epochs = classifier_epochs
        self.classifier_inner_epochs = classifier_inner_epochs
        self.batch_size = batch_size
        self.coupling_batch_size = coupling_batch_size
        self.classifier_batch_size = classifier_batch_size
        self.classifier_hidden_layer_sizes = classifier_hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.classifier_learning_rate = classifier_learning_rate
        self.refine_learning_rate = refine_learning_rate
        self.warm_start = warm_start
        self.validation_fraction = validation_fraction
        self.adjoint = adjoint
        self.device = device
        self.n_threads = n_threads
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @atomic_fit
    @with_torch_threads(_own_threads)
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the flow from P to Q.

        The fit is all or nothing: if it raises or is interrupted (Ctrl-C),
        the estimator keeps exactly the state it had before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of both samples stacked (see :func:`skqflow.stack`), or the
            rows of P alone when ``y`` is None.
        y : array-like of shape (n_samples,), default=None
            Two distinct domain labels: rows with ``classes_[0]`` are P, rows
            with ``classes_[1]`` are Q. ``None`` fits P = X against the
            ``reference`` distribution.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row: P and Q become the weighted
            empirical measures of their rows, each domain's weights
            normalised to sum to one (scaling the weights of one domain
            changes nothing). Every training batch draws its rows in
            proportion to their weights (so an integer weight acts, in
            distribution, as that many copies of the row), the held-out
            criterion and the fitted metrics are weighted means, and the
            standardisation uses the weighted mean and scale of each domain,
            each domain keeping its share of rows. Rows of weight zero are
            dropped, as if absent; weights equal within each domain give
            exactly the unweighted fit. ``None``: every row weighs the same.
            With ``y=None`` the weights are those of the rows of P.

        Returns
        -------
        self : OTFlowTransformer
            The fitted transformer.

        Raises
        ------
        ValueError
            If ``sample_weight`` has the wrong shape, a negative or
            non-finite value, or fewer than two rows of positive weight in a
            domain.
        """
        warm = self.warm_start and hasattr(self, "field_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=not warm)
        sample_weight = check_weights(sample_weight, X)
        sizes = check_layers(self.hidden_layer_sizes, "hidden_layer_sizes")
        clf_sizes = check_layers(self.classifier_hidden_layer_sizes, "classifier_hidden_layer_sizes")
        device = runtime_device(self.device_) if warm else resolve_device(self.device)
        dtype = next(self.field_.parameters()).dtype if warm else TORCH_DTYPES[self.dtype]
        check_scale(X, dtype)
        rng = check_random_state(self.random_state)
        w_p = w_q = None
        if y is None:
            classes = None
            X_p, w_p = _positive_rows(X, sample_weight, "X (P)", min_rows=2)
            X_q = sample_reference(self.reference, len(X_p), X.shape[1], rng)
        else:
            classes, X_p, X_q = split_domains(X, y)
            if sample_weight is not None:
                w_p, w_q = split_sample_weight(sample_weight, y, classes)
                X_p, w_p = _positive_rows(X_p, w_p, f"domain {classes.tolist()[0]!r} (P)", min_rows=2)
                X_q, w_q = _positive_rows(X_q, w_q, f"domain {classes.tolist()[1]!r} (Q)", min_rows=2)
        if warm:
            self._check_warm_start(classes, sizes, clf_sizes)
            scaler = Standardiser(self.shift_, self.scale_, dtype, device)
        else:
            scaler = _standardiser(X_p, X_q, w_p, w_q, dtype, device)

        n_rows = max(len(X_p), len(X_q))
        batch_size = auto_batch_size(n_rows) if self.batch_size == "auto" else self.batch_size
        init_steps = auto_init_steps(n_rows) if self.init_steps == "auto" else self.init_steps
        start = time.perf_counter()
        with torch_seed(rng, device) as gen:
            zp_all, zq_all = scaler.to_tensor(X_p), scaler.to_tensor(X_q)
            wp_all, wq_all = _weight_tensor(w_p, zp_all), _weight_tensor(w_q, zq_all)
            # The held-out rows only monitor the refinement: the initial flow
            # learns from every row.
            fraction = self.validation_fraction if self.max_iter > 0 else 0.0
            zp, vp, wp, wp_held = _holdout(zp_all, fraction, gen, wp_all)
            zq, vq, wq, wq_held = _holdout(zq_all, fraction, gen, wq_all)
            report, close = make_reporter(
                self.verbose,
                {INITIAL_FLOW: _n_passes(init_steps, n_rows, batch_size), REFINEMENT: self.refine_epochs,
                 CLASSIFIER: self.classifier_epochs},
            )
            # Warm starts train copies, so that an interrupted fit leaves the
            # fitted modules untouched.
            if warm:
                field, history = copy.deepcopy(self.field_).to(device), [dict(r) for r in self.history_]
            else:
                field, history = VelocityField(X.shape[1], sizes, self.activation).to(device, dtype), []
            classifiers = None
            diverged = None
            try:
                if not warm:
                    try:
                        losses = fit_flow_matching(
                            field, zp_all, zq_all, init=self.init, init_steps=init_steps,
                            batch_size=batch_size, learning_rate_init=self.learning_rate_init, generator=gen,
                            report=report, weights=(wp_all, wq_all),
                            pairing_rows=self._pairing_rows(n_rows, batch_size),
                        )
                    except TrainingDiverged as exc:
                        history += _initial_records(exc.losses, diverged=True)
                        raise
                    history += _initial_records(losses)
                if self.max_iter > 0:
                    if warm and hasattr(self, "classifiers_"):
                        classifiers = [copy.deepcopy(c).to(device) for c in self.classifiers_]
                    else:
                        classifiers = [MLP(X.shape[1], clf_sizes, self.activation).to(device, dtype) for _ in range(2)]
                    fmap = FlowMap(field, self._steps())
                    monitor = (
                        heldout_monitor(fmap, classifiers, vp, vq, self.gamma, start, weights=(wp_held, wq_held))
                        if vp is not None and vq is not None else None
                    )
                    for record in history:  # one kept state: the one this refinement keeps
                        record.pop("kept", None)
                    try:
                        records = refine(
                            field, classifiers, zp, zq, self._refine_config(batch_size), gen,
                            monitor=monitor, report=report, weights=(wp, wq),
                        )
                    except TrainingDiverged as exc:
                        history += [{"phase": REFINEMENT, **r} for r in exc.history]
                        raise
                    history += [{"phase": REFINEMENT, **r} for r in records]
            except TrainingDiverged as exc:
                diverged = exc
            finally:
                close()
        if diverged is not None:
            warnings.warn(
                f"Training diverged ({diverged}). Try a smaller learning rate or gamma.",
                ConvergenceWarning,
                stacklevel=2,
            )
        fmap = FlowMap(field, self._steps())
        # The fitted metrics are estimated on at most _METRIC_ROWS rows of each side.
        (zp_m, wp_m), (zq_m, wq_m) = _subsample(zp_all, gen, wp_all), _subsample(zq_all, gen, wq_all)
        (zp_r, wp_r), (zq_r, wq_r) = (_subsample(zp_m, gen, wp_m, _ROUND_TRIP_ROWS),
                                      _subsample(zq_m, gen, wq_m, _ROUND_TRIP_ROWS))
        with torch.no_grad():
            pushed, energy = fmap.transport(zp_m)
            round_trip = 0.5 * (
                weighted_mean(fmap.round_trip_error(zp_r, 0.0), wp_r)
                + weighted_mean(fmap.round_trip_error(zq_r, 1.0), wq_r)
            )
        _check_sanity(pushed, energy, zp_m, zq_m, gen, (wp_m, wq_m))

        # Commit the fitted state in one step.
        self.classes_ = classes
        self.device_ = str(device)
        self.shift_, self.scale_ = scaler.shift, scaler.scale
        self.field_ = field
        if classifiers is not None:
            self.classifiers_ = classifiers
        self.history_ = history
        self.n_iter_ = sum(
            1 for r in history if r["phase"] == INITIAL_FLOW or r.get("direction", "initial") != "initial"
        )
        self.transport_cost_ = float(weighted_mean(energy.double(), wp_m)) * scaler.scale**2
        self.inversion_error_ = float(round_trip) * scaler.scale**2
        return self

    def _pairing_rows(self, n_rows: int, batch_size: int) -> int:
        """Rows paired by one assignment: ``coupling_batch_size`` as a whole number of batches."""
        if self.coupling_batch_size == "auto":
            return auto_pairing_rows(n_rows, batch_size)
        return batch_size * max(1, round(self.coupling_batch_size / batch_size))

    def _check_warm_start(self, classes, sizes, clf_sizes) -> None:
        """A warm start continues the fitted flow: refuse settings it cannot honour."""
        changed = []
        if (classes is None) != (self.classes_ is None) or (
            classes is not None and not np.array_equal(classes, self.classes_)
        ):
            changed.append("the domain labels (or y=None)")
        field_args = self.field_.init_args
        if tuple(field_args["hidden_layer_sizes"]) != sizes or field_args["activation"] != self.activation:
            changed.append("hidden_layer_sizes or activation")
        if TORCH_DTYPES[self.dtype] != next(self.field_.parameters()).dtype:
            changed.append("dtype")
        classifiers = getattr(self, "classifiers_", None)
        if classifiers and tuple(classifiers[0].init_args["hidden_layer_sizes"]) != clf_sizes:
            changed.append("classifier_hidden_layer_sizes")
        if changed:
            raise ValueError(
                "warm_start=True continues the fitted flow, but "
                + ", ".join(changed)
                + " changed since it was fitted; set warm_start=False to fit a new flow"
            )

    def _refine_config(self, batch_size: int) -> RefineConfig:
        return RefineConfig(
            gamma=self.gamma, max_iter=self.max_iter, refine_epochs=self.refine_epochs,
            classifier_epochs=self.classifier_epochs, classifier_inner_epochs=self.classifier_inner_epochs,
            batch_size=batch_size, classifier_batch_size=self.classifier_batch_size,
            refine_learning_rate=self.refine_learning_rate,
            classifier_learning_rate=self.classifier_learning_rate,
            n_time_steps=self.n_time_steps, n_substeps=self.n_substeps, adjoint=self.adjoint,
        )

    # ------------------------------------------------------------ helpers
    def _steps(self) -> int:
        return self.n_time_steps * self.n_substeps

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _flow_and_rows(self, X):
        """The fitted flow, its standardiser, the checked rows ``X`` and those rows standardised as a tensor."""
        X = self._check_X(X)
        fmap, scaler = torch_view(self)
        return fmap, scaler, X, scaler.to_tensor(X)

    def _push(self, X, start, stop):
        fmap, scaler, X, Z = self._flow_and_rows(X)
        out = scaler.from_tensor(fmap.push(Z, start, stop), X.dtype)
        return warn_non_finite(out, "transform" if start == 0.0 else "inverse_transform")

    # ------------------------------------------------------------ public
    @with_torch_threads(_own_threads)
    def transform(self, X):
        """Push rows of P forward to Q: ``T_0^1(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the space of P.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            The transported rows, same dtype as ``X``.
        """
        return self._push(X, 0.0, 1.0)

    @with_torch_threads(_own_threads)
    def inverse_transform(self, X):
        """Pull rows of Q back to P: ``T_1^0(X)``, the same ODE integrated backwards.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the space of Q.

        Returns
        -------
        X_original : ndarray or DataFrame of shape (n_samples, n_features)
            The transported rows, same dtype as ``X``; a DataFrame (columns
            ``feature_names_in_``, index of ``X``) under
            ``set_output(transform="pandas")``, as ``transform`` gives.
        """
        return _wrap_data_with_container("transform", self._push(X, 1.0, 0.0), X, self)

    @with_torch_threads(_own_threads)
    def interpolate(self, X, t, *, start=0.0):
        """Carry rows from time ``start`` to time(s) ``t`` along the flow: ``T_start^t(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at time ``start``.
        t : float or array-like of shape (n_times,)
            Target time(s) in [0, 1].
        start : float, default=0.0
            Time at which ``X`` lives (0 for P, 1 for Q).

        Returns
        -------
        X_t : ndarray of shape (n_samples, n_features) or (n_times, n_samples, n_features)
            The rows at time ``t``; a 3-D array when ``t`` is an array. For a
            scalar ``t`` under ``set_output(transform="pandas")``, a DataFrame
            as ``transform`` gives.
        """
        X_in = X
        fmap, scaler, X, Z = self._flow_and_rows(X)
        times = _check_times(t)
        start = check_time(start, "start")
        out = scaler.from_tensor(fmap.states(Z, np.atleast_1d(times), start), X.dtype)
        out[np.atleast_1d(times) == start] = X  # T_s^s is the identity, exactly
        warn_non_finite(out, "interpolate")
        return _wrap_data_with_container("transform", out[0], X_in, self) if times.ndim == 0 else out

    @with_torch_threads(_own_threads)
    def transport_cost(self, X):
        """Kinetic energy ``int_0^1 ||f(x(t), t)||² dt`` averaged over rows of P.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of P.

        Returns
        -------
        cost : float
            The W2² estimate of the learned transport (original units).
        """
        fmap, scaler, _, Z = self._flow_and_rows(X)
        cost = float(fmap.kinetic(Z).double().mean()) * scaler.scale**2
        return float(warn_non_finite(np.array([cost]), "transport_cost")[0])

    @with_torch_threads(_own_threads)
    def monge_gap(self, X):
        """Discrete Monge gap of the learned map on rows of P: how far it is from optimal.

        ``mean ||x - T(x)||² - min_σ mean ||x_i - T(x_σ(i))||²`` over the rows
        ``X`` (original units): the cost of the flow's own pairing of the rows
        with their images minus that of the optimal assignment between them.
        It is zero exactly when the map is cyclically monotone on these rows,
        as an optimal transport map is, and positive otherwise, whatever the
        target. Use held-out rows; the exact assignment costs the cube of the
        number of rows (a second for about 2000). It only sees a non-optimal
        map through short cycles of nearby rows: at d=8 it reads 0 on 1000
        rows even for maps 20% off the optimal one, which
        :meth:`map_asymmetry` tells apart.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of P.

        Returns
        -------
        gap : float
        """
        fmap, scaler, _, Z = self._flow_and_rows(X)
        return float(monge_gap(Z, fmap.push(Z))) * scaler.scale**2

    @with_torch_threads(_own_threads)
    def map_asymmetry(self, X):
        """Antisymmetric share of the Jacobian of the learned map on rows of P: how far it is from optimal.

        ``||A|| / ||J||`` (Frobenius norms, mean squares over the rows ``X``)
        for the Jacobian ``J`` of ``transform`` and its antisymmetric part
        ``A = (J - J^T) / 2``, estimated with two pairs of random probes per
        row. An optimal transport map for the squared distance is the gradient
        of a convex function (Brenier), so its Jacobian is symmetric and the
        share is 0, whatever the target; a map that rotates the optimal one
        (as flow matching on badly paired rows learns) has a positive share,
        at most 1. Unlike :meth:`monge_gap` it needs no assignment and sees a
        rotation on any number of rows; like it, it says nothing about how
        well the push-forward fits Q (see :meth:`score`, which adds both).
        Unitless, the same in any units of ``X``; 0 (to rounding) in one dimension.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of P.

        Returns
        -------
        share : float
        """
        fmap, _, _, Z = self._flow_and_rows(X)
        return float(antisymmetric_share(fmap, Z, 0.0, 1.0))

    @with_torch_threads(_own_threads)
    def score(self, X, y=None, sample_weight=None):
        """Minus a label-free error of the flow: misfit of the push-forwards plus non-optimality of the map.

        ``-s * (D(T(X_P), X_Q) + D(T^{-1}(X_Q), X_P) + a(T, X_P)² + a(T^{-1}, X_Q)²)``
        in the flow's standardised coordinates (``s`` the fitted scale
        ``scale_``, so the score is in the units of ``X``), with ``D`` the
        energy distance and ``a`` the antisymmetric share of a map's Jacobian
        on the rows it maps (:meth:`map_asymmetry`). Each term is zero for
        the optimal transport map: the energy distances measure how well
        the two push-forwards match the other sample, the shares how far
        the map is from a gradient map, which an optimal one is. So a grid
        search prefers an accurate, optimal map, not only a good fit: the
        fit alone cannot tell an optimal map from a rotated one with the
        same push-forward (a flow of randomly paired rows,
        ``init="linear"``), and rewards a map that ignores optimality. The
        shares enter squared, as the energy distance grows as the square of
        a small misfit; the shares themselves would let a smooth gradient
        map that fits badly (``init="brenier"`` on a non-Gaussian pair)
        outscore an accurate map.
        Higher is better; independent of ``gamma``; the energy distance
        has a sampling floor of order one over the number of rows, the
        shares none.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stacked rows of both domains, or rows of P when fitted without
            ``y``.
        y : array-like of shape (n_samples,), default=None
            Domain labels (the ``classes_`` of ``fit``); ``None`` compares
            with fresh samples of the reference.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row: the energy distances are then
            those of the weighted empirical measures and the shares weighted
            means over the rows (each domain's weights normalised to sum to
            one), as in ``fit``. The shares' random probes are drawn row by
            row, so integer weights give the energy distances of repeated
            rows exactly and their shares in expectation.

        Returns
        -------
        score : float
        """
        X = self._check_X(X)
        sample_weight = check_weights(sample_weight, X)
        w_p = w_q = None
        if self.classes_ is None:
            if y is not None:
                raise ValueError("y must be None: the flow was fitted against its reference distribution")
            X_p, w_p = _positive_rows(X, sample_weight, "X (P)", min_rows=1)
            # a fixed draw, so that the score of the same rows is always the same
            X_q = sample_reference(self.reference, len(X), X.shape[1], np.random.RandomState(0))
        elif y is None:
            raise ValueError(
                "y is required: the flow was fitted on two labelled samples, so score(X, y) needs "
                "the domain label of every row of X"
            )
        else:
            classes, X_p, X_q = split_domains(X, y, min_rows=1)
            if not np.array_equal(classes, self.classes_):
                raise ValueError(f"y holds labels {classes.tolist()}, fit saw {self.classes_.tolist()}")
            if sample_weight is not None:
                w_p, w_q = split_sample_weight(sample_weight, y, classes)
                X_p, w_p = _positive_rows(X_p, w_p, f"domain {classes.tolist()[0]!r} (P)", min_rows=1)
                X_q, w_q = _positive_rows(X_q, w_q, f"domain {classes.tolist()[1]!r} (Q)", min_rows=1)
        fmap, scaler = torch_view(self)
        zp, zq = scaler.to_tensor(X_p), scaler.to_tensor(X_q)
        wp, wq = _weight_tensor(w_p, zp), _weight_tensor(w_q, zq)
        terms = fit_and_optimality(fmap, zp, zq, (wp, wq))
        error = (terms["energy_distance"] + terms["asymmetry_squared"]) * scaler.scale
        return float(warn_non_finite(np.array([-error]), "score")[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        tags.non_deterministic = False
        # y, when given, holds exactly two domain labels: declare it binary so
        # that generic checks pass two labels.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags


_METRIC_ROWS = 4096
#: Rows of each side for ``inversion_error_``: a check of the solver (two
#: integrations per row), which needs far fewer rows than the W2² estimate.
_ROUND_TRIP_ROWS = 512


def _subsample(z, gen, w=None, size=_METRIC_ROWS):
    """At most ``size`` rows of ``z`` drawn at random (all rows when fewer), with their weights ``w``."""
    if len(z) <= size:
        return z, w
    i = torch.randperm(len(z), generator=gen)[:size].to(z.device)
    return z[i], (None if w is None else w[i])


def check_weights(sample_weight, X):
    """``sample_weight`` as a float64 array of one non-negative finite weight per row of ``X`` (or None)."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)


def _positive_rows(X, weights, domain: str, *, min_rows: int):
    """The rows of one domain with positive weight, and their weights (None when all equal).

    Rows of weight zero are dropped (they are absent from the weighted
    measure); weights equal on every kept row define the unweighted measure,
    so they come back as None and the fit takes the unweighted path.

    Raises
    ------
    ValueError
        If fewer than ``min_rows`` rows have a positive weight.
    """
    if weights is None:
        return X, None
    keep = weights > 0
    n_kept = int(keep.sum())
    if n_kept == 0:
        raise ValueError(
            f"sample_weight is zero on every row of {domain}; each domain needs rows of positive weight"
        )
    if n_kept < min_rows:
        raise ValueError(
            f"{domain} has {n_kept} row(s) of positive sample_weight; at least {min_rows} are needed"
        )
    if n_kept < len(X):
        X, weights = X[keep], weights[keep]
    if np.all(weights == weights[0]):
        return X, None
    return X, weights / weights.max()  # in (0, 1]: sums cannot overflow


def resample_by_weight(X, weights, domain: str, rng):
    """The rows of one domain resampled once in proportion to ``weights``.

    Systematic resampling (:func:`~skqflow._torch.train.weighted_indices`) to
    as many rows as have a positive weight, so a row appears the floor or
    the ceiling of its expected count. ``weights=None``, or equal positive
    weights, returns ``X`` itself and leaves ``rng`` untouched. Raises like
    :func:`_positive_rows`.
    """
    X, weights = _positive_rows(X, weights, domain, min_rows=2)
    if weights is None:
        return X
    gen = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
    return X[weighted_indices(torch.as_tensor(weights), len(X), gen).numpy()]


def _weight_tensor(weights, like):
    """Weights as a tensor on ``like``'s device (None stays None)."""
    return None if weights is None else torch.as_tensor(weights, dtype=torch.float64).to(like.device)


def _standardiser(X_p, X_q, w_p, w_q, dtype, device) -> Standardiser:
    """Centre on the pooled mean, scale by the pooled standard deviation (one scale).

    With weights, each domain keeps its share of rows and its rows count by
    their weights inside it.
    """
    pooled = np.concatenate([X_p, X_q]).astype(np.float64)
    if w_p is None and w_q is None:
        scale = float(np.sqrt(pooled.var(0).mean())) or 1.0
        return Standardiser(pooled.mean(0), scale, dtype, device)
    w = np.concatenate([_shares(w_p, len(X_p)), _shares(w_q, len(X_q))])
    shift = np.average(pooled, axis=0, weights=w)
    scale = float(np.sqrt(np.average((pooled - shift) ** 2, axis=0, weights=w).mean())) or 1.0
    return Standardiser(shift, scale, dtype, device)


def _shares(weights, n: int) -> np.ndarray:
    """``n`` row weights that sum to ``n``: ``weights`` rescaled, or ones when None."""
    return np.ones(n) if weights is None else weights * (n / weights.sum())


def auto_init_steps(n_rows: int) -> int:
    """``init_steps="auto"``: ``n_rows² / 50 000`` steps, between 300 and 2000.

    300 steps up to about 3900 rows, 500 at 5000, 2000 from 10 000 rows on:
    the budget grows with the square of the sample, because small samples are
    memorised past a few hundred steps while large ones keep improving.
    """
    return int(min(2000, max(300, n_rows * n_rows // 50_000)))


def auto_batch_size(n_rows: int) -> int:
    """``batch_size="auto"``: an eighth of the larger sample, between 64 and 256 rows.

    The exact assignment of a batch costs about the cube of its size (9 ms at
    256 rows, 60 ms at 512 on the moons-to-checkerboard pair, one core), so
    larger batches would make the assignment most of every step.
    """
    return int(min(256, max(64, n_rows // 8)))


def auto_pairing_rows(n_rows: int, batch_size: int) -> int:
    """Rows paired together by a batch coupling: a quarter of the larger sample, at most 8 batches.

    A whole number of batches, at least one. Larger groups bring each row's
    partner closer to the optimal plan of all rows
    (:func:`~._torch.coupling.decomposed_assignment` keeps their cost linear
    in the rows); a quarter of the sample keeps the groups, and so the
    partners, changing from one pass to the next.
    """
    return batch_size * int(min(8, max(1, n_rows // (4 * batch_size))))


def _n_passes(steps: int, n_rows: int, batch_size: int) -> int:
    """Passes over ``n_rows`` rows that ``steps`` steps of ``batch_size`` rows make."""
    return -(-steps // -(-n_rows // batch_size))


def _initial_records(losses, *, diverged=False) -> list[dict]:
    """History records of the initial flow; a divergence adds a NaN record for the failed epoch."""
    records = [{"phase": INITIAL_FLOW, "epoch": i + 1, "loss": v} for i, v in enumerate(losses)]
    if diverged:
        records.append({"phase": INITIAL_FLOW, "epoch": len(losses) + 1, "loss": float("nan"), "diverged": True})
    return records


def _check_times(t) -> np.ndarray:
    """``t`` as a scalar or 1-D float array of times in [0, 1], or a ValueError naming ``t``."""
    raw = np.asarray(t)
    if raw.dtype.kind not in "iuf":  # bools, strings, objects are not times
        raise ValueError(f"t must be a time in [0, 1] or a 1-D array of such times; got {t!r}")
    times = raw.astype(np.float64)
    if times.ndim > 1 or times.size == 0:
        raise ValueError(
            f"t must be a time in [0, 1] or a non-empty 1-D array of such times; got {t!r}"
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0) or np.any(times > 1):
        raise ValueError(f"t must lie in [0, 1]; got {times}")
    return times


def _holdout(z, fraction, gen, w=None):
    """``(train, held, w_train, w_held)``: rows of one sample and their weights ``w`` (or None).

    ``held`` (and ``w_held``) is None when there are too few rows.
    """
    if w is None:
        train, held = holdout_split([z], fraction, gen)
        return (train[0], held[0], None, None) if held is not None else (z, None, None, None)
    train, held = holdout_split([z, w], fraction, gen)
    return (train[0], held[0], train[1], held[1]) if held is not None else (z, None, w, None)


def _check_sanity(pushed, energy, zp, zq, gen, weights=(None, None)) -> None:
    """Warn when a fitted flow is absurd against the data's scale (standardised units).

    The transport cost of any reasonable flow is far below ``_ABSURD_COST_FACTOR``
    times that of the independent coupling, and the mean of ``T(P)`` is within
    the typical distance between a row of P and a row of Q of the mean of Q.
    ``weights`` (of ``zp`` and ``zq``, or None) make every mean a weighted one.
    """
    wp, wq = weights
    n = min(len(zp), len(zq), 4096)
    i = _draw_rows(len(zp), n, gen, wp).to(zp.device)
    j = _draw_rows(len(zq), n, gen, wq).to(zq.device)
    independent = float((zp[i] - zq[j]).pow(2).sum(1).double().mean())
    cost = float(weighted_mean(energy.double(), wp))
    offset = float((weighted_mean(pushed.double(), wp) - weighted_mean(zq.double(), wq)).pow(2).sum())
    problems = []
    if not np.isfinite(cost) or cost > _ABSURD_COST_FACTOR * independent:
        problems.append(f"its transport cost is {cost:.3g} against {independent:.3g} for independent pairing")
    if not np.isfinite(offset) or offset > independent:
        problems.append(
            f"the mean of T(P) is {np.sqrt(offset):.3g} away from the mean of Q (typical distance "
            f"between rows {np.sqrt(independent):.3g})"
        )
    if problems:
        warnings.warn(
            "The fitted flow is not a sound map from P to Q (standardised units): "
            + "; ".join(problems)
            + ". Training most likely diverged: try a smaller learning rate or more epochs.",
            ConvergenceWarning,
            stacklevel=3,
        )



def _draw_rows(n_rows, n, gen, weights):
    """``n`` distinct random rows of ``n_rows``, or ``n`` rows drawn in proportion to ``weights``."""
    if weights is None:
        return torch.randperm(n_rows, generator=gen)[:n]
    return weighted_indices(weights, n, gen)
