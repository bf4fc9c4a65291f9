"""The one training loop that every phase uses.

A phase supplies the modules it trains, an optimizer, a function that draws
the batches of one epoch, and a loss on a batch. The loop steps the
optimizer, records the mean loss per epoch, and stops when training blows
up (a non-finite loss or gradient, or a loss that grows by orders of
magnitude: see :data:`BLOWUP_FACTOR`) after restoring the weights the
modules had at the start of that epoch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = [
    "BLOWUP_FACTOR", "CHECK_EVERY", "INITIAL_FLOW", "CLASSIFIER", "REFINEMENT", "RATIO_NET",
    "ParameterAverage", "Phase", "StopTraining",
    "TrainingDiverged", "batch_indices", "cosine_schedule", "cycled_permutation", "phase_name",
    "run_epochs", "run_with_selection", "weighted_indices",
]

# The stages of training, as named in ``history_`` records, progress bars and plots.
INITIAL_FLOW = "initial flow"
CLASSIFIER = "classifier"
REFINEMENT = "refinement"
RATIO_NET = "ratio net"


def phase_name(stage: str, direction: str | None = None, round: int | None = None) -> str:
    """The one display name of a training phase.

    ``phase_name("refinement", "P->Q", 2)`` is ``"refinement P->Q round 2"``;
    ``phase_name("initial flow")`` is ``"initial flow"``. Progress bars and
    :mod:`skqflow.plotting` both name phases through this function.
    """
    parts = [stage]
    if direction is not None:
        parts.append(direction)
    if round is not None:
        parts.append(f"round {round}")
    return " ".join(parts)


#: Steps between two reads of the losses by the host (and at the end of every
#: epoch): the device is not synchronised every batch.
CHECK_EVERY = 16

#: A batch loss ``L`` with ``|L| > BLOWUP_FACTOR * (|L_0| + 1)``, ``L_0`` the
#: phase's first batch loss, counts as a blow-up even while it is finite.
BLOWUP_FACTOR = 1e3


class TrainingDiverged(RuntimeError):
    """Raised when training blows up; the weights of the last sound epoch are already restored."""


class StopTraining(Exception):
    """Raised by an ``on_epoch`` callback to end training after the current epoch (not an error)."""


class ParameterAverage:
    """Running average of a module's parameters over the optimizer's steps.

    The plain mean of all iterates for the first ``horizon`` steps, then an
    exponential moving average with time constant ``horizon`` steps (weight
    ``1 / horizon`` for the newest iterate). Averaging the iterates of a
    regression on noisy targets (Polyak averaging) removes most of the
    step-to-step noise of the weights that a large learning rate leaves,
    without the loss of progress that a smaller rate costs.

    Parameters
    ----------
    module : nn.Module
        The module whose parameters are averaged (buffers are not).
    horizon : int
        Steps of the running mean, then the average's time constant.
    """

    def __init__(self, module: nn.Module, horizon: int) -> None:
        self.module, self.horizon, self.steps = module, max(1, int(horizon)), 0
        self.average = [p.detach().clone() for p in module.parameters()]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the module's current parameters into the average (after each optimizer step)."""
        self.steps += 1
        weight = max(1.0 / self.steps, 1.0 / self.horizon)
        for mean, p in zip(self.average, self.module.parameters()):
            mean.lerp_(p.detach(), weight)

    @torch.no_grad()
    def load(self) -> None:
        """Copy the averaged parameters into the module."""
        for p, mean in zip(self.module.parameters(), self.average):
            p.copy_(mean)

    @contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[nn.Module]:
        """The module with the averaged parameters inside the block, its own ones after."""
        own = [p.detach().clone() for p in self.module.parameters()]
        self.load()
        try:
            yield self.module
        finally:
            for p, mine in zip(self.module.parameters(), own):
                p.copy_(mine)


@dataclass
class Phase:
    """What one training phase needs.

    Attributes
    ----------
    modules : sequence of nn.Module
        Modules whose weights are restored on divergence.
    optimizer : torch.optim.Optimizer
    batches : callable
        Returns the iterable of batches of one epoch.
    loss : callable
        ``loss(batch) -> Tensor`` (scalar).
    scheduler : optional learning-rate scheduler, stepped after every batch.
    max_grad_norm : float or None
        Gradient clipping.
    average : ParameterAverage or None
        Updated after every step; :func:`run_with_selection` then scores
        and keeps the averaged weights.
    """

    modules: Sequence[nn.Module]
    optimizer: torch.optim.Optimizer
    batches: Callable[[], Iterable]
    loss: Callable[..., Tensor]
    scheduler: object | None = None
    max_grad_norm: float | None = None
    average: ParameterAverage | None = None
    losses: list[float] = field(default_factory=list)
    first_loss: float | None = None


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator, weights: Tensor | None = None
) -> list[Tensor]:
    """Random batches of ``range(n)`` (one epoch, the last batch may be short).

    With ``weights`` (one per row), the epoch's ``n`` indices are drawn by
    :func:`weighted_indices` instead of a permutation.
    """
    if weights is not None:
        return list(weighted_indices(weights, n, generator).split(batch_size))
    perm = torch.randperm(n, generator=generator)
    return list(perm.split(batch_size))


def cycled_permutation(
    n_rows: int, length: int, generator: torch.Generator, weights: Tensor | None = None
) -> Tensor:
    """``length`` indices into ``range(n_rows)``: fresh permutations laid end to end.

    With ``weights`` (one per row), the indices are drawn by
    :func:`weighted_indices` instead: each row as often as its weight says.
    """
    if weights is not None:
        if len(weights) != n_rows:
            raise ValueError(f"{len(weights)} weights for {n_rows} rows")
        return weighted_indices(weights, length, generator)
    reps = -(-length // n_rows)
    return torch.cat([torch.randperm(n_rows, generator=generator) for _ in range(reps)])[:length]


def weighted_indices(weights: Tensor, length: int, generator: torch.Generator) -> Tensor:
    """``length`` row indices drawn in proportion to ``weights``, in random order.

    The weighted counterpart of a permutation, for batches of a weighted
    empirical measure: with ``p = weights / weights.sum()``, row ``i``
    appears ``floor(length * p_i)`` or ``ceil(length * p_i)`` times
    (``length * p_i`` on average), by systematic resampling over the rows
    taken in a random order; rows of weight zero never appear. With equal
    weights and ``length = len(weights)``, every row appears exactly once.
    Scaling all weights by one constant changes nothing (up to rounding).

    Parameters
    ----------
    weights : Tensor of shape (n_rows,)
        Non-negative, finite, with a positive sum (not checked here). Any
        device and floating dtype; the draw runs on the CPU in float64.
    length : int
        Number of indices to draw.
    generator : torch.Generator
        A CPU generator.

    Returns
    -------
    indices : Tensor of shape (length,)
        Long indices on the CPU.
    """
    w = weights.detach().to("cpu", torch.float64).reshape(-1)
    order = torch.randperm(len(w), generator=generator)
    cdf = torch.cumsum(w[order], 0)
    cdf = cdf / cdf[-1]  # ends at exactly 1.0, above every draw
    start = torch.rand((), generator=generator, dtype=torch.float64)
    u = (start + torch.arange(length, dtype=torch.float64)) / length
    # row j of the order covers [cdf[j-1], cdf[j]): empty for weight zero
    drawn = order[torch.searchsorted(cdf, u, right=True)]
    return drawn[torch.randperm(length, generator=generator)]


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int):
    """Learning rate decayed from its initial value to zero on a half cosine."""
    total_steps = max(1, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )


def run_epochs(
    phase: Phase, n_epochs: int, on_epoch: Callable[[int, float], None] | None = None
) -> list[float]:
    """Train ``phase`` for ``n_epochs`` epochs and return the mean loss of each.

    ``on_epoch(epoch, mean_loss)`` runs after every epoch; if it raises
    :class:`StopTraining`, training ends there (the epochs run so far count).

    Raises
    ------
    TrainingDiverged
        If a loss or gradient is non-finite, or a loss exceeds
        ``BLOWUP_FACTOR * (|first loss| + 1)`` in absolute value (checked every
        :data:`CHECK_EVERY` steps and at the end of each epoch). The modules
        then hold the weights they had at the start of that epoch.
    """
    means = []
    for epoch in range(n_epochs):
        snapshot = [copy.deepcopy(m.state_dict()) for m in phase.modules]
        params = [p for g in phase.optimizer.param_groups for p in g["params"]]
        # Losses stay on the device; the host reads them every CHECK_EVERY steps.
        total = worst = bad = None
        count = 0
        for batch in phase.batches():
            loss = phase.loss(batch)
            value = loss.detach()
            if phase.first_loss is None:
                phase.first_loss = float(value)
            phase.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            flag = ~torch.isfinite(value)
            if phase.max_grad_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, phase.max_grad_norm)
                flag = flag | ~torch.isfinite(norm)
            phase.optimizer.step()
            if phase.scheduler is not None:
                phase.scheduler.step()
            if phase.average is not None:
                phase.average.update()
            total = value if total is None else total + value
            worst = value.abs() if worst is None else torch.maximum(worst, value.abs())
            bad = flag if bad is None else bad | flag
            count += 1
            if count % CHECK_EVERY == 0:
                _check(phase, snapshot, epoch, worst, bad)
        if count:
            _check(phase, snapshot, epoch, worst, bad)
        means.append(float(total) / count if count else float("nan"))
        phase.losses.append(means[-1])
        if on_epoch is not None:
            try:
                on_epoch(epoch, means[-1])
            except StopTraining:
                break
    return means


def _check(phase: Phase, snapshot: list[dict], epoch: int, worst: Tensor, bad: Tensor) -> None:
    """Raise TrainingDiverged (after restoring the epoch's starting weights) on a blow-up."""
    if bool(bad):
        _restore(phase.modules, snapshot)
        raise TrainingDiverged(f"non-finite loss or gradient at epoch {epoch}" + _restored(epoch))
    largest = float(worst)
    if largest > BLOWUP_FACTOR * (abs(phase.first_loss) + 1.0):
        _restore(phase.modules, snapshot)
        raise TrainingDiverged(
            f"the loss grew from {phase.first_loss:.3g} to {largest:.3g} at epoch {epoch}" + _restored(epoch)
        )


def _restored(epoch: int) -> str:
    if epoch == 0:
        return "; the weights from before this phase were restored"
    return f"; the weights after epoch {epoch - 1} were restored"


def _restore(modules: Sequence[nn.Module], snapshot: list[dict]) -> None:
    for m, s in zip(modules, snapshot):
        m.load_state_dict(s)


def run_with_selection(
    net: nn.Module,
    phase: Phase,
    n_epochs: int,
    *,
    held_out: Callable[[], Sequence[Tensor]] | None,
    select: Callable[[list], int],
    on_epoch: Callable[[int, dict], None] | None = None,
    score_start: bool = False,
) -> list[dict]:
    """Train ``net`` by ``phase`` and keep the epoch that ``select`` picks on held-out rows.

    After every epoch ``held_out()`` gives the per-row held-out loss terms
    (one tensor per group; the loss is the sum of the group means), recorded
    with a copy of the weights. At the end (also when training raises) the
    weights of the epoch ``select(list of terms per epoch)`` are restored. With
    ``score_start`` the untrained net is the first candidate (epoch 0).
    Without ``held_out`` the last epoch is kept. When the phase keeps a
    :class:`ParameterAverage` of ``net``, the averaged weights are the ones
    scored, recorded and kept (without ``held_out``: the last average).

    Returns
    -------
    history : list of dict, one per epoch: ``epoch``, ``loss`` and, with
    ``held_out``, ``validation_loss`` and ``selected`` (the epoch kept).
    """
    history: list[dict] = []
    states: list[tuple[Sequence[Tensor], dict]] = []

    def record(epoch: int, mean_loss: float) -> None:
        entry = {"epoch": epoch + 1, "loss": mean_loss}
        if held_out is not None:
            with averaged():
                terms = held_out()
                states.append((terms, copy.deepcopy(net.state_dict())))
            entry["validation_loss"] = float(sum(t.mean() for t in terms))
        history.append(entry)
        if on_epoch is not None:
            on_epoch(epoch, entry)

    def averaged():
        return phase.average.applied() if phase.average is not None and phase.average.steps else nullcontext()

    if held_out is not None and score_start:
        record(-1, math.nan)
    try:
        run_epochs(phase, n_epochs, record)
    finally:
        if states:
            chosen = select([terms for terms, _ in states])
            net.load_state_dict(states[chosen][1])
            for i, h in enumerate(history):
                h["selected"] = i == chosen
        elif phase.average is not None and phase.average.steps and all(
            bool(torch.isfinite(mean).all()) for mean in phase.average.average
        ):
            phase.average.load()
    return history

