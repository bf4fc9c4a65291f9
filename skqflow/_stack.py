"""The stacked ``(X, y)`` form of two samples."""

import numpy as np

__all__ = ["stack"]


def stack(X_p, X_q):
    """Stack two samples into the ``(X, y)`` form the estimators take.

    Parameters
    ----------
    X_p : array-like of shape (n_p, n_features)
        Rows of P (the start of the flow).
    X_q : array-like of shape (n_q, n_features)
        Rows of Q (the end of the flow).

    Returns
    -------
    X : ndarray of shape (n_p + n_q, n_features)
        The rows of P followed by the rows of Q.
    y : ndarray of shape (n_p + n_q,)
        ``0`` for rows of P, ``1`` for rows of Q.
    """
    X_p, X_q = np.asarray(X_p), np.asarray(X_q)
    if X_p.ndim != 2 or X_q.ndim != 2 or X_p.shape[1] != X_q.shape[1]:
        raise ValueError(
            f"X_p and X_q must be 2-D with the same number of columns; got {X_p.shape} and {X_q.shape}"
        )
    X = np.concatenate([X_p, X_q])
    y = np.concatenate([np.zeros(len(X_p), dtype=int), np.ones(len(X_q), dtype=int)])
    return X, y
