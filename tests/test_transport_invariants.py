"""OTFlowTransformer invariants that hold for any fitted flow: inversion, interpolation end
points, continuity and composition, row independence."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 40), st.just(2)),
    elements=st.floats(-4, 4, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=25, deadline=None)
@given(X=rows)
def test_inverse_recovers_input(fitted_small, X):
    back = fitted_small.inverse_transform(fitted_small.transform(X))
    scale = np.linalg.norm(X, axis=1) + 1.0
    assert np.all(np.linalg.norm(back - X, axis=1) / scale < 1e-4)
    fwd = fitted_small.transform(fitted_small.inverse_transform(X))
    assert np.all(np.linalg.norm(fwd - X, axis=1) / scale < 1e-4)


@settings(max_examples=25, deadline=None)
@given(X=rows, t=st.floats(0, 1))
def test_interpolate_end_points(fitted_small, X, t):
    # (interpolate(X, 0) == X holds by construction; a tiny t is integrated for real)
    scale = np.linalg.norm(X, axis=1, keepdims=True) + 1.0
    np.testing.assert_allclose(fitted_small.interpolate(X, 1e-9) / scale, X / scale, atol=1e-6)
    np.testing.assert_allclose(fitted_small.interpolate(X, 1.0), fitted_small.transform(X), atol=1e-6)
    np.testing.assert_allclose(
        fitted_small.interpolate(X, 0.0, start=1.0), fitted_small.inverse_transform(X), atol=1e-6
    )
    np.testing.assert_allclose(
        fitted_small.interpolate(X, 1.0 - 1e-9, start=1e-9) / scale, fitted_small.transform(X) / scale,
        atol=1e-5,
    )
    path = fitted_small.interpolate(X, [1e-9, t, 1.0])
    assert path.shape == (3, *X.shape)
    np.testing.assert_allclose(path[0] / scale, X / scale, atol=1e-6)
    np.testing.assert_allclose(path[2], fitted_small.transform(X), atol=1e-6)
    np.testing.assert_allclose(path[1], fitted_small.interpolate(X, t), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(X=rows, t=st.floats(0, 1), start=st.sampled_from([0.0, 1.0]))
def test_interpolate_is_continuous_in_t(fitted_small, X, t, start):
    """A small change of t (across grid points too) makes a small change of the state."""
    scale = np.linalg.norm(X, axis=1, keepdims=True) + 1.0
    t2 = min(t + 1e-6, 1.0) if t < 0.5 else t - 1e-6
    for a, b in [(t, t2), (0.25, 0.25 - 1e-6), (0.5, 0.5 + 1e-6), (start, abs(start - 1e-6))]:
        xa, xb = fitted_small.interpolate(X, [a, b], start=start)
        assert np.all(np.linalg.norm(xa - xb, axis=1, keepdims=True) / scale < 1e-5), (a, b)


@settings(max_examples=20, deadline=None)
@given(X=rows, s=st.floats(0, 1), t=st.floats(0, 1))
def test_interpolate_composes(fitted_small, X, s, t):
    """T_s^t(T_0^s(X)) = T_0^t(X), up to the solver error of different step sequences."""
    scale = np.linalg.norm(X, axis=1, keepdims=True) + 1.0
    mid = fitted_small.interpolate(X, s)
    np.testing.assert_allclose(
        fitted_small.interpolate(mid, t, start=s) / scale, fitted_small.interpolate(X, t) / scale, atol=1e-4
    )


@settings(max_examples=15, deadline=None)
@given(X=rows, data=st.data())
def test_rows_do_not_depend_on_batch(fitted_small, X, data):
    perm = data.draw(st.permutations(range(len(X))))
    perm = np.asarray(perm, dtype=int)
    T = fitted_small.transform(X)
    np.testing.assert_allclose(fitted_small.transform(X[perm]), T[perm], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted_small.transform(X[:1]), T[:1], rtol=1e-5, atol=1e-6)


def test_interpolation_is_a_flow(fitted_small, gaussian_2d):
    """T_s^t composes: going 0 -> 0.3 -> 1 equals going 0 -> 1."""
    _, X_p, _ = gaussian_2d
    mid = fitted_small.interpolate(X_p[:50], 0.3)
    np.testing.assert_allclose(
        fitted_small.interpolate(mid, 1.0, start=0.3), fitted_small.transform(X_p[:50]), atol=1e-3
    )


def test_interpolate_rejects_bad_times(fitted_small, gaussian_2d):
    import pytest

    _, X_p, _ = gaussian_2d
    for bad in (-0.1, 1.5, np.nan, [[0.1]]):
        with pytest.raises(ValueError, match="t must"):
            fitted_small.interpolate(X_p[:3], bad)
    with pytest.raises(ValueError, match="start must"):
        fitted_small.interpolate(X_p[:3], 0.5, start=2.0)


def test_torch_global_rng_untouched(gaussian_2d):
    from skqflow import stack

    from .conftest import tiny_flow

    _, X_p, X_q = gaussian_2d
    before = torch.get_rng_state().clone()
    tiny_flow().fit(*stack(X_p, X_q))
    assert torch.equal(before, torch.get_rng_state())


def test_monge_gap_of_the_flow_is_that_of_its_map_in_original_units(fitted_small, gaussian_2d):
    from skqflow._torch.losses import monge_gap

    _, X_p, _ = gaussian_2d
    X = X_p[:150]
    expected = float(monge_gap(torch.as_tensor(X), torch.as_tensor(fitted_small.transform(X))))
    assert fitted_small.monge_gap(X) == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert fitted_small.monge_gap(X) >= 0
