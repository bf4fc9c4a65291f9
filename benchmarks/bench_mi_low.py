"""Benchmark: mutual information on small problems (MI 0.2-2 nats, 1+1 to 25+25 columns).

Tasks: ``skqflow.datasets.make_low_mutual_info_tasks()``: Gaussian pairs
through heavy-tailed (sinh, cube), skewed (exp), bimodal and spiral maps of
each variable, and multivariate Student-t pairs with 1 to 3 degrees of
freedom, with identity shape (uncorrelated yet dependent: all of the MI is
beyond a Gaussian plug-in) or correlated. Every map is invertible and acts on
one variable, so the exact MI is that of the pair it starts from.

Methods: ``skqflow`` (``MutualInformationEstimator(random_state=seed)`` at its
defaults, ``mutual_info_``; ``--param key=value`` is forwarded, e.g.
``--param method='"flow"'`` for the paper's chain), ``cca`` (the Gaussian
plug-in on the raw columns), ``ksg`` (Kraskov k-NN, k=3). Reports each
estimate, its absolute error and the fit time, and the mean absolute error
(MAE) of each method over the set.

Run (from the repository root, a few minutes on two cores)::

    python benchmarks/bench_mi_low.py

Results go to ``benchmarks/results/bench_mi_low.json`` and ``.txt`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, _HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _baselines as B  # noqa: E402

METHODS = ("skqflow", "cca", "ksg")


def run(method, X, y, seed, params):
    t0 = time.perf_counter()
    rec = {}
    if method == "skqflow":
        from skqflow import MutualInformationEstimator

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = MutualInformationEstimator(random_state=seed, **params).fit(X, y)
        rec.update(estimate=float(est.mutual_info_), std_error=float(est.mutual_info_std_),
                   warnings=sorted({str(w.message)[:120] for w in caught}))
        for name in ("gaussian_mutual_info_", "correction_", "correction_std_"):
            if hasattr(est, name):
                rec[name] = float(getattr(est, name))
    elif method == "cca":
        rec["estimate"] = float(B.gaussian_mutual_info(X, y))
    elif method == "ksg":
        rec["estimate"] = float(B.ksg_mutual_info(X, y, k=3, jitter=1e-10, random_state=seed))
    else:
        raise ValueError(method)
    rec["fit_time_s"] = time.perf_counter() - t0
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--tasks", default=None, help="substring filter on the task names")
    ap.add_argument("--param", type=B.parse_param, action="append", default=[],
                    help="key=value (JSON value) for MutualInformationEstimator; repeatable")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(_HERE, "results", "bench_mi_low.json"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.torch_threads)
    from skqflow.datasets import make_low_mutual_info_tasks

    methods = [m for m in args.methods.split(",") if m]
    params = dict(args.param)
    tasks = {k: v for k, v in make_low_mutual_info_tasks().items() if not args.tasks or args.tasks in k}
    machine = B.machine_info()
    head = (f"# low-MI set: n={args.n_samples}, seed={args.seed}, {machine['cpu_count']} CPUs, "
            f"torch {machine.get('torch')} ({torch.get_num_threads()} threads), {machine['date']}"
            + (f"; skqflow params {params}" if params else ""))
    cols = "".join(f" | {m:>8} {'|err|':>6} {'s':>6}" for m in methods)
    lines = [head, f"{'task':<46} {'true':>6}{cols}", "-" * (53 + 24 * len(methods))]
    print("\n".join(lines), flush=True)
    records = []
    for i, (name, pair) in enumerate(tasks.items()):
        X, y = pair.sample(args.n_samples, random_state=args.seed + i)
        true = float(pair.mutual_info)
        cells = []
        for m in methods:
            rec = run(m, X, y, args.seed, params)
            rec.update(task=name, method=m, true_mi=true, abs_error=abs(rec["estimate"] - true))
            records.append(rec)
            cells.append(f" | {rec['estimate']:>8.3f} {rec['abs_error']:>6.3f} {rec['fit_time_s']:>6.1f}")
        row = f"{name:<46} {true:>6.3f}" + "".join(cells)
        lines.append(row)
        print(row, flush=True)
    lines.append("-" * (53 + 24 * len(methods)))
    summary = {}
    for m in methods:
        errs = [r["abs_error"] for r in records if r["method"] == m]
        t_errs = [r["abs_error"] for r in records if r["method"] == m and r["task"].startswith("t")]
        summary[m] = {"mae": float(np.mean(errs)), "max_abs_error": float(np.max(errs)),
                      "mae_student_t": float(np.mean(t_errs)) if t_errs else None,
                      "total_fit_time_s": float(sum(r["fit_time_s"] for r in records if r["method"] == m))}
        lines.append(f"{m:>8}: MAE {summary[m]['mae']:.3f} nats (max {summary[m]['max_abs_error']:.3f}; "
                     f"Student-t tasks {summary[m]['mae_student_t']:.3f}), "
                     f"total fit time {summary[m]['total_fit_time_s']:.0f} s")
    negative = [r for r in records if r["method"] == "skqflow" and r["estimate"] < 0]
    lines.append(f"negative skqflow estimates: {len(negative)}")
    print("\n".join(lines[-len(methods) - 1:]), flush=True)
    config = {"n_samples": args.n_samples, "seed": args.seed, "methods": methods, "params": params,
              "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])}
    B.save_json(args.out, {"machine": machine, "config": config, "results": records, "summary": summary})
    B.save_text(os.path.splitext(args.out)[0] + ".txt", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
