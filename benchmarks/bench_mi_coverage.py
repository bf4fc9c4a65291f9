"""Benchmark: does ``mutual_info_std_`` cover the real error?

Fits ``MutualInformationEstimator(random_state=seed)`` on ``--n-seeds``
independent samples of one task (``make_mutual_info_pair(--d, --mi,
kind=--kind)``; by default the README's example: 5000 rows, d=4, MI = 1 nat)
and counts the runs whose truth lies within two reported standard errors,
``|mutual_info_ - MI| <= 2 mutual_info_std_`` (the goal: at least 90%).
Also prints the mean error, the spread of the estimates across seeds (the
real standard error) and the mean reported standard error.

Run (from the repository root; about 20 fits)::

    python benchmarks/bench_mi_coverage.py
    python benchmarks/bench_mi_coverage.py --kind student_t --d 10 --mi 2.5 --n-samples 10000

Results go to ``benchmarks/results/bench_mi_coverage_<kind>_d<d>.json`` and ``.txt``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, _HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _baselines as B  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", default="gaussian", choices=("gaussian", "warped", "student_t"))
    ap.add_argument("--d", type=int, default=4)
    ap.add_argument("--mi", type=float, default=None, help="true MI in nats (default d/4)")
    ap.add_argument("--n-samples", type=int, default=5000)
    ap.add_argument("--n-seeds", type=int, default=20)
    ap.add_argument("--param", type=B.parse_param, action="append", default=[],
                    help="key=value (JSON value) for MutualInformationEstimator; repeatable")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from skqflow import MutualInformationEstimator
    from skqflow.datasets import make_mutual_info_pair

    pair = make_mutual_info_pair(args.d, args.mi, kind=args.kind)
    truth = float(pair.mutual_info)
    params = dict(args.param)
    out = args.out or os.path.join(_HERE, "results", f"bench_mi_coverage_{args.kind}_d{args.d}.json")
    machine = B.machine_info()
    lines = [f"# coverage: {args.kind}, d={args.d}, MI={truth:.4g} nats, n={args.n_samples}, "
             f"{args.n_seeds} seeds, {machine['date']}" + (f"; params {params}" if params else ""),
             f"{'seed':>4} {'estimate':>9} {'std':>7} {'z':>6} {'covered':>8} {'s':>6}"]
    print("\n".join(lines), flush=True)
    records = []
    for seed in range(args.n_seeds):
        X, y = pair.sample(args.n_samples, random_state=1000 + seed)
        t0 = time.perf_counter()
        est = MutualInformationEstimator(random_state=seed, **params).fit(X, y)
        t = time.perf_counter() - t0
        mi, std = float(est.mutual_info_), float(est.mutual_info_std_)
        z = (mi - truth) / std if std > 0 else np.inf
        rec = {"seed": seed, "estimate": mi, "std": std, "z": z, "covered": bool(abs(z) <= 2), "fit_time_s": t}
        records.append(rec)
        row = f"{seed:>4} {mi:>9.4f} {std:>7.4f} {z:>+6.2f} {str(rec['covered']):>8} {t:>6.1f}"
        lines.append(row)
        print(row, flush=True)
    est = np.array([r["estimate"] for r in records])
    summary = {
        "coverage_2se": float(np.mean([r["covered"] for r in records])),
        "mean_error": float(est.mean() - truth),
        "spread_across_seeds": float(est.std(ddof=1)),
        "rmse": float(np.sqrt(np.mean((est - truth) ** 2))),
        "mean_reported_std": float(np.mean([r["std"] for r in records])),
        "mean_fit_time_s": float(np.mean([r["fit_time_s"] for r in records])),
    }
    lines.append(
        f"truth within 2 reported s.e.: {100 * summary['coverage_2se']:.0f}% of {len(records)} runs; "
        f"mean error {summary['mean_error']:+.4f}, spread across seeds {summary['spread_across_seeds']:.4f}, "
        f"RMSE {summary['rmse']:.4f}, mean reported s.e. {summary['mean_reported_std']:.4f}, "
        f"mean fit {summary['mean_fit_time_s']:.1f} s"
    )
    print(lines[-1], flush=True)
    config = {"kind": args.kind, "d": args.d, "true_mi": truth, "n_samples": args.n_samples,
              "n_seeds": args.n_seeds, "params": params,
              "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}
    B.save_json(out, {"machine": machine, "config": config, "results": records, "summary": summary})
    B.save_text(os.path.splitext(out)[0] + ".txt", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
