"""``adjoint=True`` trains the refinement through torchdiffeq's adjoint method."""

import numpy as np
import torchdiffeq

from skqflow import stack
from skqflow.datasets import make_gaussian_pair

from .conftest import count_calls, tiny_flow


def test_adjoint_is_used_and_agrees_with_backprop(monkeypatch):
    X, y = stack(*make_gaussian_pair(2, random_state=0).sample(300, random_state=1))
    calls = count_calls(monkeypatch, torchdiffeq, "odeint_adjoint")
    params = dict(max_iter=1, refine_epochs=2, validation_fraction=0.0, dtype="float64")
    plain = tiny_flow(**params).fit(X, y)
    assert calls["n"] == 0
    adjoint = tiny_flow(**params, adjoint=True).fit(X, y)
    assert calls["n"] > 0  # one call per refinement batch
    # the same gradients up to the adjoint's solver error: the same training
    losses = [[h["loss"] for h in f.history_ if h["phase"] == "refinement"] for f in (plain, adjoint)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    np.testing.assert_allclose(adjoint.transform(X[:20]), plain.transform(X[:20]), rtol=1e-4, atol=1e-6)
