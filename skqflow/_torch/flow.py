"""Training phases of the flow: the initial flow (flow matching) and the
refinement of Algorithm 1 (classifier KL + W2 path cost), both on the one
loop of :mod:`.train`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .coupling import COUPLINGS
from .flowmap import FlowMap
from .losses import energy_distance, flow_matching_loss, kl_lower_bound, logistic_loss, path_cost
from .ode import integrate, uniform_grid
from .train import (
    CLASSIFIER,
    INITIAL_FLOW,
    REFINEMENT,
    Phase,
    TrainingDiverged,
    batch_indices,
    cosine_schedule,
    cycled_permutation,
    phase_name,
    run_epochs,
)

__all__ = ["fit_flow_matching", "RefineConfig", "heldout_monitor", "refine", "train_classifier"]

Report = Callable[[str, int, dict], None]


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
    init: str,
    init_steps: int,
    batch_size: int,
    learning_rate_init: float,
    generator: torch.Generator,
    report: Report | None = None,
) -> list[float]:
    """Initial flow: regress ``f`` on ``x1 - x0`` along straight paths.

    Exactly ``init_steps`` optimizer steps, in passes over the larger sample
    (the last pass may stop early); one loss is returned per pass.
    ``init`` picks how ``x0`` and ``x1`` are paired inside each batch (a
    key of :data:`~.coupling.COUPLINGS`). The learning rate decays on a cosine
    schedule to zero over all steps.
    """
    pair = COUPLINGS[init]
    n_batches = math.ceil(max(len(x_p), len(x_q)) / batch_size)
    n_epochs = math.ceil(init_steps / n_batches)
    optimizer = torch.optim.Adam(field.parameters(), lr=learning_rate_init)
    done = {"steps": 0}

    def batches():
        for i0, i1 in _paired_batches(len(x_p), len(x_q), batch_size, generator):
            if done["steps"] >= init_steps:
                return
            done["steps"] += 1
            x0 = x_p[i0.to(x_p.device)]
            x1 = pair(x0, x_q[i1.to(x_q.device)])
            t = torch.rand(len(x0), generator=generator).to(x0)
            yield x0, x1, t

    phase = Phase(
        modules=[field],
        optimizer=optimizer,
        batches=batches,
        loss=lambda b: flow_matching_loss(field, *b),
        scheduler=cosine_schedule(optimizer, init_steps),
        max_grad_norm=10.0,
    )
    on_epoch = None if report is None else (lambda e, loss: report(INITIAL_FLOW, e, {"loss": loss}))
    try:
        return run_epochs(phase, n_epochs, on_epoch)
    except TrainingDiverged as exc:
        exc.losses = list(phase.losses)  # the epochs completed before the blow-up
        raise


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
    """Hyper-parameters of Algorithm 1, named as the estimator's parameters.

    The paper's names: ``max_iter`` is "Tot", ``refine_epochs`` E,
    ``classifier_epochs`` E0, ``classifier_inner_epochs`` E_in,
    ``n_time_steps`` K and ``n_substeps`` S.
    """

    gamma: float
    max_iter: int
    refine_epochs: int
    classifier_epochs: int
    classifier_inner_epochs: int
    batch_size: int
    classifier_batch_size: int
    refine_learning_rate: float
    classifier_learning_rate: float
    n_time_steps: int
    n_substeps: int
    adjoint: bool = False


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

    Raises
    ------
    TrainingDiverged
        When a phase blows up. The flow then holds the best state so far
        (by the monitor, else the last sound epoch) and the exception's
        ``history`` attribute the records up to and including the epoch
        that diverged (``"diverged": True``).
    """
    history: list[dict] = []
    flow_opt = torch.optim.Adam(field.parameters(), lr=cfg.refine_learning_rate)
    clf_opts = [torch.optim.Adam(c.parameters(), lr=cfg.classifier_learning_rate) for c in classifiers]
    directions = [
        ("P->Q", x_p, x_q, 0.0, 1.0, classifiers[0], clf_opts[0]),
        ("Q->P", x_q, x_p, 1.0, 0.0, classifiers[1], clf_opts[1]),
    ]
    flow = FlowMap(field, cfg.n_time_steps * cfg.n_substeps)

    def warm_up(name, rnd, source, target, t0, t1, clf, clf_opt):
        phase = phase_name(CLASSIFIER, name, rnd + 1)
        return train_classifier(
            clf, clf_opt, flow.push(source, t0, t1), target,
            cfg.classifier_epochs, cfg.classifier_batch_size, generator,
            on_epoch=None if report is None else (lambda e, loss: report(phase, e, {"loss": loss})),
        )

    best = None
    try:
        # Both classifiers learn the initial flow first, so that the held-out
        # loss of the initial flow is measured like that of every later epoch.
        for name, source, target, t0, t1, clf, clf_opt in directions:
            warm_up(name, 0, source, target, t0, t1, clf, clf_opt)
        if monitor is not None:
            m = monitor()
            best = (m["criterion"], copy.deepcopy(field.state_dict()), len(history))
            history.append({"round": 0, "direction": "initial", "epoch": 0, "kept": False, **m})
        for rnd in range(cfg.max_iter):
            for name, source, target, t0, t1, clf, clf_opt in directions:
                grid = uniform_grid(t0, t1, cfg.n_time_steps, like=source)
                if rnd > 0:
                    warm_up(name, rnd, source, target, t0, t1, clf, clf_opt)

                def flow_loss(idx, clf=clf, source=source, grid=grid):
                    states = integrate(field, source[idx.to(source.device)], grid, cfg.n_substeps, adjoint=cfg.adjoint)
                    kl = -clf(states[-1]).mean()
                    return kl + cfg.gamma * path_cost(states, grid)

                phase = Phase(
                    modules=[field],
                    optimizer=flow_opt,
                    batches=lambda source=source: batch_indices(len(source), cfg.batch_size, generator),
                    loss=flow_loss,
                    max_grad_norm=10.0,
                )
                for epoch in range(cfg.refine_epochs):
                    clf.requires_grad_(False)
                    try:
                        (loss,) = run_epochs(phase, 1)
                    except TrainingDiverged:
                        history.append({
                            "round": rnd + 1, "direction": name, "epoch": epoch + 1, "kept": False,
                            "loss": float("nan"), "diverged": True,
                        })
                        raise
                    finally:
                        clf.requires_grad_(True)
                    pushed = flow.push(source, t0, t1)
                    with torch.no_grad():
                        kl = float(-clf(pushed).mean())
                    clf_losses = train_classifier(
                        clf, clf_opt, pushed, target, cfg.classifier_inner_epochs,
                        cfg.classifier_batch_size, generator,
                    )
                    record = {
                        "round": rnd + 1, "direction": name, "epoch": epoch + 1, "kept": False,
                        "loss": loss, "kl": kl, "classifier_loss": clf_losses[-1] if clf_losses else float("nan"),
                    }
                    if monitor is not None:
                        m = monitor()
                        record.update(m)
                        if m["criterion"] < best[0]:
                            best = (m["criterion"], copy.deepcopy(field.state_dict()), len(history))
                    history.append(record)
                    if report is not None:
                        report(phase_name(REFINEMENT, name, rnd + 1), epoch, record)
            for opt in (flow_opt, *clf_opts):
                for g in opt.param_groups:
                    g["lr"] *= 0.5
    except TrainingDiverged as exc:
        _finish(field, history, best)
        exc.history = history
        raise
    _finish(field, history, best)
    return history


def _finish(field: nn.Module, history: list[dict], best) -> None:
    """Load the best held-out state (if monitored) and mark the record it came from as kept.

    Without a monitor the current state is kept: the last sound epoch.
    """
    if best is not None:
        field.load_state_dict(best[1])
        history[best[2]]["kept"] = True
        return
    sound = [r for r in history if not r.get("diverged")]
    if sound:
        sound[-1]["kept"] = True


def heldout_monitor(
    flow: FlowMap,
    classifiers: tuple[nn.Module, nn.Module],
    vp: Tensor,
    vq: Tensor,
    gamma: float,
    start_time: float | None = None,
) -> Callable[[], dict]:
    """The held-out criterion of the refinement, as a ``monitor`` for :func:`refine`.

    ``criterion = KL(P->Q) + KL(Q->P) + gamma * (cost(P->Q) + cost(Q->P))`` on
    the held-out rows ``vp`` and ``vq``: the refinement's own loss, each KL term
    the Donsker-Varadhan lower bound given by the current classifier (never
    negative, so a classifier that memorised its training rows cannot make a
    state look better than it is). The record also holds the held-out KL, the
    symmetric energy distance of the push-forwards, the held-out transport
    cost (mean of both directions) and the time since ``start_time``.
    """
    start_time = time.perf_counter() if start_time is None else start_time
    r1, r0 = classifiers

    def monitor() -> dict:
        with torch.no_grad():
            (fwd, cost_f), (bwd, cost_b) = flow.transport(vp, 0.0, 1.0), flow.transport(vq, 1.0, 0.0)
            kl = float(kl_lower_bound(r1(fwd), r1(vq)) + kl_lower_bound(r0(bwd), r0(vp)))
            cost = float(cost_f.mean() + cost_b.mean())
            ed = float(energy_distance(fwd, vq) + energy_distance(bwd, vp))
        return {
            "criterion": kl + gamma * cost, "heldout_kl": kl,
            "energy_distance": ed, "transport_cost": 0.5 * cost,
            "time": time.perf_counter() - start_time,
        }

    return monitor

