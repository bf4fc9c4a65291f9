"""The training budget in optimizer steps, the adaptive batch size and the scoped torch threads."""

import numpy as np
import pytest
import torch

import skqflow._torch.flow as torch_flow
from skqflow import OTFlowTransformer, stack
from skqflow._transport import auto_batch_size, auto_init_steps, auto_pairing_rows
from skqflow.datasets import make_gaussian_pair

from .conftest import FAST, count_calls


@pytest.fixture(scope="module")
def data():
    return stack(*make_gaussian_pair(2, random_state=0).sample(400, random_state=1))


@pytest.mark.parametrize("n_rows, steps, batch", [(50, 300, 64), (500, 300, 64), (2000, 300, 250),
                                                   (5000, 500, 256), (7000, 980, 256), (10_000, 2000, 256),
                                                   (100_000, 2000, 256)])
def test_auto_rules(n_rows, steps, batch):
    assert auto_init_steps(n_rows) == steps
    assert auto_batch_size(n_rows) == batch


@pytest.mark.parametrize("n_rows, batch, rows", [(500, 64, 64), (2000, 250, 500), (4000, 256, 768),
                                                 (10_000, 256, 2048), (100_000, 256, 2048), (10_000, 100, 800)])
def test_auto_pairing_rows(n_rows, batch, rows):
    assert auto_pairing_rows(n_rows, batch) == rows


@pytest.mark.parametrize(
    "coupling_batch_size, rows", [(128, 128), (150, 128), (100, 128), (10, 64), (64, 64), ("auto", 64)]
)
def test_groups_of_coupling_batch_size_rows_are_paired_then_cut_into_batches(
    data, monkeypatch, coupling_batch_size, rows
):
    """One assignment per group of whole batches; every step still gets one batch of its pairs."""
    from skqflow._torch import coupling

    sizes = []
    real = coupling.decomposed_assignment

    def spy(x0, x1):
        sizes.append(len(x0))
        return real(x0, x1)

    monkeypatch.setitem(coupling.COUPLINGS, "minibatch_ot", spy)
    steps = count_calls(monkeypatch, torch_flow, "flow_matching_loss")
    params = {**FAST, "max_iter": 0, "init_steps": 10, "batch_size": 64, "coupling_batch_size": coupling_batch_size}
    OTFlowTransformer(**params).fit(*data)
    assert steps["n"] == 10
    # A pass of 400 rows is cut into groups of ``rows`` (the last one smaller), each group into
    # batches of 64; no group is paired for a step that is not taken.
    one_pass = [rows] * (400 // rows) + ([400 % rows] if 400 % rows else [])
    expected, taken = [], 0
    for group in one_pass * 2:
        if taken >= 10:
            break
        expected.append(group)
        taken += -(-group // 64)
    assert sizes == expected


def test_pairing_rows_must_be_whole_batches():
    x = torch.randn(40, 2)
    with pytest.raises(ValueError, match="pairing_rows \\(100\\) must be a multiple of batch_size \\(64\\)"):
        torch_flow.fit_flow_matching(
            torch.nn.Linear(2, 2), x, x, init="minibatch_ot", init_steps=1, batch_size=64,
            learning_rate_init=1e-3, generator=torch.Generator(), pairing_rows=100,
        )


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
