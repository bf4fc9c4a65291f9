"""OTFlowTransformer: the optimal-transport flow between two samples."""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import (
    TORCH_DTYPES,
    TorchStateMixin,
    make_reporter,
    resolve_device,
    runtime_device,
    sample_reference,
    split_domains,
    torch_seed,
)
from ._torch.coupling import COUPLINGS
from ._torch.flow import RefineConfig, fit_flow_matching, push, refine
from ._torch.losses import energy_distance, kl_lower_bound
from ._torch.nn import ACTIVATIONS, MLP, VelocityField
from ._torch.ode import integrate, integrate_to, uniform_grid
from ._torch.train import TrainingDiverged

__all__ = ["OTFlowTransformer"]

_CHUNK = 8192


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
    init : {"minibatch_ot", "linear"}, default="minibatch_ot"
        Initial flow: flow matching on straight paths between rows paired by
        an exact optimal assignment inside each batch (``"minibatch_ot"``)
        or drawn independently (``"linear"``, the paper's linear interpolant).
    max_iter : int, default=1
        Refinement rounds (the paper's "Tot"); ``0`` keeps the initial flow.
    init_epochs : int, default=30
        Epochs of flow matching.
    refine_epochs : int, default=5
        ``E``, flow epochs per direction and round.
    classifier_epochs : int, default=20
        ``E0``, classifier epochs at the start of each direction of a round
        (classifiers are warm-started across rounds).
    classifier_inner_epochs : int, default=2
        ``E_in``, classifier epochs after each flow epoch.
    batch_size : int, default=512
        Rows per batch for flow matching and the refinement.
    classifier_batch_size : int, default=256
        Rows per batch (of each side) for the classifiers.
    classifier_hidden_layer_sizes : tuple of int, default=(256, 256, 256)
        Hidden widths of the two classifiers.
    learning_rate_init : float, default=3e-3
        Adam learning rate of flow matching (cosine-decayed) and of the
        classifiers.
    refine_learning_rate : float, default=1e-5
        Adam learning rate of the flow during the refinement; all learning
        rates are halved after each round.
    warm_start : bool, default=False
        When the estimator is already fitted on data of the same width, skip
        the initial flow and run ``max_iter`` more refinement rounds from
        the current flow (and classifiers), e.g. with another ``gamma``.
    validation_fraction : float, default=0.1
        Share of rows of each domain held out during the refinement (the
        initial flow learns from every row); the flow kept at the end is
        the epoch (or the initial flow) with the smallest held-out
        refinement loss (lower bounds on the KL of both directions plus
        ``gamma`` times both path costs). ``0`` keeps the last epoch.
    adjoint : bool, default=False
        Backpropagate through the ODE by torchdiffeq's adjoint method
        (less memory, slower) instead of through the solver steps.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where torch runs; ``"auto"`` uses CUDA when present.
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
        Refinement rounds run.
    history_ : list of dict
        One record per training epoch: ``phase``, ``epoch``, ``loss`` and,
        for the refinement, ``direction``, ``kl`` (classifier KL estimate),
        ``classifier_loss``, and on the held-out rows (standardised units)
        ``criterion`` (the refinement loss), ``heldout_kl`` (the sum of the two
        Donsker-Varadhan KL bounds),
        ``transport_cost`` and ``energy_distance``, and ``time`` (seconds
        since the start of ``fit``).
    transport_cost_ : float
        Kinetic energy of the flow averaged over the training rows of P (the
        W2² estimate, original units).
    inversion_error_ : float
        Mean squared round-trip error ``||T^{-1}(T(x)) - x||²`` over training
        rows of both domains (original units).
    device_ : str
        Device the model was fitted on.
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
    >>> flow = OTFlowTransformer(init_epochs=5, max_iter=0, random_state=0).fit(X, y)
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
        "init": [StrOptions(set(COUPLINGS))],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "init_epochs": [Interval(Integral, 0, None, closed="left")],
        "refine_epochs": [Interval(Integral, 0, None, closed="left")],
        "classifier_epochs": [Interval(Integral, 0, None, closed="left")],
        "classifier_inner_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "classifier_batch_size": [Interval(Integral, 1, None, closed="left")],
        "classifier_hidden_layer_sizes": ["array-like"],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "refine_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "warm_start": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "adjoint": ["boolean"],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
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
        max_iter=1,
        init_epochs=30,
        refine_epochs=5,
        classifier_epochs=20,
        classifier_inner_epochs=2,
        batch_size=512,
        classifier_batch_size=256,
        classifier_hidden_layer_sizes=(256, 256, 256),
        learning_rate_init=3e-3,
        refine_learning_rate=1e-5,
        warm_start=False,
        validation_fraction=0.1,
        adjoint=False,
        device="auto",
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
        self.init_epochs = init_epochs
        self.refine_epochs = refine_epochs
        self.classifier_epochs = classifier_epochs
        self.classifier_inner_epochs = classifier_inner_epochs
        self.batch_size = batch_size
        self.classifier_batch_size = classifier_batch_size
        self.classifier_hidden_layer_sizes = classifier_hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.refine_learning_rate = refine_learning_rate
        self.warm_start = warm_start
        self.validation_fraction = validation_fraction
        self.adjoint = adjoint
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the flow from P to Q.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of both samples stacked (see :func:`skqflow.stack`), or the
            rows of P alone when ``y`` is None.
        y : array-like of shape (n_samples,), default=None
            Two distinct domain labels: rows with ``classes_[0]`` are P, rows
            with ``classes_[1]`` are Q. ``None`` fits P = X against the
            ``reference`` distribution.

        Returns
        -------
        self : OTFlowTransformer
            The fitted transformer.
        """
        warm = self.warm_start and hasattr(self, "field_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=not warm)
        sizes = _check_layers(self.hidden_layer_sizes, "hidden_layer_sizes")
        clf_sizes = _check_layers(self.classifier_hidden_layer_sizes, "classifier_hidden_layer_sizes")
        rng = check_random_state(self.random_state)
        if y is None:
            self.classes_ = None
            X_p = X
            X_q = sample_reference(self.reference, len(X), X.shape[1], rng)
        else:
            self.classes_, X_p, X_q = split_domains(X, y)
        device = resolve_device(self.device)
        if not warm:
            self.device_ = str(device)
            self._dtype = TORCH_DTYPES[self.dtype]
            pooled = np.concatenate([X_p, X_q]).astype(np.float64)
            self._shift = pooled.mean(0)
            self._scale = float(np.sqrt(pooled.var(0).mean())) or 1.0
        device = runtime_device(self.device_) if warm else device
        if warm:
            self._field()

        start = time.perf_counter()
        with torch_seed(rng, device) as gen:
            zp_all, zq_all = self._to_tensor(X_p, device), self._to_tensor(X_q, device)
            # The held-out rows only monitor the refinement: the initial flow
            # learns from every row.
            (zp, vp), (zq, vq) = self._holdout(zp_all, gen), self._holdout(zq_all, gen)
            report, close = make_reporter(
                self.verbose,
                {"initial flow": self.init_epochs, "refine": self.refine_epochs,
                 "classifier": self.classifier_epochs},
            )
            diverged = None
            try:
                if not warm:
                    self.history_, self.n_iter_ = [], 0
                    self.field_ = VelocityField(X.shape[1], sizes, self.activation).to(device, self._dtype)
                    losses = fit_flow_matching(
                        self.field_, zp_all, zq_all, coupling=self.init, n_epochs=self.init_epochs,
                        batch_size=self.batch_size, lr=self.learning_rate_init, generator=gen,
                        report=report,
                    )
                    self.history_ += [
                        {"phase": "initial flow", "epoch": i + 1, "loss": v} for i, v in enumerate(losses)
                    ]
                if self.max_iter > 0:
                    if not (warm and hasattr(self, "classifiers_")):
                        self.classifiers_ = [
                            MLP(X.shape[1], clf_sizes, self.activation).to(device, self._dtype)
                            for _ in range(2)
                        ]
                    records = refine(
                        self.field_, self.classifiers_, zp, zq, self._refine_config(), gen,
                        monitor=self._monitor(vp, vq, start) if len(vp) and len(vq) else None,
                        report=report,
                    )
                    self.history_ += [{"phase": "refinement", **r} for r in records]
                    self.n_iter_ += self.max_iter
            except TrainingDiverged as exc:
                diverged = exc
            finally:
                close()
        if diverged is not None:
            warnings.warn(
                f"Training diverged ({diverged}); the weights of the last finite epoch "
                "were restored. Try a smaller learning rate or gamma.",
                ConvergenceWarning,
            )
        self.transport_cost_ = float(np.mean(self._kinetic(X_p)))
        self.inversion_error_ = float(
            0.5 * (self._round_trip_error(X_p, 0.0) + self._round_trip_error(X_q, 1.0))
        )
        if not np.isfinite(self.transport_cost_):
            warnings.warn("The fitted flow produces non-finite values.", ConvergenceWarning)
        return self

    def _refine_config(self) -> RefineConfig:
        return RefineConfig(
            gamma=self.gamma, n_rounds=self.max_iter, epochs=self.refine_epochs,
            classifier_epochs=self.classifier_epochs, inner_epochs=self.classifier_inner_epochs,
            batch_size=self.batch_size, classifier_batch_size=self.classifier_batch_size,
            lr_flow=self.refine_learning_rate, lr_classifier=self.learning_rate_init,
            n_time_steps=self.n_time_steps, n_substeps=self.n_substeps,
        )

    def _holdout(self, z, gen):
        n_val = int(self.validation_fraction * len(z)) if self.max_iter > 0 else 0
        if n_val < 2 or len(z) - n_val < 2:
            return z, z[:0]
        perm = torch.randperm(len(z), generator=gen).to(z.device)
        return z[perm[n_val:]], z[perm[:n_val]]

    def _monitor(self, vp, vq, start):
        """Held-out loss of Algorithm 1 (both directions), with diagnostics.

        ``criterion = KL(P->Q) + KL(Q->P) + gamma * (cost(P->Q) + cost(Q->P))``
        on the held-out rows, each KL term the Donsker-Varadhan lower bound
        given by the current classifier (never negative, so a classifier
        that memorised its training rows cannot make a state look better than
        it is); also the symmetric energy distance of the push-forwards.
        """
        n_steps = self._steps()
        grid = uniform_grid(0.0, 1.0, n_steps, like=vp)
        r1, r0 = self.classifiers_

        def monitor():
            with torch.no_grad():
                fwd, cost_f = integrate(self.field_, vp, grid, kinetic=True)
                bwd, cost_b = integrate(self.field_, vq, grid.flip(0), kinetic=True)
                kl = float(kl_lower_bound(r1(fwd[-1]), r1(vq)) + kl_lower_bound(r0(bwd[-1]), r0(vp)))
                cost = float(cost_f.mean() + cost_b.mean())
                ed = float(energy_distance(fwd[-1], vq) + energy_distance(bwd[-1], vp))
            return {
                "criterion": kl + self.gamma * cost, "heldout_kl": kl,
                "energy_distance": ed, "transport_cost": 0.5 * cost,
                "time": time.perf_counter() - start,
            }

        return monitor

    # ------------------------------------------------------------ helpers
    def _to_tensor(self, X, device=None):
        device = device or runtime_device(self.device_)
        Z = (np.asarray(X, dtype=np.float64) - self._shift) / self._scale
        return torch.as_tensor(Z, dtype=self._dtype, device=device)

    def _from_tensor(self, Z, dtype):
        return (Z.detach().cpu().double().numpy() * self._scale + self._shift).astype(dtype, copy=False)

    def _field(self):
        return self.field_.to(runtime_device(self.device_))

    def _steps(self) -> int:
        return self.n_time_steps * self.n_substeps

    def _flow(self, X, times, start):
        """States at each of ``times`` (1-D array) starting at ``start``; shape (T, n, d)."""
        field = self._field()
        Z = self._to_tensor(X)
        out = torch.empty((len(times), *Z.shape), dtype=Z.dtype)
        times_t = torch.as_tensor(np.asarray(times, dtype=np.float64))
        for side in (times_t >= start, times_t < start):
            if bool(side.any()):
                with torch.no_grad():
                    out[side] = torch.cat(
                        [integrate_to(field, zb, start, times_t[side], self._steps()).cpu()
                         for zb in Z.split(_CHUNK)],
                        dim=1,
                    )
        return out

    def _push(self, X, start, stop):
        X = self._check_X(X)
        return self._from_tensor(push(self._field(), self._to_tensor(X), start, stop, self._steps()), X.dtype)

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _round_trip_error(self, X, start):
        stop = 1.0 - start
        field, n = self._field(), self._steps()
        Z = self._to_tensor(X)
        back = push(field, push(field, Z, start, stop, n), stop, start, n)
        return float(((back - Z).pow(2).sum(1).mean()) * self._scale**2)

    def _kinetic(self, X):
        Z = self._to_tensor(X)
        grid = uniform_grid(0.0, 1.0, self._steps(), like=Z)
        field = self._field()
        with torch.no_grad():
            energy = torch.cat([integrate(field, zb, grid, kinetic=True)[1] for zb in Z.split(_CHUNK)])
        return energy.cpu().double().numpy() * self._scale**2

    # ------------------------------------------------------------ public
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
        X = self._check_X(X)
        times = np.asarray(t, dtype=np.float64)
        if times.ndim > 1 or times.size == 0:
            raise ValueError(f"t must be a scalar or a non-empty 1-D array; got shape {times.shape}")
        for name, v in (("t", times), ("start", np.asarray(start, dtype=np.float64))):
            if not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
                raise ValueError(f"{name} must lie in [0, 1]; got {v}")
        states = self._flow(X, np.atleast_1d(times), float(start))
        out = self._from_tensor(states, X.dtype)
        out[np.atleast_1d(times) == start] = X  # T_s^s is the identity, exactly
        return _wrap_data_with_container("transform", out[0], X_in, self) if times.ndim == 0 else out

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
        return float(np.mean(self._kinetic(self._check_X(X))))

    def score(self, X, y=None):
        """Minus the symmetric held-out energy distance of the two push-forwards.

        ``-(D(T(X_P), X_Q) + D(T^{-1}(X_Q), X_P))`` with ``D`` the energy
        distance: label-free (domain labels only), higher is better, and
        independent of ``gamma``, so it can select ``gamma`` in
        :class:`~sklearn.model_selection.GridSearchCV`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stacked rows of both domains, or rows of P when fitted without
            ``y``.
        y : array-like of shape (n_samples,), default=None
            Domain labels (the ``classes_`` of ``fit``); ``None`` compares
            with fresh samples of the reference.

        Returns
        -------
        score : float
        """
        X = self._check_X(X)
        if y is None or self.classes_ is None:
            X_p = X
            # a fixed draw, so that the score of the same rows is always the same
            X_q = sample_reference(self.reference, len(X), X.shape[1], np.random.RandomState(0))
        else:
            classes, X_p, X_q = split_domains(X, y, min_rows=1)
            if not np.array_equal(classes, self.classes_):
                raise ValueError(f"y holds labels {classes.tolist()}, fit saw {self.classes_.tolist()}")
        field, n = self._field(), self._steps()
        zp, zq = self._to_tensor(X_p), self._to_tensor(X_q)
        with torch.no_grad():
            d = energy_distance(push(field, zp, 0.0, 1.0, n), zq) + energy_distance(
                push(field, zq, 1.0, 0.0, n), zp
            )
        return -float(d) * self._scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        tags.non_deterministic = False
        # y, when given, holds exactly two domain labels: declare it binary so
        # that generic checks pass two labels.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags


def _check_layers(sizes, name):
    sizes = tuple(int(s) for s in np.atleast_1d(sizes))
    if not sizes or min(sizes) < 1:
        raise ValueError(f"{name} must hold positive integers; got {sizes}")
    return sizes
