"""The Gaussian copula's pointwise mutual information and a learned correction to it.

Rows ``z = [u, v]`` are normal scores (each coordinate standard normal).
With ``R`` their correlation, the Gaussian copula gives the pointwise mutual
information in closed form,

    pmi_G(z) = log N(z; 0, R) - log N(u; 0, R_u) - log N(v; 0, R_v),

and a net ``g`` learns what it misses: a classifier of joint rows against
product rows (``v`` shuffled across rows, fresh shuffles every epoch) with
the logit ``pmi_G(z) + g(z)``. At the optimum the logit is
``log p(u, v) / (p(u) p(v))``, so ``g`` is the non-Gaussian part of the
pointwise mutual information; it is 0 when the copula is Gaussian, where the
net only has to learn nothing.

Nothing here imports scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .losses import logistic_loss, logistic_terms
from .ratio import paired_standard_error
from .train import Phase, cosine_schedule, run_with_selection

__all__ = ["GaussianCopula", "fit_copula_correction", "predict_correction", "select_correction_epoch"]

#: Paired standard errors by which a trained epoch must beat the untrained net.
SIGNIFICANCE = 2.0


def select_correction_epoch(epoch_terms) -> int:
    """The earliest epoch within one standard error of the best, if the best beats epoch 0 significantly.

    ``epoch_terms[i]`` holds the per-row held-out loss terms of candidate
    ``i`` (candidate 0 is the untrained net, ``g = 0``). Unless the best
    candidate's held-out loss is below that of candidate 0 by more than
    :data:`SIGNIFICANCE` standard errors of the paired difference (same
    held-out rows), the correction stays 0: a net that has not learnt
    anything the held-out rows confirm contributes nothing. Otherwise the
    earliest trained epoch whose loss is within one paired standard error of
    the best is kept (the one-standard-error rule, towards the less trained
    net: measured on the Student-t task, the epoch of smallest loss
    overestimates the correction more).
    """
    losses = [float(sum(t.mean() for t in terms)) for terms in epoch_terms]
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    if not finite:
        return 0
    best = min(finite, key=lambda i: losses[i])

    def paired_se(i):
        return paired_standard_error(epoch_terms[best], epoch_terms[i])

    if not losses[0] - losses[best] > SIGNIFICANCE * paired_se(0):
        return 0
    return min(i for i in finite if i > 0 and losses[i] <= losses[best] + paired_se(i))


class GaussianCopula:
    """The closed-form part: whitening of the three blocks (joint, ``u``, ``v``).

    Parameters
    ----------
    whiteners : dict of Tensor
        ``"joint"``, ``"x"``, ``"y"``: ``L^-1`` of the block's correlation
        (Cholesky ``R_b = L L^T``).
    logdets : dict of float
        ``log det R_b`` of each block.
    n_x : int
        Columns of ``u``.
    """

    def __init__(self, whiteners: dict[str, Tensor], logdets: dict[str, float], n_x: int) -> None:
        self.whiteners, self.logdets, self.n_x = whiteners, logdets, n_x

    def _blocks(self, z: Tensor):
        return {"joint": z, "x": z[:, : self.n_x], "y": z[:, self.n_x :]}

    def pmi(self, z: Tensor) -> Tensor:
        """``pmi_G(z)`` of every row."""
        out = z.new_zeros(len(z))
        for name, part in self._blocks(z).items():
            w = part @ self.whiteners[name].T
            term = -0.5 * w.pow(2).sum(1) - 0.5 * self.logdets[name]
            out = out + (term if name == "joint" else -term)
        return out

    def features(self, z: Tensor) -> Tensor:
        """Inputs of the correction net: the whitened row and three radial features.

        ``sqrt(k/2) (log(1 + |w_b|^2) - log(1 + k))`` for each block ``b`` of
        dimension ``k`` (about standard normal for Gaussian rows): departures
        from a Gaussian copula such as a shared scale (heavy tails) show
        there first.
        """
        cols = [z @ self.whiteners["joint"].T]
        for name, part in self._blocks(z).items():
            k = part.shape[1]
            w = part @ self.whiteners[name].T
            r = torch.log1p(w.pow(2).sum(1, keepdim=True)) - math.log1p(k)
            cols.append(r * math.sqrt(0.5 * k))
        return torch.cat(cols, dim=1)


def predict_correction(net: nn.Module, copula: GaussianCopula, z: Tensor, chunk: int = 8192) -> Tensor:
    """``g(z)`` for every row, no gradient (shape (n,))."""
    with torch.no_grad():
        if not len(z):
            return z.new_zeros(0)
        return torch.cat([net(copula.features(b)) for b in z.split(chunk)])


def _shuffled(z: Tensor, n_x: int, generator: torch.Generator) -> Tensor:
    """Product rows: ``u`` of every row with ``v`` of a random permutation of the rows."""
    perm = torch.randperm(len(z), generator=generator).to(z.device)
    return torch.cat([z[:, :n_x], z[perm, n_x:]], dim=1)


def fit_copula_correction(
    net: nn.Module,
    copula: GaussianCopula,
    train: Tensor,
    *,
    n_epochs: int,
    batch_size: int,
    learning_rate_init: float,
    generator: torch.Generator,
    weight_decay: float = 0.0,
    validation: Tensor | None = None,
    probe: Tensor | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train ``g`` on joint rows ``train`` against fresh product rows, with the logit ``pmi_G + g``.

    Every epoch shuffles ``v`` across the training rows anew (a new product
    sample of the same size). With ``validation`` (held-out joint rows,
    against one fixed shuffle of themselves) the weights kept are those of
    the latest epoch whose held-out loss is within one paired standard error
    of the smallest (:func:`~.ratio.select_epoch`).

    With ``probe`` (rows the net never trains on) every candidate's mean
    ``g`` over them is recorded as well, so that the caller can see how much
    the choice of epoch moves the correction.

    Returns
    -------
    history : list of dict, one per epoch: ``loss`` and, with ``validation``,
    ``validation_loss`` and ``selected`` (and ``probe_correction`` with ``probe``).
    """
    n = len(train)
    n_x = copula.n_x
    n_batches = -(-n // batch_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate_init, weight_decay=weight_decay)
    offset_p = copula.pmi(train)
    feats_p = copula.features(train)
    if validation is not None:
        val_q = _shuffled(validation, n_x, generator)
        held = [(copula.pmi(val_q), val_q), (copula.pmi(validation), validation)]

    def batches():
        zq = _shuffled(train, n_x, generator)
        offset_q, feats_q = copula.pmi(zq), copula.features(zq)
        perm_p = torch.randperm(n, generator=generator).to(train.device)
        perm_q = torch.randperm(n, generator=generator).to(train.device)
        for ip, iq in zip(perm_p.split(batch_size), perm_q.split(batch_size)):
            yield feats_p[ip], offset_p[ip], feats_q[iq], offset_q[iq]

    def loss(batch):
        fp, op, fq, oq = batch
        g = net(torch.cat([fq, fp]))
        return logistic_loss(oq + g[: len(fq)], op + g[len(fq):])

    phase = Phase(
        modules=[net], optimizer=optimizer, batches=batches, loss=loss,
        scheduler=cosine_schedule(optimizer, n_epochs * n_batches), max_grad_norm=10.0,
    )

    probed: list[float] = []

    def held_out():
        (oq, zq), (op, zp) = held
        lq = oq + predict_correction(net, copula, zq)
        lp = op + predict_correction(net, copula, zp)
        if probe is not None:
            probed.append(float(predict_correction(net, copula, probe).double().mean()))
        return [t.double().cpu() for t in logistic_terms(lq, lp)]

    # the untrained net is a candidate too (g = 0 if it starts at 0)
    history = run_with_selection(
        net, phase, n_epochs, held_out=None if validation is None else held_out,
        select=select_correction_epoch, on_epoch=on_epoch, score_start=True,
    )
    for entry, value in zip(history, probed):
        entry["probe_correction"] = value
    return history
