"""The training budget in optimizer steps, the adaptive batch size and the scoped torch threads."""

import numpy as np
import pytest
import torch

import skqflow._torch.flow as torch_flow
from skqflow import OTFlowTransformer, stack
from skqflow._transport import auto_batch_size, auto_init_steps
from skqflow.datasets import make_gaussian_pair

from .conftest import FAST, count_calls


@pytest.fixture(scope="module")
def data():
    return stack(*make_gaussian_pair(2, random_state=0).sample(400, random_state=1))


@pytest.mark.parametrize("n_rows, steps, batch", [(50, 300, 64), (500, 300, 64), (2000, 300, 250),
                                                   (10_000, 1000, 256), (100_000, 2000, 256)])
def test_auto_rules(n_rows, steps, batch):
    assert auto_init_steps(n_rows) == steps
    assert auto_batch_size(n_rows) == batch


@pytest.mark.parametrize("init_steps, batch_size, passes", [(7, 64, 1), (8, 64, 2), (20, 64, 3), (5, 400, 5)])
def test_init_steps_is_the_number_of_optimizer_steps(data, monkeypatch, init_steps, batch_size, passes):
    calls = count_calls(monkeypatch, torch_flow, "flow_matching_loss")
    flow = OTFlowTransformer(**{**FAST, "max_iter": 0, "init_steps": init_steps, "batch_size": batch_size})
    flow.fit(*data)
    assert calls["n"] == init_steps  # 400 rows a side: 7 batches of 64 a pass
    assert len(flow.history_) == passes


@pytest.mark.parametrize("init_steps", [5, 20])  # inside the first pass; across passes
def test_pairings_computed_ahead_on_a_worker_give_the_same_fit(data, monkeypatch, init_steps):
    """Minibatch assignments run on a worker thread, one per step, and change nothing in the fit."""
    import threading

    from skqflow._torch import coupling

    threads = []
    real = coupling.exact_assignment

    def spy(x0, x1):
        threads.append(threading.current_thread().name)
        return real(x0, x1)

    monkeypatch.setitem(coupling.COUPLINGS, "minibatch_ot", spy)
    params = {**FAST, "max_iter": 0, "init": "minibatch_ot", "init_steps": init_steps, "batch_size": 64}
    ahead = OTFlowTransformer(**params).fit(*data)
    assert len(threads) == init_steps  # no assignment for a step that is not taken
    assert all(name.startswith("skqflow-pairing") for name in threads)
    monkeypatch.setattr(torch_flow, "PAIRING_LOOKAHEAD", 0)
    threads.clear()
    inline = OTFlowTransformer(**params).fit(*data)
    assert threads == [threading.current_thread().name] * init_steps
    for a, b in zip(ahead.field_.parameters(), inline.field_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_auto_steps_and_batch_are_used(data, monkeypatch):
    seen = {}
    real = torch_flow.fit_flow_matching

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **{**kwargs, "init_steps": 2})

    monkeypatch.setattr("skqflow._transport.fit_flow_matching", spy)
    OTFlowTransformer(**{**FAST, "max_iter": 0, "init_steps": "auto", "batch_size": "auto"}).fit(*data)
    assert (seen["init_steps"], seen["batch_size"]) == (auto_init_steps(400), auto_batch_size(400))


@pytest.mark.parametrize("n_threads, inside", [(1, 1), (2, 2), (None, "unchanged")])
def test_threads_are_set_for_the_call_and_restored(data, monkeypatch, n_threads, inside):
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        seen = []
        real = torch_flow.fit_flow_matching

        def spy(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return real(*args, **kwargs)

        monkeypatch.setattr("skqflow._transport.fit_flow_matching", spy)
        flow = OTFlowTransformer(**{**FAST, "max_iter": 0}, n_threads=n_threads).fit(*data)
        assert seen == [3 if inside == "unchanged" else inside]
        assert torch.get_num_threads() == 3  # restored
        flow.transform(data[0][:5])
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("flushed_before", [False, True])
def test_denormals_are_flushed_for_the_call_and_the_setting_restored(data, monkeypatch, flushed_before):
    from skqflow._base import _denormals_flushed

    torch.set_flush_denormal(flushed_before)
    try:
        seen = []
        real = torch_flow.fit_flow_matching

        def spy(*args, **kwargs):
            seen.append(_denormals_flushed())
            return real(*args, **kwargs)

        monkeypatch.setattr("skqflow._transport.fit_flow_matching", spy)
        for n_threads in (1, None):
            flow = OTFlowTransformer(**{**FAST, "max_iter": 0}, n_threads=n_threads).fit(*data)
            assert _denormals_flushed() is flushed_before  # restored after fit
            flow.transform(data[0][:5])
            assert _denormals_flushed() is flushed_before
        assert seen == [True, True]  # flushed while training
        # the probe itself reads the CPU flag
        torch.set_flush_denormal(not flushed_before)
        assert _denormals_flushed() is (not flushed_before)
    finally:
        torch.set_flush_denormal(False)


def test_threads_are_restored_when_fit_fails(data):
    before = torch.get_num_threads()
    with pytest.raises(ValueError):
        OTFlowTransformer(**FAST, n_threads=1).fit(data[0], np.zeros(len(data[0])))
    assert torch.get_num_threads() == before


def test_default_skips_the_refinement(data):
    flow = OTFlowTransformer(**{k: v for k, v in FAST.items() if k != "max_iter"}).fit(*data)
    assert flow.max_iter == 0
    assert {r["phase"] for r in flow.history_} == {"initial flow"}
    assert not hasattr(flow, "classifiers_")
