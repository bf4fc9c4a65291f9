"""Small torch modules: the time-conditioned velocity field and plain MLPs.

Nothing here imports scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "ConcatSquashLinear", "VelocityField", "MLP", "make_activation"]


def _softplus() -> nn.Module:
    return nn.Softplus(beta=20.0)


# Smooth activations only: the flow map must be smooth for the ODE to be
# well posed and invertible, which is why ReLU is not offered.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "softplus": _softplus,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (a key of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


class ConcatSquashLinear(nn.Module):
    """Linear layer gated and shifted by time: ``(W h + b) * sigmoid(a t + c) + e t``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.gate = nn.Linear(1, n_out)
        self.shift = nn.Linear(1, n_out, bias=False)

    def forward(self, h: Tensor, t: Tensor) -> Tensor:
        return self.linear(h) * torch.sigmoid(self.gate(t)) + self.shift(t)


class VelocityField(nn.Module):
    """Time-conditioned MLP ``f(x, t)`` built from :class:`ConcatSquashLinear` layers.

    Parameters
    ----------
    n_features : int
        Dimension of the state ``x``.
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers.
    activation : str
        Key of :data:`ACTIVATIONS`.
    """

    def __init__(
        self, n_features: int, hidden_layer_sizes: Sequence[int], activation: str
    ) -> None:
        super().__init__()
        # constructor arguments, so skqflow.save can rebuild the module without pickle
        self.init_args = {"n_features": int(n_features),
                          "hidden_layer_sizes": [int(s) for s in hidden_layer_sizes],
                          "activation": str(activation)}
        sizes = [n_features, *hidden_layer_sizes, n_features]
        self.layers = nn.ModuleList(
            ConcatSquashLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.acts = nn.ModuleList(make_activation(activation) for _ in sizes[2:])

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        # One time for all rows (ODE integration) is computed once and broadcast;
        # one time per row (flow matching) is a column.
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1)
        h = x
        for layer, act in zip(self.layers[:-1], self.acts):
            h = act(layer(h, t))
        return self.layers[-1](h, t)


class MLP(nn.Module):
    """Plain MLP (classifiers and the ratio net): a scalar output, or ``n_outputs`` of them.

    Parameters
    ----------
    n_inputs : int
        Input width (``d`` for a classifier, ``d + 1`` for a net on ``[x, t]``).
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers.
    activation : str
        Key of :data:`ACTIVATIONS`.
    n_outputs : int, default=1
        Output width; with 1 the output is squeezed to shape (n,).
    """

    def __init__(
        self, n_inputs: int, hidden_layer_sizes: Sequence[int], activation: str, n_outputs: int = 1
    ) -> None:
        super().__init__()
        self.init_args = {"n_inputs": int(n_inputs),
                          "hidden_layer_sizes": [int(s) for s in hidden_layer_sizes],
                          "activation": str(activation), "n_outputs": int(n_outputs)}
        sizes = [n_inputs, *hidden_layer_sizes]
        mods: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(a, b), make_activation(activation)]
        mods.append(nn.Linear(sizes[-1], n_outputs))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out.squeeze(-1) if out.shape[-1] == 1 else out
