"""The label-free score's optimality part: the antisymmetric share of the map's Jacobian,
checked against linear flows whose maps are known in closed form (``x -> expm(M) x``)."""

import copy

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from skqflow import stack
from skqflow._torch.criteria import antisymmetric_share, fit_and_optimality
from skqflow._torch.flowmap import FlowMap

from .conftest import tiny_flow


class LinearField(torch.nn.Module):
    """``f(x, t) = M x``: its flow map over [0, 1] is ``expm(M)``."""

    def __init__(self, M):
        super().__init__()
        self.M = torch.nn.Parameter(torch.as_tensor(M, dtype=torch.float64))

    def forward(self, x, t):
        return x @ self.M.to(x.dtype).T


def _exact_share(M):
    J = expm(M)
    return np.linalg.norm(J - J.T) / (2 * np.linalg.norm(J))


def _rows(n, d, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=(n, d)))


@pytest.mark.parametrize("d", [2, 5])
def test_share_matches_the_closed_form_of_linear_maps(d):
    rng = np.random.default_rng(d)
    B = rng.normal(size=(d, d))
    sym, skew = 0.3 * (B + B.T), 0.4 * (B - B.T)
    z = _rows(4000, d)
    for M in (sym, sym + skew, skew):
        fmap = FlowMap(LinearField(M), 40)
        exact = _exact_share(M)
        share = float(antisymmetric_share(fmap, z, 0.0, 1.0))
        assert share == pytest.approx(exact, rel=0.05, abs=1e-9)
        # the inverse map has Jacobian expm(-M): symmetric exactly when expm(M) is
        back = float(antisymmetric_share(fmap, z, 1.0, 0.0))
        assert back == pytest.approx(_exact_share(-M), rel=0.05, abs=1e-9)
    # a gradient map (symmetric Jacobian) reads zero, to rounding
    assert float(antisymmetric_share(FlowMap(LinearField(sym), 40), z, 0.0, 1.0)) < 1e-6


def test_share_is_zero_in_one_dimension():
    fmap = FlowMap(LinearField([[0.7]]), 20)
    assert float(antisymmetric_share(fmap, _rows(50, 1), 0.0, 1.0)) < 1e-12


def test_share_sees_a_rotation_on_few_rows():
    # The discrete Monge gap needs dense rows to see that a rotation is not optimal; the
    # share sees it on 20 (two probe pairs a row: a noisier estimate, still clearly positive).
    from skqflow._torch.losses import monge_gap

    theta = 0.3
    fmap = FlowMap(LinearField([[0.0, -theta], [theta, 0.0]]), 40)
    z = _rows(20, 2)
    share = float(antisymmetric_share(fmap, z, 0.0, 1.0))
    assert share == pytest.approx(np.sin(theta), rel=0.25)  # expm is the rotation by theta
    assert float(monge_gap(z, fmap.push(z))) == 0.0


def test_share_weights_rows():
    # Rows of weight zero do not count: a field that is a rotation on one half-plane
    # and a stretch on the other reads the rotation's share with the stretch's rows weighted out.
    class Piecewise(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, t):
            rot = torch.stack([-0.5 * x[:, 1], 0.5 * x[:, 0]], 1)
            return torch.where(x[:, :1] > 0, rot, 0.3 * x) + 0 * self.w

    z = _rows(3000, 2)
    z = z[(z[:, 0].abs() > 0.5)]  # rows that stay on their side of the plane along the flow
    right = (z[:, 0] > 0).double()
    fmap = FlowMap(Piecewise(), 40)
    weighted = float(antisymmetric_share(fmap, z, 0.0, 1.0, right))
    alone = float(antisymmetric_share(fmap, z[right > 0], 0.0, 1.0))
    assert weighted == pytest.approx(alone, rel=0.15)
    assert weighted == pytest.approx(np.sin(0.5), rel=0.1)
    assert float(antisymmetric_share(fmap, z, 0.0, 1.0, 1.0 - right)) < 1e-6


@pytest.fixture(scope="module")
def same_law_flows():
    """P = Q = N(0, I) in 2-D: the identity is the OT map; a rotation pushes P to Q as well."""
    rng = np.random.default_rng(0)
    X_p, X_q = rng.normal(size=(800, 2)), rng.normal(size=(800, 2))
    X, y = stack(X_p, X_q)
    fitted = tiny_flow(init_steps=5).fit(X, y)
    flows = {}
    for name, M in {"identity": np.zeros((2, 2)), "rotation": [[0.0, -0.5], [0.5, 0.0]]}.items():
        flow = copy.deepcopy(fitted)
        flow.field_ = LinearField(M).to(next(fitted.field_.parameters()).dtype)
        flows[name] = flow
    X_t, Y_t = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2))
    return flows, X_t, Y_t


def test_score_prefers_the_optimal_map_to_a_rotation_with_the_same_push_forward(same_law_flows):
    flows, X_t, Y_t = same_law_flows
    X, y = stack(X_t, Y_t)
    assert flows["identity"].map_asymmetry(X_t) < 1e-6
    assert flows["rotation"].map_asymmetry(X_t) == pytest.approx(np.sin(0.5), rel=0.05)
    # both push P onto Q (the energy distances sit at their sampling floor), so only the
    # optimality part tells them apart: by the two squared shares, sin(0.5)² each, in units of X
    gap = flows["identity"].score(X, y) - flows["rotation"].score(X, y)
    scale = flows["identity"].scale_
    assert gap == pytest.approx(2 * np.sin(0.5) ** 2 * scale, abs=0.02 * scale)


def test_score_is_minus_the_sum_of_its_parts_in_units_of_x(same_law_flows):
    from skqflow._transport import torch_view

    flows, X_t, Y_t = same_law_flows
    flow = flows["rotation"]
    fmap, scaler = torch_view(flow)
    terms = fit_and_optimality(fmap, scaler.to_tensor(X_t), scaler.to_tensor(Y_t))
    assert terms["energy_distance"] > 0 and terms["asymmetry_squared"] > 0
    expected = -(terms["energy_distance"] + terms["asymmetry_squared"]) * flow.scale_
    assert flow.score(*stack(X_t, Y_t)) == pytest.approx(expected, rel=1e-5)  # float32 sums in another order
    # the same value, whatever the units of the data
    scaled = copy.deepcopy(flow)
    scaled.shift_, scaled.scale_ = flow.shift_ * 10, flow.scale_ * 10
    assert scaled.score(*stack(10 * X_t, 10 * Y_t)) == pytest.approx(10 * flow.score(*stack(X_t, Y_t)), rel=1e-5)
