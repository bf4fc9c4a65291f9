"""Training phases of the flow: the initial flow (flow matching) and the
refinement of Algorithm 1 (classifier KL + W2 path cost), both on the one
loop of :mod:`.train`.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .coupling import COUPLINGS, GLOBAL_PAIRINGS, independent
from .flowmap import FlowMap
from .losses import energy_distance, flow_matching_loss, kl_lower_bound, logistic_loss, path_cost, probabilities
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

__all__ = [
    "fit_flow_matching", "RefineConfig", "heldout_monitor", "refine", "train_classifier",
    "weighted_mean",
]

Report = Callable[[str, int, dict], None]

#: Row weights of the two samples ``(P, Q)``; ``None`` for an unweighted sample.
Weights = tuple[Tensor | None, Tensor | None]
NO_WEIGHTS: Weights = (None, None)


def _paired_batches(
    n0: int, n1: int, batch_size: int, gen: torch.Generator, weights: Weights = NO_WEIGHTS
) -> list[tuple[Tensor, Tensor]]:
    """Batches of indices into both samples; the smaller one is cycled.

    A weighted sample's indices are drawn in proportion to its weights
    (:func:`~.train.weighted_indices`), an epoch still being as long as the
    larger sample.
    """
    n = max(n0, n1)
    i0, i1 = cycled_permutation(n0, n, gen, weights[0]), cycled_permutation(n1, n, gen, weights[1])
    return list(zip(i0.split(batch_size), i1.split(batch_size)))


#: Batches of the initial flow whose pairing worker threads compute ahead of
#: the training step. Exact assignments run on the host and release the GIL,
#: so with one torch thread they overlap the step on the other cores; the
#: pairs (and so the fit) are the same as without (0: no workers). An
#: assignment of 256 clustered rows takes about twice as long as a training
#: step, hence two workers (docs/benchmarks.md, "Threads").
PAIRING_LOOKAHEAD = 4
PAIRING_WORKERS = 2


def paired_ahead(
    draws: Iterable[tuple[Tensor, Tensor]], pair: Callable[[Tensor, Tensor], Tensor], lookahead: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """``(x0, pair(x0, x1))`` for each draw, in order, the next ``lookahead`` pairings computed on worker threads.

    ``pair`` must not draw random numbers (its calls run early and elsewhere).
    With ``lookahead=0`` each pairing is computed when its batch is taken.
    """
    if lookahead <= 0:
        yield from ((x0, pair(x0, x1)) for x0, x1 in draws)
        return
    workers = max(1, min(PAIRING_WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skqflow-pairing") as pool:
        pending: deque = deque()
        try:
            for x0, x1 in draws:
                pending.append((x0, pool.submit(pair, x0, x1)))
                if len(pending) > lookahead:
                    x0, done = pending.popleft()
                    yield x0, done.result()
            while pending:
                x0, done = pending.popleft()
                yield x0, done.result()
        finally:  # the consumer stopped early: drop what is not started
            for _, waiting in pending:
                waiting.cancel()


def weighted_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean of ``values`` over rows (dimension 0), weighted by ``weights`` (one per row) if given."""
    if weights is None:
        return values.mean(0)
    p = probabilities(weights, len(values), values)
    return (p.reshape(-1, *[1] * (values.dim() - 1)) * values).sum(0)


def _kl_bound(logit_pushed: Tensor, logit_real: Tensor, weights: Weights = NO_WEIGHTS) -> Tensor:
    """:func:`~.losses.kl_lower_bound` under weighted empirical measures.

    That bound is ``-mean(u) - log mean exp(-v)`` for the pushed logits ``u``
    and the real logits ``v``. With ``p`` and ``q`` the weights of each side
    scaled to sum to one, replacing ``u_i`` by ``n p_i u_i`` turns the first
    mean into the weighted one, and ``v_j`` by ``v_j - log(m q_j)`` the second
    (``n``, ``m`` the numbers of rows).
    """
    if weights[0] is None and weights[1] is None:
        return kl_lower_bound(logit_pushed, logit_real)
    a, b = logit_pushed.reshape(-1), logit_real.reshape(-1)
    p, q = probabilities(weights[0], len(a), a), probabilities(weights[1], len(b), b)
    return kl_lower_bound(a * (len(a) * p), b - torch.log(len(b) * q))


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
    weights: Weights = NO_WEIGHTS,
    pairing_rows: int | None = None,
) -> list[float]:
    """Initial flow: regress ``f`` on ``x1 - x0`` along straight paths.

    Exactly ``init_steps`` optimizer steps, in passes over the larger sample
    (the last pass may stop early); one loss is returned per pass.
    ``init`` picks how ``x0`` and ``x1`` are paired: inside each batch (a
    key of :data:`~.coupling.COUPLINGS`) or once over all rows (a key of
    :data:`~.coupling.GLOBAL_PAIRINGS`, whose fit gets ``init_steps`` steps
    of its own; the flow then draws its batches from the fixed pairs). The
    learning rate decays on a cosine schedule to zero over all steps.
    ``weights`` (one tensor or None per sample) draw the rows of each batch
    in proportion to their weights. A batch coupling pairs groups of
    ``pairing_rows`` rows (a multiple of ``batch_size``; default
    ``batch_size``), each cut into batches of ``batch_size`` pairs for the
    steps: larger groups give pairs closer to the optimal plan of all rows.
    """
    n_batches = math.ceil(max(len(x_p), len(x_q)) / batch_size)
    n_epochs = math.ceil(init_steps / n_batches)
    optimizer = torch.optim.Adam(field.parameters(), lr=learning_rate_init)
    done = {"steps": 0}
    group = batch_size  # rows paired together: a batch coupling may pair several batches at once
    if init in GLOBAL_PAIRINGS:
        # Fixed pairs over all rows: row i of ``sources`` goes to row i of ``targets``.
        try:
            sources, targets, pair_weights = GLOBAL_PAIRINGS[init](
                x_p, x_q, steps=init_steps, batch_size=batch_size, generator=generator, weights=weights
            )
        except TrainingDiverged as exc:
            exc.losses = []
            raise
        pair = independent  # the rows drawn are already paired

        def draws():  # a pass is as long as the larger sample, as for batch couplings
            order = cycled_permutation(len(sources), max(len(x_p), len(x_q)), generator, pair_weights)
            for i0 in order.split(batch_size):
                i0 = i0.to(sources.device)
                yield sources[i0], targets[i0]
    else:
        pair = COUPLINGS[init]
        group = group if pairing_rows is None else pairing_rows
        if group % batch_size:
            raise ValueError(f"pairing_rows ({group}) must be a multiple of batch_size ({batch_size})")

        def draws():
            for i0, i1 in _paired_batches(len(x_p), len(x_q), group, generator, weights):
                yield x_p[i0.to(x_p.device)], x_q[i1.to(x_q.device)]

    def batches():
        # only as many draws as the budget has steps left: no assignment is computed for nothing
        left = max(0, init_steps - done["steps"])
        budget = itertools.islice(draws(), -(-left // (group // batch_size)))
        for g0, g1 in paired_ahead(budget, pair, 0 if pair is independent else PAIRING_LOOKAHEAD):
            for x0, x1 in zip(g0.split(batch_size), g1.split(batch_size)):
                if done["steps"] >= init_steps:
                    return
                done["steps"] += 1
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
    weights: Weights = NO_WEIGHTS,
) -> list[float]:
    """Logistic classification of pushed rows (label 0) against real rows (label 1).

    ``weights`` (one tensor or None for each of ``pushed`` and ``real``) draw
    the rows of each batch in proportion to their weights.
    """

    def batches():
        for i0, i1 in _paired_batches(len(pushed), len(real), batch_size, generator, weights):
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
    weights: Weights = NO_WEIGHTS,
) -> list[dict]:
    """Refine the flow by Algorithm 1 of the paper.

    Each round trains P->Q (classifier ``classifiers[0]`` on ``T(X_P)`` vs
    ``X_Q``) then Q->P (``classifiers[1]`` on ``T^{-1}(X_Q)`` vs ``X_P``). The
    flow loss of a direction is ``-mean r(x(end)) + gamma * path cost``.
    Learning rates are halved after each round.

    ``weights`` (one tensor or None for each of ``x_p`` and ``x_q``) make
    the samples weighted empirical measures: batches of the flow and of the
    classifiers draw rows in proportion to their weights, and the recorded
    KL estimate is a weighted mean.

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
    w_p, w_q = weights
    directions = [
        ("P->Q", x_p, x_q, 0.0, 1.0, classifiers[0], clf_opts[0], (w_p, w_q)),
        ("Q->P", x_q, x_p, 1.0, 0.0, classifiers[1], clf_opts[1], (w_q, w_p)),
    ]
    flow = FlowMap(field, cfg.n_time_steps * cfg.n_substeps)

    def warm_up(name, rnd, source, target, t0, t1, clf, clf_opt, pair_weights):
        phase = phase_name(CLASSIFIER, name, rnd + 1)
        return train_classifier(
            clf, clf_opt, flow.push(source, t0, t1), target,
            cfg.classifier_epochs, cfg.classifier_batch_size, generator,
            on_epoch=None if report is None else (lambda e, loss: report(phase, e, {"loss": loss})),
            weights=pair_weights,
        )

    best = None
    try:
        # Both classifiers learn the initial flow first, so that the held-out
        # loss of the initial flow is measured like that of every later epoch.
        for direction in directions:
            warm_up(direction[0], 0, *direction[1:])
        if monitor is not None:
            m = monitor()
            best = (m["criterion"], copy.deepcopy(field.state_dict()), len(history))
            history.append({"round": 0, "direction": "initial", "epoch": 0, "kept": False, **m})
        for rnd in range(cfg.max_iter):
            for name, source, target, t0, t1, clf, clf_opt, pair_weights in directions:
                grid = uniform_grid(t0, t1, cfg.n_time_steps, like=source)
                if rnd > 0:
                    warm_up(name, rnd, source, target, t0, t1, clf, clf_opt, pair_weights)

                def flow_loss(idx, clf=clf, source=source, grid=grid):
                    states = integrate(field, source[idx.to(source.device)], grid, cfg.n_substeps, adjoint=cfg.adjoint)
                    kl = -clf(states[-1]).mean()
                    return kl + cfg.gamma * path_cost(states, grid)

                phase = Phase(
                    modules=[field],
                    optimizer=flow_opt,
                    batches=lambda source=source, w=pair_weights[0]: batch_indices(
                        len(source), cfg.batch_size, generator, w
                    ),
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
                        kl = float(-weighted_mean(clf(pushed).reshape(-1), pair_weights[0]))
                    clf_losses = train_classifier(
                        clf, clf_opt, pushed, target, cfg.classifier_inner_epochs,
                        cfg.classifier_batch_size, generator, weights=pair_weights,
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
    weights: Weights = NO_WEIGHTS,
) -> Callable[[], dict]:
    """The held-out criterion of the refinement, as a ``monitor`` for :func:`refine`.

    ``criterion = KL(P->Q) + KL(Q->P) + ED(P->Q) + ED(Q->P)
    + gamma * (cost(P->Q) + cost(Q->P))`` on the held-out rows ``vp`` and
    ``vq``: the refinement's own loss, each KL term the Donsker-Varadhan lower
    bound given by the current classifier (never negative), plus the energy
    distance between the push-forward of each held-out sample and the other
    held-out sample. The energy distance needs no classifier: the KL bound
    alone was blind when the classifiers had memorised their training rows
    (it read 0 for flows whose push-forward was 3x further from the target
    by energy distance, so that ``gamma * cost`` alone chose the state, i.e.
    the most shrunk map), while the energy distance alone, on a few hundred
    held-out rows, sits at its sampling floor and missed real improvements
    (docs/benchmarks.md, "Why the refinement did not shorten"). The record
    also holds the held-out KL, the symmetric energy distance, the held-out
    transport cost (mean of both directions) and the time since
    ``start_time``.

    ``weights`` (one tensor or None for each of ``vp`` and ``vq``) turn every
    mean over held-out rows into a weighted mean.
    """
    start_time = time.perf_counter() if start_time is None else start_time
    r1, r0 = classifiers
    wp, wq = weights

    def monitor() -> dict:
        with torch.no_grad():
            (fwd, cost_f), (bwd, cost_b) = flow.transport(vp, 0.0, 1.0), flow.transport(vq, 1.0, 0.0)
            kl = float(_kl_bound(r1(fwd), r1(vq), (wp, wq)) + _kl_bound(r0(bwd), r0(vp), (wq, wp)))
            cost = float(weighted_mean(cost_f, wp) + weighted_mean(cost_b, wq))
            ed = float(energy_distance(fwd, vq, (wp, wq)) + energy_distance(bwd, vp, (wq, wp)))
        return {
            "criterion": kl + ed + gamma * cost, "heldout_kl": kl,
            "energy_distance": ed, "transport_cost": 0.5 * cost,
            "time": time.perf_counter() - start_time,
        }

    return monitor

