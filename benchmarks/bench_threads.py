"""Benchmark: torch threads on a quiet and a busy machine, and the share of the matmul peak.

For each condition (``quiet``: nothing else runs; ``busy``: one extra process
spins on a core, like another job on a shared 2-core machine) it times one fit
of ``OTFlowTransformer`` (moons to checkerboard, 4000 rows a side, the default
network, ``--steps`` optimizer steps) with ``n_threads=1`` and with torch's
default number of threads (``n_threads=None``), and once more with one thread
and the minibatch assignments computed inline (``PAIRING_LOOKAHEAD = 0``)
instead of ahead on a worker thread (the default). It also reports the float32
matmul throughput of this machine (1024 x 1024 products, one thread and all
threads) and the share of that peak that a bare training step of the velocity
field (width 256, the default batch) and the whole initial-flow loop reach.

Prints a table and writes JSON (``--out``).

Usage::

    python benchmarks/bench_threads.py --out benchmarks/results/bench_threads.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import torch

from skqflow import OTFlowTransformer, stack
from skqflow._torch.losses import flow_matching_loss
from skqflow._torch.nn import VelocityField
from skqflow._transport import auto_batch_size
from skqflow.datasets import make_moons_checkerboard


def _spin(stop):
    x = 0
    while not stop.is_set():
        x += 1


def matmul_gflops(n_threads: int, size: int = 1024, repeats: int = 20) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        return 2 * size**3 * repeats / (time.perf_counter() - t) / 1e9
    finally:
        torch.set_num_threads(before)


def step_flops(d: int, batch: int, hidden=(256, 256)) -> float:
    """Multiply-add FLOPs of one flow-matching step (forward + backward ~ 3 x forward)."""
    sizes = [d, *hidden, d]
    forward = 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3.0 * forward


def bare_step_ms(d: int, batch: int, repeats: int = 50) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        field = VelocityField(d, (256, 256), "softplus")
        opt = torch.optim.Adam(field.parameters(), 1e-3)
        x0, x1, t = torch.randn(batch, d), torch.randn(batch, d), torch.rand(batch)

        def step():
            loss = flow_matching_loss(field, x0, x1, t)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        return (time.perf_counter() - start) / repeats * 1000
    finally:
        torch.set_num_threads(before)


def fit_seconds(n_threads, steps: int, lookahead: int | None = None) -> tuple[float, float]:
    import skqflow._torch.flow as torch_flow

    if lookahead is not None:
        default, torch_flow.PAIRING_LOOKAHEAD = torch_flow.PAIRING_LOOKAHEAD, lookahead
        try:
            return fit_seconds(n_threads, steps)
        finally:
            torch_flow.PAIRING_LOOKAHEAD = default
    X_p, X_q = make_moons_checkerboard(4000, random_state=0)
    flow = OTFlowTransformer(init_steps=steps, n_threads=n_threads, random_state=0)
    start = time.perf_counter()
    flow.fit(*stack(X_p, X_q))
    total = time.perf_counter() - start
    return total, sum(1 for r in flow.history_ if r["phase"] == "initial flow")


def demo_fit_fraction(peak: float) -> dict:
    """The demo's settings (pairs fixed once, 4x256): whole-fit time per step and share of ``peak``."""
    from skqflow._cli import DEMO_PARAMS

    X_p, X_q = make_moons_checkerboard(4000, random_state=0)
    flow = OTFlowTransformer(n_threads=1, random_state=0, **DEMO_PARAMS)
    start = time.perf_counter()
    flow.fit(*stack(X_p, X_q))
    seconds = time.perf_counter() - start
    steps, batch = DEMO_PARAMS["init_steps"], auto_batch_size(4000)
    flops = step_flops(2, batch, DEMO_PARAMS["hidden_layer_sizes"])
    return {"demo_fit_seconds": seconds, "demo_ms_per_step": seconds / steps * 1000,
            "demo_fit_fraction_of_peak": flops / (seconds / steps) / 1e9 / peak}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results = {"cores": os.cpu_count(), "torch_default_threads": torch.get_num_threads(), "steps": args.steps,
               "fits": []}
    fit_seconds(1, 20)  # warm-up: the first fit of a process pays for lazy initialisation
    for condition in ("quiet", "busy"):
        stop = mp.Event()
        spinner = mp.Process(target=_spin, args=(stop,)) if condition == "busy" else None
        if spinner is not None:
            spinner.start()
        try:
            for n_threads, lookahead in ((1, None), (None, None), (1, 0)):
                seconds, _ = fit_seconds(n_threads, args.steps, lookahead)
                results["fits"].append({"condition": condition, "n_threads": n_threads, "seconds": seconds,
                                        "pairing": "inline" if lookahead == 0 else "ahead"})
                how = " (assignments inline)" if lookahead == 0 else ""
                print(f"{condition:<6} n_threads={n_threads!s:<5} fit {seconds:6.1f} s{how}", flush=True)
        finally:
            if spinner is not None:
                stop.set()
                spinner.join()
    peak1, peak_all = matmul_gflops(1), matmul_gflops(torch.get_num_threads())
    batch = auto_batch_size(4000)
    bare = bare_step_ms(2, batch)
    bare8 = bare_step_ms(8, 512)
    quiet_one = next(f["seconds"] for f in results["fits"]
                     if f["condition"] == "quiet" and f["n_threads"] == 1 and f["pairing"] == "ahead")
    loop_ms = quiet_one / args.steps * 1000
    results.update({
        "matmul_gflops_1_thread": peak1, "matmul_gflops_all_threads": peak_all,
        "bare_step_ms_d2": bare, "bare_step_fraction_of_peak_d2": step_flops(2, batch) / (bare / 1000) / 1e9 / peak1,
        "bare_step_ms_d8_b512": bare8,
        "bare_step_fraction_of_peak_d8_b512": step_flops(8, 512) / (bare8 / 1000) / 1e9 / peak1,
        "fit_ms_per_step_one_thread": loop_ms,
        "fit_fraction_of_peak": step_flops(2, batch) / (loop_ms / 1000) / 1e9 / peak1,
    })
    results.update(demo_fit_fraction(peak1))
    print(f"matmul 1024^2 float32: {peak1:.0f} GFLOP/s on one thread, {peak_all:.0f} on all")
    print(f"bare training step (d=2, batch {batch}): {bare:.2f} ms, "
          f"{results['bare_step_fraction_of_peak_d2']:.0%} of the one-thread peak")
    print(f"bare training step (d=8, batch 512): {bare8:.2f} ms, "
          f"{results['bare_step_fraction_of_peak_d8_b512']:.0%} of the one-thread peak")
    print(f"whole fit, one thread: {loop_ms:.1f} ms a step (assignment and fitted metrics included), "
          f"{results['fit_fraction_of_peak']:.0%} of the peak")
    print(f"the demo's fit (block_ot, 4x256, one thread): {results['demo_ms_per_step']:.1f} ms a step, "
          f"{results['demo_fit_fraction_of_peak']:.0%} of the peak ({results['demo_fit_seconds']:.1f} s)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
