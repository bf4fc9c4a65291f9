"""Plumbing shared by the estimators: labels, devices, tensors, seeding,
references and progress. The torch internals live in :mod:`skqflow._torch`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "TORCH_DTYPES",
    "Standardiser",
    "StandardNormal",
    "TorchStateMixin",
    "atomic_fit",
    "check_domain_labels",
    "check_layers",
    "check_time",
    "check_scale",
    "make_reporter",
    "resolve_device",
    "runtime_device",
    "sample_reference",
    "split_domains",
    "split_sample_weight",
    "torch_seed",
    "torch_threads",
    "with_torch_threads",
    "warn_non_finite",
]

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def split_domains(X, y, *, min_rows: int = 2):
    """Return ``classes, X_p, X_q`` from stacked rows and two domain labels.

    Raises
    ------
    ValueError
        If ``y`` does not hold exactly two distinct labels, its length
        differs from ``X``'s, or a domain has fewer than ``min_rows`` rows.
    """
    y = check_domain_labels(y, len(X))
    classes = np.unique(y)
    if len(classes) == 1:
        raise ValueError(
            f"y holds one domain label ({classes.tolist()[0]!r}); rows of both domains are needed. In "
            "cross-validation this is a fold with one domain: stack the samples with "
            "skqflow.stack (it interleaves them, so consecutive folds hold both) or pass a "
            "splitter that keeps both, e.g. cv=StratifiedKFold(5, shuffle=True)"
        )
    if len(classes) != 2:
        raise ValueError(
            "y must contain exactly two distinct domain labels (the first is P, "
            f"the second Q); got {len(classes)}: {classes[:10].tolist()}"
        )
    X_p, X_q = X[y == classes[0]], X[y == classes[1]]
    for label, part in ((classes[0], X_p), (classes[1], X_q)):
        if len(part) < min_rows:
            raise ValueError(
                f"domain {label!r} has {len(part)} row(s); at least {min_rows} rows "
                "of each domain are needed"
            )
    return classes, X_p, X_q


def split_sample_weight(sample_weight: np.ndarray, y, classes) -> tuple[np.ndarray, np.ndarray]:
    """The weights of the rows of P and of Q, split by the labels ``y`` as :func:`split_domains` splits ``X``."""
    y = check_domain_labels(y, len(sample_weight))
    return sample_weight[y == classes[0]], sample_weight[y == classes[1]]


def check_domain_labels(y, n_rows: int) -> np.ndarray:
    """``y`` as 1-D domain labels of ``n_rows`` rows, or a ValueError that says what is wrong."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D domain labels (one label per row of X); got an array of shape {y.shape}"
        )
    if len(y) != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {len(y)} labels")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity; it must hold two domain labels")
    return y


def check_layers(sizes, name: str) -> tuple[int, ...]:
    """Hidden-layer widths as a tuple of positive ints, or a ValueError naming ``name``."""
    sizes = tuple(int(s) for s in np.atleast_1d(sizes))
    if not sizes or min(sizes) < 1:
        raise ValueError(f"{name} must hold positive integers; got {sizes}")
    return sizes


def check_time(value, name: str) -> float:
    """A scalar time in [0, 1], or a ValueError naming the argument."""
    arr = np.asarray(value, dtype=object)
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)) or arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar time in [0, 1]; got {value!r}")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a scalar time in [0, 1]; got {value!r}") from None
    if not (np.isfinite(t) and 0.0 <= t <= 1.0):
        raise ValueError(f"{name} must be a scalar time in [0, 1]; got {t}")
    return t


def resolve_device(device) -> torch.device:
    """The torch device for ``device``: ``"auto"`` (CUDA when present, else the CPU),
    or anything :class:`torch.device` accepts (``"cpu"``, ``"cuda:1"``,
    ``"mps"``, a ``torch.device``).

    Raises
    ------
    ValueError
        If torch does not know the device or it is not available here.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    if not _available(dev):
        raise ValueError(
            f"device={str(dev)!r} was requested but is not available on this machine; use 'auto' or 'cpu'"
        )
    return dev


def _available(dev: torch.device) -> bool:
    if dev.type == "cpu":
        return True
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index is None or dev.index < torch.cuda.device_count())
    if dev.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())
    module = getattr(torch, dev.type, None)  # e.g. torch.xpu
    return bool(module is not None and hasattr(module, "is_available") and module.is_available())


def runtime_device(fitted) -> torch.device:
    """Device for prediction: the fitted one if it exists here, else the CPU."""
    dev = torch.device(fitted)
    return dev if _available(dev) else torch.device("cpu")


@dataclass(frozen=True)
class Standardiser:
    """Centre and divide by one pooled scale: the coordinates the networks see.

    Parameters
    ----------
    shift : ndarray of shape (n_features,)
        Subtracted from every row.
    scale : float
        Divides every centred value (one scale for all features keeps optimal
        transport maps optimal).
    dtype : torch.dtype
        Precision of the tensors.
    device : torch.device
        Where the tensors live.
    """

    shift: np.ndarray
    scale: float
    dtype: torch.dtype
    device: torch.device

    def to_tensor(self, X) -> torch.Tensor:
        """Standardised tensor of the rows ``X``."""
        Z = np.asarray(X, dtype=np.float64) - self.shift  # a new array: safe to scale in place
        Z /= self.scale
        return torch.as_tensor(Z, dtype=self.dtype, device=self.device)

    def from_tensor(self, Z: torch.Tensor, dtype) -> np.ndarray:
        """Rows in the original units (any leading shape), as an array of ``dtype``."""
        out = Z.detach().cpu().to(torch.float64).numpy()
        if Z.dtype == torch.float64 and Z.device.type == "cpu":  # shares Z's memory: copy first
            out = out.copy()
        out *= self.scale
        out += self.shift
        return out.astype(dtype, copy=False)


def check_scale(X: np.ndarray, compute_dtype: torch.dtype) -> None:
    """Refuse data whose squared distances would overflow the computation's dtype.

    Raises
    ------
    ValueError
        If ``max |X|`` exceeds the square root of the largest number of
        ``compute_dtype`` (about 1.8e19 for float32, 1.3e154 for float64).
    """
    limit = float(np.sqrt(torch.finfo(compute_dtype).max))
    with np.errstate(over="ignore", invalid="ignore"):
        largest = float(np.max(np.abs(X))) if X.size else 0.0
    if not largest <= limit:
        name = str(compute_dtype).replace("torch.", "")
        raise ValueError(
            f"X holds values up to {largest:.3g}; with dtype {name} the values must stay below "
            f"{limit:.3g} in absolute value, or squared distances overflow. Rescale X"
            + (" or use dtype='float64'." if compute_dtype == torch.float32 else ".")
        )


def warn_non_finite(values: np.ndarray, what: str) -> np.ndarray:
    """Warn (RuntimeWarning) when ``values`` computed from finite input are NaN or infinite."""
    bad = ~np.isfinite(values)
    if bad.any():
        warnings.warn(
            f"{what} is NaN or infinite for {int(bad.sum())} of {bad.size} values although the "
            "input is finite: the fitted model is numerically unstable there (check for a "
            "ConvergenceWarning at fit, or inputs far outside the training data)",
            RuntimeWarning,
            stacklevel=3,
        )
    return values


def atomic_fit(fit):
    """Make ``fit`` all or nothing: on any exception, Ctrl-C included, the
    estimator's attributes are put back exactly as they were before the call.

    ``fit`` must not modify objects it found on the estimator in place (a
    warm start trains copies of the fitted modules and assigns them at the end).
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        before = dict(vars(self))
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    return wrapper


@contextlib.contextmanager
def torch_seed(random_state, device: torch.device):
    """Seed torch inside a fork of its global RNG, so the caller's state is untouched.

    Yields a CPU ``torch.Generator`` seeded from ``random_state`` for batch draws.
    """
    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def _denormals_flushed() -> bool:
    """Whether the CPU flushes subnormal floats to zero (probed: torch has no getter)."""
    tiny = torch.tensor([1e-300], dtype=torch.float64)
    return bool(((tiny * 1e-10) == 0).item())


@contextlib.contextmanager
def flushed_denormals():
    """Run the block with subnormal floats flushed to zero on the CPU, then restore the setting.

    The softplus activations of every network produce ``exp`` of large
    negative numbers, whose subnormal results are slow on x86 CPUs: flushing
    them makes an activation up to six times faster (docs/benchmarks.md) and
    changes values only below 1e-38 (float32). Where the CPU cannot flush,
    nothing changes.
    """
    before = _denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch intra-op threads, then restore torch's setting.

    ``None`` leaves torch's setting as it is. Either way, subnormal floats are
    flushed to zero inside the block (:func:`flushed_denormals`).
    """
    with flushed_denormals():
        if n_threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(int(n_threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)


def with_torch_threads(threads_of):
    """Decorate a method to run under :func:`torch_threads` with ``threads_of(self)`` threads."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with torch_threads(threads_of(self)):
                return method(self, *args, **kwargs)

        return wrapper

    return decorate


class StandardNormal:
    """The default reference distribution N(0, I_d).

    Parameters
    ----------
    n_features : int
        Dimension ``d``.
    """

    def __init__(self, n_features: int):
        self.n_features = n_features

    def sample(self, n_samples: int, random_state=None) -> np.ndarray:
        """Draw ``n_samples`` rows."""
        return check_random_state(random_state).standard_normal((n_samples, self.n_features))

    def score_samples(self, X) -> np.ndarray:
        """Log density of each row."""
        X = np.asarray(X, dtype=float)
        return -0.5 * (X**2).sum(1) - 0.5 * X.shape[1] * np.log(2 * np.pi)


def reference_is_seeded(reference) -> bool:
    """Whether ``reference.sample`` takes a ``random_state`` (None, the default, does)."""
    if reference is None:
        return True
    try:
        return "random_state" in inspect.signature(reference.sample).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def sample_reference(reference, n_samples: int, n_features: int, random_state) -> np.ndarray:
    """Draw rows from ``reference`` (None means standard normal) and check their shape."""
    ref = StandardNormal(n_features) if reference is None else reference
    if not hasattr(ref, "sample"):
        raise TypeError(
            f"reference must have a sample(n_samples) method; got {type(ref).__name__}"
        )
    _check_reference_fitted(ref)
    if reference_is_seeded(ref):
        out = ref.sample(n_samples, random_state=random_state)
    else:
        out = ref.sample(n_samples)
    if isinstance(out, tuple):  # e.g. GaussianMixture.sample returns (X, labels)
        out = out[0]
    out = np.asarray(out, dtype=float)
    if out.ndim != 2 or out.shape[1] != n_features:
        raise ValueError(
            f"reference samples have shape {out.shape}; expected (n, {n_features}) to match X"
        )
    return out


def _check_reference_fitted(ref) -> None:
    """A reference that is an unfitted estimator was most likely cloned: say so."""
    if isinstance(ref, BaseEstimator) and not isinstance(ref, FrozenEstimator):
        try:
            check_is_fitted(ref)
        except NotFittedError:
            raise ValueError(
                f"the reference {type(ref).__name__} is not fitted. scikit-learn's clone "
                "(used by GridSearchCV, cross_val_score and InfinitesimalDensityRatio) "
                "replaces a fitted estimator by an unfitted copy: wrap the fitted reference "
                "in sklearn.frozen.FrozenEstimator(reference)."
            ) from None


def make_reporter(verbose: int, totals: dict[str, int]):
    """A ``report(phase, epoch, metrics)`` callback showing one progress bar per phase.

    ``totals`` maps the first word(s) of a phase name to its number of epochs
    (``{"initial flow": 30, "refinement": 15}`` covers ``"refinement P->Q round 2"``).
    A new phase name closes the current bar and opens the next; the bar shows
    the live float metrics. Returns ``(report, close)``; with ``verbose=0``
    ``report`` is None and nothing is ever written.
    """
    if not verbose:
        return None, (lambda: None)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # plain lines on stderr
        tqdm = None
    state = {"phase": None, "bar": None}

    def close():
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None

    def report(phase, epoch, metrics):
        shown = {k: f"{v:.4g}" for k, v in metrics.items() if isinstance(v, float)}
        if tqdm is None:
            text = ", ".join(f"{k}={v}" for k, v in shown.items())
            sys.stderr.write(f"[skqflow] {phase} epoch {epoch + 1}: {text}\n")
            return
        if phase != state["phase"]:
            close()
            total = next((n for key, n in totals.items() if phase.startswith(key)), None)
            state["phase"] = phase
            state["bar"] = tqdm(total=total, desc=phase, unit="epoch", file=sys.stderr, dynamic_ncols=True)
        state["bar"].set_postfix(shown, refresh=False)
        state["bar"].update(1)

    return report, close


class TorchStateMixin:
    """Pickle torch modules on the CPU so a model fitted on a GPU loads anywhere.

    Modules held directly or inside lists, tuples and dicts (``classifiers_``)
    are copied to the CPU; the estimator itself is left as it is.
    """

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        return {key: _on_cpu(value) for key, value in dict(state).items()}


def _on_cpu(value):
    if isinstance(value, (torch.nn.Module, torch.Tensor)):
        return copy.deepcopy(value).cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    return value
