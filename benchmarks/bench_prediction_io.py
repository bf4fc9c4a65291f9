"""Benchmark: prediction memory and CLI file reading (issue 12, items 4 and 9).

Measures, each in a fresh subprocess so that peak memory is that of one call:

* the extra peak resident memory of ``OTFlowTransformer.transform`` on
  ``--rows`` rows (d=2, ``n_time_steps * n_substeps = 32`` RK4 steps) against
  the size of the output, for the current code and, with ``--compare REV``, a
  git revision checked out in a temporary worktree;
* the time to read a ``--csv-rows`` x 8 CSV file with the command line's reader
  (``skqflow._cli.read_table``) against ``np.loadtxt``.

Prints a table and writes JSON (``--out``).

Usage::

    python benchmarks/bench_prediction_io.py --out benchmarks/results/bench_prediction_io.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

_MEMORY = textwrap.dedent(
    """
    import json, resource, sys, time, numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    from skqflow import OTFlowTransformer, stack
    rng = np.random.default_rng(0)
    X, y = stack(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1)
    flow = OTFlowTransformer(hidden_layer_sizes=(8,), n_time_steps=16, n_substeps=2, init_steps=4,
                             max_iter=0, random_state=0).fit(X, y)
    big = rng.normal(size=(int(sys.argv[2]), 2))
    flow.transform(big[:10])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out = flow.transform(big)
    seconds = time.perf_counter() - t
    extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    print(json.dumps({"extra_mb": extra / 2**20, "output_mb": out.nbytes / 2**20, "seconds": seconds}))
    """
)


def memory(src: str, rows: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEMORY, src, str(rows)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def csv_read(rows: int) -> dict:
    from skqflow._cli import read_table

    rng = np.random.default_rng(0)
    data = rng.normal(size=(rows, 8))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p.csv")
        np.savetxt(path, data, delimiter=",", header=",".join(f"x{i}" for i in range(8)), comments="")
        t = time.perf_counter()
        read_table(path)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        np.loadtxt(path, delimiter=",", skiprows=1)
        numpy = time.perf_counter() - t
    return {"read_table_s": ours, "np_loadtxt_s": numpy}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--csv-rows", type=int, default=200_000)
    parser.add_argument("--compare", default=None, help="git revision to measure as well")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "rows": args.rows, "memory": {"current": memory(root, args.rows)}}
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["git", "-C", root, "worktree", "add", "--detach", tmp, args.compare],
                           check=True, capture_output=True)
            try:
                results["memory"][args.compare] = memory(tmp, args.rows)
            finally:
                subprocess.run(["git", "-C", root, "worktree", "remove", "--force", tmp], capture_output=True)
    results["csv"] = {"rows": args.csv_rows, **csv_read(args.csv_rows)}
    print(f"transform of {args.rows} rows (d=2, 32 RK4 steps), one thread")
    print(f"{'code':<12} {'extra peak MB':>14} {'output MB':>10} {'x output':>9} {'seconds':>8}")
    for name, m in results["memory"].items():
        print(f"{name:<12} {m['extra_mb']:14.1f} {m['output_mb']:10.1f} {m['extra_mb'] / m['output_mb']:9.2f} "
              f"{m['seconds']:8.1f}")
    c = results["csv"]
    print(f"CSV {c['rows']} x 8: read_table {c['read_table_s']:.2f} s, np.loadtxt {c['np_loadtxt_s']:.2f} s")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
