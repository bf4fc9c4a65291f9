"""The running average of the weights kept by time-score matching (``ParameterAverage``)."""

import pytest
import torch
from torch import nn

from skqflow._torch.train import ParameterAverage, Phase, run_with_selection


def _iterates(module, values):
    """Set the module's one weight to each value in turn, folding each into an average."""
    for v in values:
        with torch.no_grad():
            module.weight.fill_(v)
        yield v


def test_running_mean_then_exponential_average():
    module = nn.Linear(1, 1, bias=False)
    avg = ParameterAverage(module, horizon=4)
    values = [1.0, 2.0, 6.0, 3.0, 10.0, -2.0]
    for k, _ in enumerate(_iterates(module, values), start=1):
        avg.update()
        if k <= 4:  # the plain mean of the iterates so far
            assert avg.average[0].item() == pytest.approx(sum(values[:k]) / k)
    # then weight 1/4 for each new iterate: 3 -> 3 + (10 - 3)/4 -> that + (-2 - that)/4
    expected = 3.0 + (10.0 - 3.0) / 4
    expected = expected + (-2.0 - expected) / 4
    assert avg.average[0].item() == pytest.approx(expected)
    # applied() swaps the average in and the module's own weight back
    with avg.applied() as m:
        assert m.weight.item() == pytest.approx(expected)
    assert module.weight.item() == -2.0


def _phase(module, targets, average):
    opt = torch.optim.SGD(module.parameters(), lr=0.5)

    def batches():
        yield from targets

    return Phase(
        modules=[module], optimizer=opt, batches=lambda: batches(),
        loss=lambda y: (module.weight.sum() - y) ** 2, average=average,
    )


@pytest.mark.parametrize("held_out", [False, True])
def test_selection_scores_and_keeps_the_averaged_weights(held_out):
    """Noisy targets around 1: the iterates jump, the kept weight is their mean."""
    torch.manual_seed(0)
    module = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(0.0)
    targets = [torch.tensor(1.0 + s) for s in (0.8, -0.8) * 20]
    avg = ParameterAverage(module, horizon=1000)  # a plain mean of all 40 iterates
    seen = []

    def steps(weights):
        w = 0.0
        for y in targets:  # SGD on (w - y)^2 with rate 0.5 jumps to w = y
            w = w - 0.5 * 2 * (w - float(y))
            weights.append(w)
        return weights

    iterates = steps([])
    scores = (lambda: seen.append(module.weight.item()) or [torch.zeros(1)]) if held_out else None
    run_with_selection(module, _phase(module, targets, avg), 1, held_out=scores, select=lambda terms: 0)
    mean = sum(iterates) / len(iterates)
    assert module.weight.item() == pytest.approx(mean, abs=1e-6)
    assert abs(mean - 1.0) < 0.05 < abs(iterates[-1] - 1.0)  # the mean is near the truth, the last iterate is not
    if held_out:
        assert seen == [pytest.approx(mean, abs=1e-6)]  # scored with the average, not the last iterate


def test_bridge_training_keeps_the_average_of_its_iterates(monkeypatch):
    """fit_bridge_time_score averages over a tenth of its steps and leaves the average in the net."""
    import skqflow._torch.ctsm as ctsm
    from skqflow._torch.ratio import TimeScoreNet

    made = []

    class Recording(ParameterAverage):
        def __init__(self, module, horizon):
            super().__init__(module, horizon)
            made.append(self)

    monkeypatch.setattr(ctsm, "ParameterAverage", Recording)
    gen = torch.Generator().manual_seed(0)
    x_p, x_q = torch.randn(200, 2, generator=gen), torch.randn(200, 2, generator=gen) + 1.0
    net = TimeScoreNet(2, (16,), "softplus", n_components=2)
    ctsm.fit_bridge_time_score(
        net, x_p, x_q, torch.linspace(0, 1, 5), n_epochs=3, steps_per_epoch=10, batch_size=32,
        learning_rate_init=1e-2, sigma=0.5, generator=gen,
    )
    (avg,) = made
    assert avg.module is net and avg.horizon == 3 and avg.steps == 30
    for p, mean in zip(net.parameters(), avg.average):
        assert torch.equal(p, mean)
