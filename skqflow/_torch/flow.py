"""Training phases of the flow: the initial flow (flow matching) and the
refinement of Algorithm 1 (classifier KL + W2 path cost), both on the one
loop of :mod:`.train`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .coupling import COUPLINGS
from .losses import flow_matching_loss, logistic_loss, path_cost
from .ode import integrate, uniform_grid
from .train import Phase, batch_indices, cosine_schedule, cycled_permutation, run_epochs

__all__ = ["push", "fit_flow_matching", "RefineConfig", "refine", "train_classifier"]

Report = Callable[[str, int, dict], None]


def push(field: nn.Module, x: Tensor, start: float, stop: float, n_steps: int, chunk: int = 8192) -> Tensor:
    """Transport rows from ``start`` to ``stop`` with ``n_steps`` RK4 steps, no gradient."""
    grid = uniform_grid(start, stop, n_steps, like=x)
    with torch.no_grad():
        return torch.cat([integrate(field, xb, grid)[-1] for xb in x.split(chunk)])


def _paired_batches(n0: int, n1: int, batch_size: int, gen: torch.Generator) -> list[tuple[Tensor, Tensor]]:
    """Batches of indices into both samples; the smaller one is cycled."""
    n = max(n0, n1)
    i0, i1 = cycled_permutation(n0, n, gen), cycled_permutation(n1, n, gen)
    return list(zip(i0.split(batch_size), i1.split(batch_size)))


def fit_flow_matching(
    field: nn.Module,
    x_p: Tensor,
    x_q: Tensor,
    *,
    coupling: str,
    n_epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    report: Report | None = None,
) -> list[float]:
    """Initial flow: regress ``f`` on ``x1 - x0`` along straight paths.

    ``coupling`` picks how ``x0`` and ``x1`` are paired inside each batch (a
    key of :data:`~.coupling.COUPLINGS`). The learning rate decays on a cosine
    schedule to zero over all steps.
    """
    pair = COUPLINGS[coupling]
    n_batches = math.ceil(max(len(x_p), len(x_q)) / batch_size)
    optimizer = torch.optim.Adam(field.parameters(), lr=lr)

    def batches():
        for i0, i1 in _paired_batches(len(x_p), len(x_q), batch_size, generator):
            x0 = x_p[i0.to(x_p.device)]
            x1 = pair(x0, x_q[i1.to(x_q.device)])
            t = torch.rand(len(x0), generator=generator).to(x0)
            yield x0, x1, t

    phase = Phase(
        modules=[field],
        optimizer=optimizer,
        batches=batches,
        loss=lambda b: flow_matching_loss(field, *b),
        scheduler=cosine_schedule(optimizer, n_epochs * n_batches),
        max_grad_norm=10.0,
    )
    on_epoch = None if report is None else (lambda e, loss: report("initial flow", e, {"loss": loss}))
    return run_epochs(phase, n_epochs, on_epoch)


def train_classifier(
    clf: nn.Module,
    optimizer: torch.optim.Optimizer,
    pushed: Tensor,
    real: Tensor,
    n_epochs: int,
    batch_size: int,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Logistic classification of pushed rows (label 0) against real rows (label 1)."""

    def batches():
        for i0, i1 in _paired_batches(len(pushed), len(real), batch_size, generator):
            yield pushed[i0.to(pushed.device)], real[i1.to(real.device)]

    phase = Phase(
        modules=[clf],
        optimizer=optimizer,
        batches=batches,
        loss=lambda b: logistic_loss(clf(b[0]), clf(b[1])),
        max_grad_norm=10.0,
    )
    return run_epochs(phase, n_epochs, on_epoch)


@dataclass
class RefineConfig:
    """Hyper-parameters of Algorithm 1 (names follow the paper)."""

    gamma: float
    n_rounds: int  # Tot
    epochs: int  # E
    classifier_epochs: int  # E0
    inner_epochs: int  # E_in
    batch_size: int
    classifier_batch_size: int
    lr_flow: float
    lr_classifier: float
    n_time_steps: int  # K
    n_substeps: int  # S


def refine(
    field: nn.Module,
    classifiers: tuple[nn.Module, nn.Module],
    x_p: Tensor,
    x_q: Tensor,
    cfg: RefineConfig,
    generator: torch.Generator,
    *,
    monitor: Callable[[], dict] | None = None,
    report: Report | None = None,
) -> list[dict]:
    """Refine the flow by Algorithm 1 of the paper.

    Each round trains P->Q (classifier ``classifiers[0]`` on ``T(X_P)`` vs
    ``X_Q``) then Q->P (``classifiers[1]`` on ``T^{-1}(X_Q)`` vs ``X_P``). The
    flow loss of a direction is ``-mean r(x(end)) + gamma * path cost``.
    Learning rates are halved after each round.

    ``monitor()`` (optional) is called before the first epoch and after every
    flow epoch; it returns a dict of held-out metrics whose ``"criterion"``
    entry (lower is better) selects the state kept at the end. Its other
    entries go into the history.

    Returns
    -------
    history : list of dict, one per flow epoch.
    """
    history: list[dict] = []
    flow_opt = torch.optim.Adam(field.parameters(), lr=cfg.lr_flow)
    clf_opts = [torch.optim.Adam(c.parameters(), lr=cfg.lr_classifier) for c in classifiers]
    directions = [
        ("P->Q", x_p, x_q, 0.0, 1.0, classifiers[0], clf_opts[0]),
        ("Q->P", x_q, x_p, 1.0, 0.0, classifiers[1], clf_opts[1]),
    ]
    n_steps = cfg.n_time_steps * cfg.n_substeps

    def warm_up(name, rnd, source, target, t0, t1, clf, clf_opt):
        phase = f"classifier {name} round {rnd + 1}"
        return train_classifier(
            clf, clf_opt, push(field, source, t0, t1, n_steps), target,
            cfg.classifier_epochs, cfg.classifier_batch_size, generator,
            on_epoch=None if report is None else (lambda e, loss: report(phase, e, {"loss": loss})),
        )

    # Both classifiers learn the initial flow first, so that the held-out
    # loss of the initial flow is measured like that of every later epoch.
    for name, source, target, t0, t1, clf, clf_opt in directions:
        warm_up(name, 0, source, target, t0, t1, clf, clf_opt)
    best = None
    if monitor is not None:
        m = monitor()
        best = (m["criterion"], copy.deepcopy(field.state_dict()))
        history.append({"round": 0, "direction": "initial", "epoch": 0, **m})
    for rnd in range(cfg.n_rounds):
        for name, source, target, t0, t1, clf, clf_opt in directions:
            grid = uniform_grid(t0, t1, cfg.n_time_steps, like=source)
            if rnd > 0:
                warm_up(name, rnd, source, target, t0, t1, clf, clf_opt)

            def flow_loss(idx, clf=clf, source=source, grid=grid):
                states = integrate(field, source[idx.to(source.device)], grid, cfg.n_substeps)
                kl = -clf(states[-1]).mean()
                return kl + cfg.gamma * path_cost(states, grid)

            phase = Phase(
                modules=[field],
                optimizer=flow_opt,
                batches=lambda source=source: batch_indices(len(source), cfg.batch_size, generator),
                loss=flow_loss,
                max_grad_norm=10.0,
            )
            for epoch in range(cfg.epochs):
                clf.requires_grad_(False)
                try:
                    (loss,) = run_epochs(phase, 1)
                finally:
                    clf.requires_grad_(True)
                pushed = push(field, source, t0, t1, n_steps)
                with torch.no_grad():
                    kl = float(-clf(pushed).mean())
                clf_losses = train_classifier(
                    clf, clf_opt, pushed, target, cfg.inner_epochs,
                    cfg.classifier_batch_size, generator,
                )
                record = {
                    "round": rnd + 1, "direction": name, "epoch": epoch + 1,
                    "loss": loss, "kl": kl, "classifier_loss": clf_losses[-1] if clf_losses else float("nan"),
                }
                if monitor is not None:
                    m = monitor()
                    record.update(m)
                    if m["criterion"] < best[0]:
                        best = (m["criterion"], copy.deepcopy(field.state_dict()))
                history.append(record)
                if report is not None:
                    report(f"refine {name} round {rnd + 1}", epoch, record)
        for opt in (flow_opt, *clf_opts):
            for g in opt.param_groups:
                g["lr"] *= 0.5
    if best is not None:
        field.load_state_dict(best[1])
    return history
