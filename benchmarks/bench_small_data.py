"""Benchmark: Gaussian-to-Gaussian maps on small samples at the defaults (issue 13, item 1).

For ``make_gaussian_pair(2, random_state=seed)`` (seed 0 is the README's quick
start pair) and ``--sizes`` rows a side, it fits

* ``skqflow defaults``: ``OTFlowTransformer(random_state=0)``;
* ``skqflow old defaults``: the previous defaults (30 passes over the data in
  batches of 512, i.e. 30 steps at 500 rows; ``max_iter=0``: the refinement
  was always discarded on these pairs);
* ``plug-in``: the closed-form Gaussian (Bures) map between the samples' means
  and covariances, the statistical optimum for this model (POT's
  ``LinearTransport`` computes the same map);

and scores each map on 5000 fresh rows of P by the relative map error
``mean ||T^(x) - T*(x)|| / ||T*(x) - x||`` against the exact OT map ``T*``.
Prints a table and writes JSON (``--out``).

Usage::

    python benchmarks/bench_small_data.py --out benchmarks/results/bench_small_data.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _baselines import gaussian_plug_in_map as plug_in  # noqa: E402
from _baselines import relative_map_error as map_error  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            pair = make_gaussian_pair(2, random_state=seed)
            X_p, X_q = pair.sample(n, random_state=seed + 1)
            X_t = pair.sample(5000, random_state=99)[0]
            T = pair.ot_map(X_t)
            methods = {
                "skqflow defaults": OTFlowTransformer(random_state=0),
                "skqflow old defaults": OTFlowTransformer(
                    init_steps=30 * -(-n // 512), batch_size=512, max_iter=0, random_state=0),
            }
            for name, est in methods.items():
                start = time.perf_counter()
                est.fit(*stack(X_p, X_q))
                rows.append({"n": n, "seed": seed, "method": name, "map_error": map_error(est.transform(X_t), T, X_t),
                             "seconds": time.perf_counter() - start})
            start = time.perf_counter()
            f = plug_in(X_p, X_q)
            rows.append({"n": n, "seed": seed, "method": "plug-in", "map_error": map_error(f(X_t), T, X_t),
                         "seconds": time.perf_counter() - start})
            for r in rows[-3:]:
                print(f"n={r['n']:<5} pair {r['seed']}  {r['method']:<22} {r['map_error']:.3f}  {r['seconds']:5.1f} s",
                      flush=True)
    print("\nmean over pairs")
    for n in sorted({r["n"] for r in rows}):
        for name in ("skqflow defaults", "skqflow old defaults", "plug-in"):
            sel = [r for r in rows if r["n"] == n and r["method"] == name]
            print(f"n={n:<5} {name:<22} map error {np.mean([r['map_error'] for r in sel]):.3f} "
                  f"(pair 0: {sel[0]['map_error']:.3f})  fit {np.mean([r['seconds'] for r in sel]):5.1f} s")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
