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
        The rows of both samples, interleaved: each sample keeps its own row
        order, and the rows of P and Q alternate in proportion to the sample
        sizes, so that every block of consecutive rows holds both domains.
        Splitters that cut the rows into consecutive folds (scikit-learn's
        default ``KFold`` in ``cross_val_score`` and ``GridSearchCV``) then
        give folds with rows of P and of Q.
    y : ndarray of shape (n_p + n_q,)
        ``0`` for rows of P, ``1`` for rows of Q.

    Examples
    --------
    >>> import numpy as np
    >>> from skqflow import stack
    >>> X, y = stack(np.zeros((4, 1)), np.ones((2, 1)))
    >>> y.tolist()
    [0, 1, 0, 0, 1, 0]
    """
    X_p, X_q = np.asarray(X_p), np.asarray(X_q)
    if X_p.ndim != 2 or X_q.ndim != 2 or X_p.shape[1] != X_q.shape[1]:
        raise ValueError(
            f"X_p and X_q must be 2-D with the same number of columns; got {X_p.shape} and {X_q.shape}"
        )
    # position of each row in [0, 1): the middle of its share of its own sample
    position = np.concatenate([(np.arange(len(X_p)) + 0.5) / max(len(X_p), 1),
                               (np.arange(len(X_q)) + 0.5) / max(len(X_q), 1)])
    order = np.argsort(position, kind="stable")  # ties: the row of P first
    X = np.concatenate([X_p, X_q])[order]
    y = np.concatenate([np.zeros(len(X_p), dtype=int), np.ones(len(X_q), dtype=int)])[order]
    return X, y
