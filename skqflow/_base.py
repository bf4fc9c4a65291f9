"""Plumbing shared by the estimators: labels, devices, tensors, seeding,
references and progress. The torch internals live in :mod:`skqflow._torch`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import sys

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "split_domains",
    "resolve_device",
    "torch_seed",
    "StandardNormal",
    "sample_reference",
    "make_reporter",
    "TorchStateMixin",
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
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D domain labels, got an array of shape {y.shape}")
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity; it must hold two domain labels")
    classes = np.unique(y)
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


def resolve_device(device: str) -> torch.device:
    """Map ``"auto"``/``"cpu"``/``"cuda"`` to a torch device (CUDA when present for auto)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def runtime_device(fitted: str) -> torch.device:
    """Device for prediction: the fitted one if it exists here, else the CPU."""
    if fitted.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(fitted)


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
    (``{"initial flow": 30, "refine": 15}`` covers ``"refine P->Q round 2"``).
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
    """Pickle torch modules on the CPU so a model fitted on a GPU loads anywhere."""

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        for key, value in state.items():
            if isinstance(value, torch.nn.Module):
                state[key] = copy.deepcopy(value).cpu()
        return state
