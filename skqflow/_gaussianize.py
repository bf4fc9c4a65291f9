"""Per-coordinate Gaussianisation (normal scores) and Gaussian mutual information.

Numpy and scipy only. The fitted state is plain arrays, so estimators that
hold it save and load like any other fitted attribute.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, ndtri

__all__ = ["fit_normal_scores", "normal_scores", "gaussian_mi", "logdet_bias", "whitener"]


def fit_normal_scores(A: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Knots of the smoothed empirical CDF of every column of ``A``.

    For each column: its distinct values and, at each, the CDF level
    ``(mean rank of the tied rows - 0.5) / n``, in ``(0, 1)``. Tied rows share
    one level (their mean rank), so ties map to one value.
    """
    n = len(A)
    values, levels = [], []
    for col in np.asarray(A, dtype=np.float64).T:
        v, counts = np.unique(col, return_counts=True)
        # the tied rows of value v_j hold ranks start_j + 1 .. start_j + count_j
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        mean_rank = start + 0.5 * (counts + 1)
        values.append(v)
        levels.append((mean_rank - 0.5) / n)
    return values, levels


def normal_scores(A: np.ndarray, values: list[np.ndarray], levels: list[np.ndarray]) -> np.ndarray:
    """``Phi^-1`` of the piecewise-linear CDF fitted by :func:`fit_normal_scores`.

    Between knots the CDF is interpolated linearly; rows outside the range
    of the fitted column get the level of the nearest end (the most extreme
    training rows' scores, about ``+-Phi^-1(1 - 0.5 / n)``), so new rows in
    heavy tails cannot produce extreme scores.
    """
    A = np.asarray(A, dtype=np.float64)
    out = np.empty_like(A)
    for j, (v, lv) in enumerate(zip(values, levels)):
        out[:, j] = ndtri(np.interp(A[:, j], v, lv)) if len(v) > 1 else 0.0
    return out


def logdet_bias(k: int, n: int) -> float:
    """``E log det S - log det Sigma`` for the sample covariance ``S`` of ``n`` Gaussian rows in ``k`` dimensions.

    ``(n - 1) S`` is Wishart with ``n - 1`` degrees of freedom, so the bias is
    ``k log(2 / (n - 1)) + sum_{i=1}^{k} psi((n - i) / 2)`` (exact for
    Gaussian rows; about ``-k (k + 1) / (2 n)``).
    """
    if k == 0 or n - k < 1:
        return 0.0
    i = np.arange(1, k + 1)
    return float(k * np.log(2.0 / (n - 1)) + digamma(0.5 * (n - i)).sum())


def _logdet(M: np.ndarray) -> float:
    sign, ld = np.linalg.slogdet(M)
    return float(ld) if sign > 0 else -np.inf


def gaussian_mi(R: np.ndarray, n_x: int, n_rows: int | None = None) -> float:
    """MI of a Gaussian with correlation ``R`` between its first ``n_x`` and other coordinates.

    ``0.5 (log det R_xx + log det R_yy - log det R)``; with ``n_rows`` each
    log-determinant is first corrected by :func:`logdet_bias` (the plug-in's
    upward bias, about ``d_x d_y / (2 n)``, is removed).
    """
    d = len(R)
    terms = [_logdet(R[:n_x, :n_x]), _logdet(R[n_x:, n_x:]), _logdet(R)]
    if n_rows is not None:
        terms = [t - logdet_bias(k, n_rows) for t, k in zip(terms, (n_x, d - n_x, d))]
    return 0.5 * (terms[0] + terms[1] - terms[2])


def whitener(R: np.ndarray) -> tuple[np.ndarray, float]:
    """``(W, log det R)`` with ``W = L^-1`` for the Cholesky factor ``R = L L^T``.

    ``z W^T`` is standard normal when ``z ~ N(0, R)``, and the Gaussian log
    density is ``-0.5 |z W^T|^2 - 0.5 log det R - (d/2) log 2 pi``.
    """
    L = np.linalg.cholesky(R)
    W = np.linalg.solve(L, np.eye(len(R)))
    return W, 2.0 * float(np.log(np.diag(L)).sum())
