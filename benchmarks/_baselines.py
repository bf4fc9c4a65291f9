"""Baseline estimators and shared plumbing for the skqflow benchmarks.

Not part of the package: the benchmark scripts in this folder import it as
``_baselines`` (they put this folder on ``sys.path``).

Estimators
----------
:func:`ksg_mutual_info`
    Kraskov-Stoegbauer-Grassberger k-nearest-neighbour MI estimator
    (algorithm 1) for multivariate ``X`` and ``Y``.
:func:`gaussian_mutual_info`
    Gaussian plug-in MI from the sample covariance (canonical correlations).
:func:`ulsif_log_ratio`
    uLSIF kernel density-ratio estimate (Kanamori, Hido & Sugiyama 2009).
:func:`telescoping_log_ratio`
    The flow-free ratio baselines built on skqflow's own time-score net:
    ``waymarks="linear"`` (TRE-style telescoping over the interpolant
    ``sqrt(1 - a^2) x0 + a x1``) and ``waymarks="none"`` (one classifier,
    the "1 ratio" baseline).

Direction convention everywhere: a *log-ratio* is ``log q(x) - log p(x)``
with P the first sample (``X_p``, the denominator) and Q the second
(``X_q``, the numerator), as in ``skqflow.InfinitesimalDensityRatio``.

Plumbing
--------
:func:`machine_info`, :func:`jsonable`, :func:`parse_param`,
:func:`save_json`, :func:`save_text`, :func:`filter_params`: the pieces every
benchmark script repeats (machine description, JSON output, ``--param``
parsing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
from scipy.special import digamma

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # a checkout without skqflow installed
    sys.path.insert(0, _ROOT)

__all__ = [
    "ksg_mutual_info",
    "gaussian_mutual_info",
    "ulsif_log_ratio",
    "telescoping_log_ratio",
    "epochs_for_time",
    "machine_info",
    "jsonable",
    "parse_param",
    "save_json",
    "save_text",
    "filter_params",
    "make_skqflow_estimator",
    "QUICK_FLOW_PARAMS",
    "QUICK_RATIO_PARAMS",
]


def _as_2d(A, name, copy=False):
    A = np.array(A, dtype=np.float64, copy=True) if copy else np.asarray(A, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {A.shape}")
    return A


# ------------------------------------------------------------------- KSG
def ksg_mutual_info(X, Y, k=3, *, jitter=0.0, random_state=None, algorithm="auto", chunk_size=256):
    """KSG estimate (Kraskov et al. 2004, algorithm 1) of I(X; Y) in nats.

    ``I = psi(k) + psi(n) - mean_i [psi(n_x(i) + 1) + psi(n_y(i) + 1)]``
    where ``eps_i`` is the distance from row ``i`` to its ``k``-th nearest
    neighbour in the joint space under the max-norm
    ``max(||x - x'||_inf, ||y - y'||_inf)``, and ``n_x(i)`` (``n_y(i)``) is the
    number of other rows strictly closer than ``eps_i`` to row ``i`` in the
    ``X`` (``Y``) space, also under the max-norm.

    Parameters
    ----------
    X : array-like of shape (n, d_x) or (n,)
    Y : array-like of shape (n, d_y) or (n,)
    k : int, default=3
        Number of neighbours.
    jitter : float, default=0.0
        If positive, add ``jitter * std_j * N(0, 1)`` noise to every column
        ``j`` (its standard deviation, 1 for constant columns) before
        estimating: breaks ties in discrete or duplicated data, which the
        estimator assumes away. ``1e-10`` (the value scikit-learn's
        ``mutual_info_regression`` uses) is enough for exact duplicates.
    random_state : int, RandomState or None
        Seed of the jitter.
    algorithm : {"auto", "kdtree", "brute"}
        ``"kdtree"``: scipy ``cKDTree`` queries (fast for a joint dimension
        up to ~15). ``"brute"``: exact max-norm distances in row chunks with
        ``scipy.spatial.distance.cdist`` (``O(n^2 d)`` time, ``O(chunk n)``
        memory; about 40 s at n=20000, d=160 on one core). ``"auto"`` picks
        the tree for ``d_x + d_y <= 15``.
    chunk_size : int, default=256
        Rows per chunk of the brute-force path.

    Returns
    -------
    mi : float
        The estimate, not clipped (it can be slightly negative when the true
        MI is near zero; scikit-learn clips at 0).
    """
    from sklearn.utils import check_random_state

    X, Y = _as_2d(X, "X", copy=jitter > 0), _as_2d(Y, "Y", copy=jitter > 0)
    n = len(X)
    if len(Y) != n:
        raise ValueError(f"X and Y must have the same number of rows; got {n} and {len(Y)}")
    k = int(k)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n - 1]; got k={k}, n={n}")
    if jitter > 0:
        rng = check_random_state(random_state)
        for A in (X, Y):
            std = A.std(0)
            std[std == 0] = 1.0
            A += jitter * std * rng.standard_normal(A.shape)  # X, Y are copies here
    if algorithm == "auto":
        algorithm = "kdtree" if X.shape[1] + Y.shape[1] <= 15 else "brute"

    if algorithm == "kdtree":
        from scipy.spatial import cKDTree

        XY = np.hstack([X, Y])
        dist, _ = cKDTree(XY).query(XY, k=k + 1, p=np.inf)  # column 0 is the row itself
        eps = dist[:, -1]
        # Strictly closer than eps: radius just below eps (max-norm distances
        # are exact, no rounding), minus the row itself.
        radius = np.nextafter(eps, 0)
        nx = cKDTree(X).query_ball_point(X, radius, p=np.inf, return_length=True) - 1
        ny = cKDTree(Y).query_ball_point(Y, radius, p=np.inf, return_length=True) - 1
        nx = np.where(eps > 0, nx, 0)
        ny = np.where(eps > 0, ny, 0)
    elif algorithm == "brute":
        from scipy.spatial.distance import cdist

        eps, nx, ny = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            rows = np.arange(stop - start)
            Dx = cdist(X[start:stop], X, "chebyshev")
            Dy = cdist(Y[start:stop], Y, "chebyshev")
            Dx[rows, rows + start] = np.inf  # exclude the row itself
            Dy[rows, rows + start] = np.inf
            e = np.partition(np.maximum(Dx, Dy), k - 1, axis=1)[:, k - 1]
            eps[start:stop] = e
            nx[start:stop] = (Dx < e[:, None]).sum(1)
            ny[start:stop] = (Dy < e[:, None]).sum(1)
    else:
        raise ValueError(f"algorithm must be 'auto', 'kdtree' or 'brute'; got {algorithm!r}")
    if np.any(eps == 0):
        warnings.warn(
            f"{int(np.sum(eps == 0))} rows have {k} or more exact duplicates; the KSG "
            "estimate is biased by ties. Use jitter=1e-10.",
            RuntimeWarning,
            stacklevel=2,
        )
    return float(digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1)))


# ----------------------------------------------------------- Gaussian / CCA
def gaussian_mutual_info(X, Y):
    """Gaussian plug-in estimate of I(X; Y) in nats.

    The MI of a Gaussian with the sample covariance ``S`` of ``[X, Y]``:
    ``-0.5 * log(det S / (det S_xx det S_yy)) = -0.5 * sum_i log(1 - rho_i^2)``
    with ``rho_i`` the sample canonical correlations. Computed with
    ``slogdet`` (stable at d=160). Exact for jointly Gaussian data up to
    sampling error; for other data it is the MI of the Gaussian with the
    same covariance, which can be far from the true MI either way (after
    elementwise warps of a Gaussian pair it is biased low).
    """
    X, Y = _as_2d(X, "X"), _as_2d(Y, "Y")
    if len(X) != len(Y):
        raise ValueError(f"X and Y must have the same number of rows; got {len(X)} and {len(Y)}")
    dx = X.shape[1]
    S = np.cov(np.hstack([X, Y]), rowvar=False)
    S = np.atleast_2d(S)
    logdets = []
    for M in (S, S[:dx, :dx], S[dx:, dx:]):
        sign, logdet = np.linalg.slogdet(M)
        if sign <= 0:
            raise np.linalg.LinAlgError("singular sample covariance: more rows than columns needed")
        logdets.append(logdet)
    return float(-0.5 * (logdets[0] - logdets[1] - logdets[2]))


# ------------------------------------------------------------------ uLSIF
def _sq_dists(A, B):
    d = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(d, 0.0)


def ulsif_log_ratio(
    X_p,
    X_q,
    X_eval,
    *,
    n_centers=200,
    sigma_factors=(1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0),
    lambdas=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0),
    min_ratio=1e-6,
    random_state=None,
    return_params=False,
):
    """uLSIF estimate of ``log q(x) - log p(x)`` (Kanamori, Hido & Sugiyama 2009).

    uLSIF fits ``r(x) = q(x) / p(x)`` as ``sum_l alpha_l K(x, c_l)`` with
    Gaussian kernels ``K(x, c) = exp(-||x - c||^2 / (2 sigma^2))`` at up to
    ``n_centers`` centres drawn from the *numerator* sample ``X_q``, by
    minimising the squared error ``0.5 E_P[r^2] - E_Q[r] + 0.5 lambda
    ||alpha||^2``: with ``H = mean_P phi phi^T`` and ``h = mean_Q phi``,
    ``alpha = max(0, (H + lambda I)^{-1} h)``. So the *denominator* sample
    is ``X_p`` and the numerator ``X_q``.

    ``sigma`` (``sigma_factors`` times the median pairwise distance of a
    pooled subsample) and ``lambda`` are chosen by the closed-form
    leave-one-out cross-validation of the paper: the ``i``-th rows of
    ``X_p`` and ``X_q`` (``i < min(n_p, n_q)``) are held out together, the
    held-out ``alpha`` follows from ``alpha`` by a Sherman-Morrison update,
    and the score is ``mean 0.5 r_{-i}(x_i^p)^2 - r_{-i}(x_i^q)``.

    Clipping: ``r`` is a non-negative kernel sum that is exactly 0 (or
    underflows) where no centre with a positive weight is near, i.e. in
    regions where Q has few rows; its log is then ``-inf``. The returned log
    is ``log(max(r, min_ratio))``, so no value is below ``log(min_ratio)``
    (``-13.8`` for the default ``1e-6``); ``return_params=True`` reports how
    many evaluation rows were clipped.

    Parameters
    ----------
    X_p : array-like of shape (n_p, d)
        Denominator sample (P).
    X_q : array-like of shape (n_q, d)
        Numerator sample (Q); the kernel centres are drawn from it.
    X_eval : array-like of shape (m, d)
        Rows where the log-ratio is returned.
    n_centers : int, default=200
    sigma_factors : sequence of float
        Kernel widths, as multiples of the median pairwise distance.
    lambdas : sequence of float
        Ridge penalties.
    min_ratio : float, default=1e-6
        Floor of ``r`` before the log.
    random_state : int, RandomState or None
        Seed of the centre draw and of the subsample for the median.
    return_params : bool, default=False
        Also return a dict with the chosen ``sigma``, ``lambda``, the CV
        score, the number of centres and of clipped rows.

    Returns
    -------
    log_ratio : ndarray of shape (m,)
    params : dict, only if ``return_params``.
    """
    from scipy.linalg import cho_factor, cho_solve
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    X_p, X_q, X_eval = _as_2d(X_p, "X_p"), _as_2d(X_q, "X_q"), _as_2d(X_eval, "X_eval")
    n_p, n_q = len(X_p), len(X_q)
    b = min(int(n_centers), n_q)
    C = X_q[rng.choice(n_q, b, replace=False)]

    pooled = np.concatenate([X_p, X_q])
    sub = pooled[rng.choice(len(pooled), min(1000, len(pooled)), replace=False)]
    D = np.sqrt(_sq_dists(sub, sub))
    med = float(np.median(D[np.triu_indices(len(sub), 1)])) or 1.0

    Dp, Dq = _sq_dists(C, X_p), _sq_dists(C, X_q)  # (b, n_p), (b, n_q)
    n = min(n_p, n_q)  # rows held out in pairs for the LOO score
    eye = np.eye(b)
    best = (np.inf, None, None)
    for factor in sigma_factors:
        sigma = factor * med
        Kp = np.exp(-Dp / (2 * sigma**2))  # phi(x^p) as columns
        Kq = np.exp(-Dq / (2 * sigma**2))
        H = Kp @ Kp.T / n_p
        h = Kq.mean(1)
        Kp_n, Kq_n = Kp[:, :n], Kq[:, :n]
        for lam in lambdas:
            # Removing the pair (x_i^p, x_i^q):  H_{-i} + lam I
            #   = n_p/(n_p-1) (B - phi_i phi_i^T / n_p),  B = H + lam (n_p-1)/n_p I,
            # and h_{-i} = (n_q h - psi_i)/(n_q-1); Sherman-Morrison gives alpha_{-i}.
            B = cho_factor(H + lam * (n_p - 1) / n_p * eye)
            Bh = cho_solve(B, h)  # (b,)
            BKp = cho_solve(B, Kp_n)  # (b, n)
            denom = n_p - np.sum(Kp_n * BKp, 0)  # n_p - phi_i^T B^-1 phi_i > 0
            B0 = Bh[:, None] + BKp * ((h @ BKp) / denom)[None, :]
            B1 = cho_solve(B, Kq_n) + BKp * (np.sum(Kq_n * BKp, 0) / denom)[None, :]
            A = np.maximum(0.0, (n_p - 1) / (n_p * (n_q - 1)) * (n_q * B0 - B1))  # alpha_{-i} columns
            r_p = np.sum(Kp_n * A, 0)
            r_q = np.sum(Kq_n * A, 0)
            score = float(np.mean(0.5 * r_p**2 - r_q))
            if score < best[0]:
                best = (score, sigma, lam)

    score, sigma, lam = best
    Kp = np.exp(-Dp / (2 * sigma**2))
    H = Kp @ Kp.T / n_p
    h = np.exp(-Dq / (2 * sigma**2)).mean(1)
    alpha = np.maximum(0.0, cho_solve(cho_factor(H + lam * eye), h))
    r = np.exp(-_sq_dists(X_eval, C) / (2 * sigma**2)) @ alpha
    out = np.log(np.maximum(r, min_ratio))
    if return_params:
        return out, {
            "sigma": sigma,
            "sigma_factor": sigma / med,
            "median_distance": med,
            "lambda": float(lam),
            "loo_score": score,
            "n_centers": b,
            "n_clipped": int(np.sum(r < min_ratio)),
            "min_ratio": min_ratio,
        }
    return out


# ------------------------------------------------- telescoping ratio nets
def telescoping_log_ratio(
    X_p,
    X_q,
    X_eval,
    *,
    n_intervals=10,
    waymarks="linear",
    hidden_layer_sizes=(256, 256, 256),
    activation="softplus",
    n_epochs=50,
    batch_size=256,
    lr=1e-3,
    weight_decay=0.0,
    quadrature="gauss",
    validation_fraction=0.0,
    random_state=None,
    on_epoch=None,
):
    """Flow-free ratio estimate of ``log q(x) - log p(x)`` with skqflow's time-score net.

    The net ``r(x, t)`` (:class:`skqflow._torch.ratio.TimeScoreNet`) is
    trained by :func:`skqflow._torch.ratio.fit_time_score` on a chain of
    snapshots from P (``t = 0``) to Q (``t = 1``), exactly as skqflow trains
    it on the snapshots of its flow; only the snapshots differ.

    ``waymarks="linear"`` (TRE-style, Rhodes et al. 2020): ``L =
    n_intervals`` intervals, snapshots ``x_k = sqrt(1 - a_k^2) x0 + a_k x1``
    with ``a_k = k / L`` at times ``t_k = k / L``; ``x0`` runs over the rows
    of P and ``x1`` over the rows of Q in a random pairing (independent
    couples, drawn once), so snapshot 0 is P and snapshot L is Q (when the
    sizes differ, the smaller sample is cycled to the larger size and some
    of its rows appear twice). Row ``i`` of every snapshot belongs to the
    same couple, which ``fit_time_score`` keeps together in its batches
    (equal-size snapshots share one permutation) and which the held-out
    split keeps together too, as skqflow does with the rows of its flow.
    ``waymarks="none"``: the "1 ratio" baseline, two snapshots P and Q at
    times 0 and 1 (``n_intervals`` is ignored): a single classifier.

    Inputs are standardised first with the pooled mean and one scalar
    standard deviation (``sqrt`` of the mean per-column variance of P and Q
    stacked), as skqflow does; a common affine map leaves log-ratios
    unchanged (its Jacobian cancels). Subnormal floats are flushed to zero
    during the fit, as skqflow's estimators do (without it the softplus
    activations slow down as training goes on, and a time budget calibrated
    on the first epochs overshoots several times).

    Parameters
    ----------
    X_p, X_q : array-like of shape (n_p, d), (n_q, d)
        Samples of P (denominator) and Q (numerator).
    X_eval : array-like of shape (m, d)
    n_intervals : int, default=10
    waymarks : {"linear", "none"}
    hidden_layer_sizes, activation : the ratio net
    n_epochs, batch_size, lr, weight_decay : its training (Adam, cosine decay)
    quadrature : {"gauss", "simpson"}
        Rule for the integral of ``r`` over each interval.
    validation_fraction : float, default=0.0
        Share of the rows of every snapshot held out; the weights of the
        epoch with the smallest held-out loss are kept (0: the last epoch).
        The defaults of these training parameters are those of
        ``skqflow.InfinitesimalDensityRatio``, so that the baselines differ
        from skqflow only in their snapshots.
    random_state : int, RandomState or None
    on_epoch : callable or None
        Passed to ``fit_time_score``: called after every epoch with the
        epoch index and that epoch's record.

    Returns
    -------
    log_ratio : ndarray of shape (m,), float64
    fit_time : float
        Wall-clock seconds of the snapshot construction and the training
        (not of the evaluation at ``X_eval``).
    """
    import torch
    from sklearn.utils import check_random_state

    from skqflow._base import flushed_denormals
    from skqflow._torch.ratio import TimeScoreNet, fit_time_score, log_ratio

    if waymarks not in ("linear", "none"):
        raise ValueError(f"waymarks must be 'linear' or 'none'; got {waymarks!r}")
    rng = check_random_state(random_state)
    X_p, X_q, X_eval = _as_2d(X_p, "X_p"), _as_2d(X_q, "X_q"), _as_2d(X_eval, "X_eval")
    seed = int(rng.randint(0, 2**31 - 1))

    start = time.perf_counter()
    pooled = np.concatenate([X_p, X_q])
    shift = pooled.mean(0)
    scale = float(np.sqrt(pooled.var(0).mean())) or 1.0
    Zp, Zq = (X_p - shift) / scale, (X_q - shift) / scale
    if waymarks == "none":
        snaps, alphas = [Zp, Zq], np.array([0.0, 1.0])
    else:
        L = int(n_intervals)
        if L < 1:
            raise ValueError(f"n_intervals must be >= 1; got {n_intervals}")
        m = max(len(Zp), len(Zq))

        def cycled(n_rows):
            reps = -(-m // n_rows)
            return np.concatenate([rng.permutation(n_rows) for _ in range(reps)])[:m]

        x0, x1 = Zp[cycled(len(Zp))], Zq[cycled(len(Zq))]
        alphas = np.arange(L + 1) / L
        snaps = [x0] + [np.sqrt(1 - a**2) * x0 + a * x1 for a in alphas[1:-1]] + [x1]

    # subnormals flushed as in skqflow's estimators: the same net at the same speed
    with torch.random.fork_rng(devices=[]), flushed_denormals():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        snapshots = [torch.as_tensor(s, dtype=torch.float32) for s in snaps]
        times = torch.as_tensor(alphas, dtype=torch.float32)
        train, held = snapshots, None
        n_val = [int(validation_fraction * len(s)) for s in snapshots]
        if validation_fraction > 0 and all(
            v >= 2 and len(s) - v >= 2 for v, s in zip(n_val, snapshots, strict=True)
        ):
            # one permutation per size: paired rows stay paired (as in skqflow)
            by_size = {m: torch.randperm(m, generator=gen) for m in sorted({len(s) for s in snapshots})}
            perms = [by_size[len(s)] for s in snapshots]
            train = [s[p[v:]] for s, p, v in zip(snapshots, perms, n_val, strict=True)]
            held = [s[p[:v]] for s, p, v in zip(snapshots, perms, n_val, strict=True)]
        net = TimeScoreNet(X_p.shape[1], tuple(hidden_layer_sizes), activation)
        fit_time_score(
            net,
            train,
            times,
            n_epochs=int(n_epochs),
            batch_size=int(batch_size),
            learning_rate_init=float(lr),  # fit_time_score's name since issue 13
            generator=gen,
            quadrature=quadrature,
            weight_decay=float(weight_decay),
            validation=held,
            on_epoch=on_epoch,
        )
        fit_time = time.perf_counter() - start
        net.eval()
        z = torch.as_tensor((X_eval - shift) / scale, dtype=torch.float32)
        out = log_ratio(net, z, times, quadrature).double().numpy()
    return out, fit_time


def epochs_for_time(X_p, X_q, target_seconds, *, n_calibration_epochs=3, **kwargs):
    """Epochs of :func:`telescoping_log_ratio` that make its fit last ``target_seconds``.

    Runs ``n_calibration_epochs`` (>= 2) epochs with the same ``kwargs`` on
    the same data, timing the set-up (standardisation, snapshots, net) apart
    from the epochs: ``t_setup`` = time to the end of the first epoch minus
    the mean time of the later epochs ``t_epoch``. Returns
    ``max(1, round((target_seconds - t_setup) / t_epoch))`` and a dict with
    the measurements (its ``total_s`` is the calibration's own cost).
    """
    n_cal = max(2, int(n_calibration_epochs))
    stamps = []
    start = time.perf_counter()
    kwargs = {
        **kwargs,
        "n_epochs": n_cal,
        "on_epoch": lambda epoch, record: stamps.append(time.perf_counter()),
    }
    telescoping_log_ratio(X_p, X_q, X_p[:1], **kwargs)
    t_epoch = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    t_setup = max(0.0, (stamps[0] - start) - t_epoch)
    n = max(1, int(round((target_seconds - t_setup) / max(t_epoch, 1e-9))))
    return n, {
        "epoch_s": t_epoch,
        "setup_s": t_setup,
        "total_s": time.perf_counter() - start,
        "calibration_epochs": n_cal,
        "target_s": target_seconds,
        "n_epochs": n,
    }


def refinement_task(d, n, shift, eig_range=(0.5, 2.0)):
    """The Gaussian pair of the refinement diagnostics and benchmarks, with its rows.

    ``make_gaussian_pair(d, shift=shift, eig_range=eig_range, random_state=0)``,
    ``n`` training rows a side (seed 1) and 1000 test rows a side (seed 2);
    returns ``(pair, X_p, X_q, X_t, Y_t)``. A wider ``eig_range`` makes the
    flow of independent pairs farther from the OT map (see
    :func:`rectified_gaussian_map`).
    """
    from skqflow.datasets import make_gaussian_pair

    pair = make_gaussian_pair(d, shift=shift, eig_range=tuple(eig_range), random_state=0)
    X_p, X_q = pair.sample(n, random_state=1)
    X_t, Y_t = pair.sample(1000, random_state=2)
    return pair, X_p, X_q, X_t, Y_t


def gaussian_plug_in_map(X_p, X_q):
    """The closed-form Gaussian (Bures) OT map between the samples' means and covariances, as a callable."""
    from scipy.linalg import sqrtm

    m_p, m_q = X_p.mean(0), X_q.mean(0)
    S_p, S_q = np.cov(X_p.T), np.cov(X_q.T)
    root = np.real(sqrtm(S_p))
    inv_root = np.linalg.inv(root)
    A = inv_root @ np.real(sqrtm(root @ S_q @ root)) @ inv_root
    return lambda X: m_q + (X - m_p) @ A.T


def relative_map_error(T_hat, T, X):
    """``mean ||T_hat(x) - T(x)|| / ||T(x) - x||`` over the rows ``X`` (``T_hat``, ``T``: their images)."""
    return float(np.mean(np.linalg.norm(T_hat - T, axis=1) / np.linalg.norm(T - X, axis=1)))


# ------------------------------------------------------------- plumbing
def machine_info(extra_modules=()):
    """Platform, CPU count, library versions and the date, for the JSON output."""
    import scipy
    import sklearn

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    try:
        import torch

        info.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            cuda_available=torch.cuda.is_available(),
        )
    except ImportError:
        info["torch"] = None
    try:
        import skqflow

        info["skqflow"] = getattr(skqflow, "__version__", "?")
    except ImportError:
        info["skqflow"] = None
    for name in extra_modules:
        try:
            info[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - optional modules
            info[name] = None
    return info


def jsonable(value):
    """``value`` with numpy scalars and arrays turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)  # nan / inf are not JSON
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def parse_param(text):
    """``key=value`` with a JSON value (bare strings allowed), for ``--param``."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param expects key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # bare strings, e.g. device=cpu
    return key.strip(), value


def save_json(path, payload):
    """Write ``payload`` atomically (temporary file, then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(jsonable(payload), fh, indent=2)
    os.replace(tmp, path)


def save_text(path, text):
    """Write the printed table next to the JSON."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text.rstrip("\n") + "\n")


def filter_params(estimator, params):
    """Split ``params`` into those ``estimator.get_params()`` knows and the rest.

    Used for the built-in ``--quick`` settings, which name parameters the
    estimator under test may not have; parameters given with ``--param`` are
    passed as they are (an unknown one is an error, reported in the table).
    """
    known = estimator.get_params(deep=True)
    return (
        {k: v for k, v in params.items() if k in known},
        {k: v for k, v in params.items() if k not in known},
    )


# Tiny training for ``--quick`` smoke tests; only the names the installed
# estimators know are used (see ``filter_params``).
QUICK_FLOW_PARAMS = {
    "init_steps": 20,
    "max_iter": 1,
    "refine_epochs": 1,
    "classifier_epochs": 1,
    "classifier_inner_epochs": 1,
    "hidden_layer_sizes": (32, 32),
    "classifier_hidden_layer_sizes": (32, 32),
}
QUICK_RATIO_PARAMS = {"n_epochs": 2, "hidden_layer_sizes": (32, 32)}


def make_skqflow_estimator(cls, *, random_state, params=(), flow_params=(), quick=False, reference=None):
    """``cls(random_state=...)`` configured for a benchmark run.

    ``params`` (``--param``) go to ``cls`` and ``flow_params``
    (``--flow-param``) to an ``OTFlowTransformer`` passed as ``flow=`` (built
    only when there are flow parameters, ``quick`` or a ``reference``); both
    are passed as given, so an unknown name is an error. With ``quick`` the
    :data:`QUICK_RATIO_PARAMS` and :data:`QUICK_FLOW_PARAMS` the estimators
    know are applied first. Returns the estimator and the list of quick
    parameter names that were dropped.
    """
    from skqflow import OTFlowTransformer

    est = cls(random_state=random_state)
    dropped = []
    quick_ratio, drop = filter_params(est, QUICK_RATIO_PARAMS if quick else {})
    dropped += drop
    flow_kw = {}
    if quick:
        flow_kw, drop = filter_params(OTFlowTransformer(), QUICK_FLOW_PARAMS)
        dropped += [f"flow__{k}" for k in drop]
    flow_kw.update(dict(flow_params))
    if reference is not None:
        flow_kw["reference"] = reference
    settings = {**quick_ratio, **dict(params)}
    if flow_kw:
        settings["flow"] = OTFlowTransformer(**flow_kw)
    est.set_params(**settings)
    return est, dropped


def rectified_gaussian_map(pair, n_steps=2000):
    """The exact map of flow matching on independent pairs between two Gaussians, as a matrix.

    With ``x_t = (1 - t) x0 + t x1`` for independent ``x0 ~ N(m0, S0)`` and
    ``x1 ~ N(m1, S1)``, the marginal velocity is affine,
    ``v(x, t) = m1 - m0 + (t S1 - (1 - t) S0) S_t^{-1} (x - m_t)`` with
    ``S_t = (1 - t)^2 S0 + t^2 S1``, so the flow's map is
    ``x -> m1 + M (x - m0)`` with ``dM/dt = (t S1 - (1 - t) S0) S_t^{-1} M``,
    ``M(0) = I`` (integrated here by the midpoint rule). It is the OT map
    only when ``S0`` and ``S1`` commute: what ``init="linear"`` converges to
    with unlimited data and training, the start that the refinement
    (Algorithm 1) has to shorten.
    """
    s0, s1 = np.asarray(pair.cov_p, float), np.asarray(pair.cov_q, float)

    def rate(t, m):
        return (t * s1 - (1 - t) * s0) @ np.linalg.solve((1 - t) ** 2 * s0 + t**2 * s1, m)

    m, h = np.eye(len(s0)), 1.0 / n_steps
    for k in range(n_steps):
        t = k * h
        m = m + h * rate(t + h / 2, m + h / 2 * rate(t, m))
    return m
