"""Diagnostic: how the bridge noise of ``method="ctsm"`` sets its accuracy (issue 14, item 1).

Usage::

    python benchmarks/diag_ctsm_noise.py --task gaussian8 --sigmas 0.5 1.5 3.0 \
        --out benchmarks/results/diag_ctsm_noise_gaussian8.json

For each ``bridge_noise`` it fits ``InfinitesimalDensityRatio(method="ctsm",
bridge_noise=sigma, random_state=0)`` on ``--n-samples`` rows a side of the
task's pair (``mixture``: ``make_gaussian_mixture_pair()``; ``gaussianD``:
``make_gaussian_pair(D, random_state=0)``; training rows ``sample(n,
random_state=0)``, test rows ``sample(3000, random_state=1)``, as in
``bench_density_ratio.py``) and prints the mean absolute error of the log
ratio on the test rows of both sides, the held-out loss the estimator
reports and the fit time (one torch thread). Writes the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from skqflow import InfinitesimalDensityRatio, stack
from skqflow.datasets import make_gaussian_mixture_pair, make_gaussian_pair


def make_pair(task: str):
    if task == "mixture":
        return make_gaussian_mixture_pair()
    if task.startswith("gaussian"):
        return make_gaussian_pair(int(task[len("gaussian"):] or 2), random_state=0)
    raise ValueError(f"unknown task {task!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="gaussian8")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 1.5, 3.0])
    parser.add_argument("--n-samples", type=int, default=4000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pair = make_pair(args.task)
    X_p, X_q = pair.sample(args.n_samples, random_state=0)
    E_p, E_q = pair.sample(3000, random_state=1)
    E = np.concatenate([E_p, E_q])
    truth = pair.log_ratio(E)
    rows = []
    for sigma in args.sigmas:
        start = time.perf_counter()
        est = InfinitesimalDensityRatio(method="ctsm", bridge_noise=sigma, random_state=0).fit(*stack(X_p, X_q))
        seconds = time.perf_counter() - start
        mae = float(np.abs(est.predict_log_ratio(E) - truth).mean())
        rows.append({"task": args.task, "n_samples": args.n_samples, "bridge_noise": sigma, "mae": mae,
                     "held_out_loss": est.held_out_loss_.get("ctsm"), "seconds": seconds})
        print(f"{args.task} bridge_noise={sigma:<5} MAE {mae:.3f}  held-out loss "
              f"{rows[-1]['held_out_loss']:.4f}  fit {seconds:.0f} s", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
