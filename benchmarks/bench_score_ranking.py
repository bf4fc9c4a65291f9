"""Benchmark: does the flow's label-free ``score`` rank fitted flows as their accuracy does? (issue 13, item 6)

For each task it fits ``OTFlowTransformer(random_state=0)`` with several
pairings (``--inits``) and measures, on fresh rows,

* the truth: the relative map error against the exact OT map (Gaussian pairs
  ``make_gaussian_pair(2, random_state=seed)`` at 500 and 2000 rows; the
  non-linear pair ``make_convex_map_pair(d, random_state=seed)`` at 4000
  rows, d=2 and 8), or, for the moons and the checkerboard (no known map),
  the share of ``T(X_P)`` inside the filled squares;
* the score's parts in standardised units: the two energy distances ``ed``
  and the Jacobian's antisymmetric shares ``a_f`` and ``a_b``;
* two ways of adding them: ``ed + a_f + a_b`` (the score's first version)
  and ``ed + a_f² + a_b²`` (the score now).

It counts, over all pairs of flows of a task, how often each sum orders them
as the truth does, and how often its best flow is the truth's best. With
``--cv``, it also runs ``cross_val_score(est, X, y, cv=3)`` (the estimator's
own ``score``) for ``minibatch_ot`` and ``brenier`` and reports which one a
cross-validated choice of ``init`` would take. Prints tables, writes JSON.

Usage::

    python benchmarks/bench_score_ranking.py --cv --out benchmarks/results/bench_score_ranking.json
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np
import torch
from sklearn.model_selection import cross_val_score

from skqflow import OTFlowTransformer, stack
from skqflow._torch.criteria import antisymmetric_share, push_forward_fit
from skqflow._transport import torch_view
from skqflow.datasets import (
    checkerboard_contains,
    make_convex_map_pair,
    make_gaussian_pair,
    make_moons_checkerboard,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _baselines import machine_info, relative_map_error, save_json  # noqa: E402

SUMS = {
    "linear": lambda ed, af, ab: ed + af + ab,
    "squared": lambda ed, af, ab: ed + af**2 + ab**2,
}


def tasks(names):
    """(name, rows, seed, training rows, fresh rows, truth function, higher truth is better)."""
    for name in names:
        if name == "checkerboard":
            X_p, X_q = make_moons_checkerboard(4000, random_state=0)
            F_p, F_q = make_moons_checkerboard(2000, random_state=100)
            yield name, 4000, 0, (X_p, X_q), (F_p, F_q), _share_in_squares(F_p), True
            continue
        kind, d, n = {"gaussian500": ("gauss", 2, 500), "gaussian2000": ("gauss", 2, 2000),
                      "convex2": ("convex", 2, 4000), "convex8": ("convex", 8, 4000)}[name]
        make = make_gaussian_pair if kind == "gauss" else make_convex_map_pair
        for seed in range(5 if kind == "gauss" else 2):
            pair = make(d, random_state=seed)
            X_p, X_q = pair.sample(n, random_state=seed + 1)
            F_p, F_q = pair.sample(2000, random_state=99)
            yield name, n, seed, (X_p, X_q), (F_p, F_q), _map_error(F_p, pair.ot_map(F_p)), False


def _share_in_squares(F_p):
    return lambda est: float(np.mean(checkerboard_contains(est.transform(F_p))))


def _map_error(F_p, T):
    return lambda est: relative_map_error(est.transform(F_p), T, F_p)


def parts(est, F_p, F_q):
    """Energy distances and the two shares, standardised units (the score's parts)."""
    fmap, scaler = torch_view(est)
    zp, zq = scaler.to_tensor(F_p), scaler.to_tensor(F_q)
    return (float(push_forward_fit(fmap, zp, zq)), float(antisymmetric_share(fmap, zp, 0.0, 1.0)),
            float(antisymmetric_share(fmap, zq, 1.0, 0.0)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["gaussian500", "gaussian2000", "convex2", "convex8", "checkerboard"])
    ap.add_argument("--inits", nargs="+", default=["minibatch_ot", "brenier", "block_ot", "linear"])
    ap.add_argument("--cv", action="store_true", help="also cross-validate the choice between minibatch_ot and brenier")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows, cases = [], []
    print("| task | seed | init | truth | ed | a_f | a_b | linear sum | squared sum | cv score | fit |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, seed, (X_p, X_q), (F_p, F_q), truth, higher in tasks(args.tasks):
        X, y = stack(X_p, X_q)
        case = []
        for init in args.inits:
            start = time.perf_counter()
            est = OTFlowTransformer(init=init, random_state=0).fit(X, y)
            seconds = time.perf_counter() - start
            ed, af, ab = parts(est, F_p, F_q)
            cv = None
            if args.cv and init in ("minibatch_ot", "brenier"):
                cv = float(cross_val_score(OTFlowTransformer(init=init, random_state=0), X, y, cv=3).mean())
            row = {"task": name, "rows": n, "seed": seed, "init": init, "truth": truth(est), "ed": ed, "a_f": af,
                   "a_b": ab, **{s: f(ed, af, ab) for s, f in SUMS.items()}, "cv_score": cv, "seconds": seconds}
            rows.append(row)
            case.append(row)
            cv_text = "" if cv is None else f"{cv:.4f}"
            print(f"| {name} | {seed} | {init} | {row['truth']:.4f} | {ed:.4f} | {af:.3f} | {ab:.3f} | "
                  f"{row['linear']:.4f} | {row['squared']:.4f} | {cv_text} | {seconds:.0f} s |", flush=True)
        cases.append((name, higher, case))
    print("\n| task | pairs of flows | ordered as the truth: linear / squared | best flow found: linear / squared "
          "| cv choice right | map error or share: cv choice / best of the two |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    summary = {}
    for name in args.tasks:
        sel = [(h, c) for t, h, c in cases if t == name]
        n_pairs, agree, best, cv_right, cv_truth, best_truth = 0, {s: 0 for s in SUMS}, {s: 0 for s in SUMS}, 0, [], []
        for higher, case in sel:
            sign = -1.0 if higher else 1.0  # lower is better after the sign
            for a, b in itertools.combinations(case, 2):
                if a["truth"] == b["truth"]:
                    continue
                n_pairs += 1
                for s in SUMS:
                    agree[s] += (sign * a["truth"] < sign * b["truth"]) == (a[s] < b[s])
            true_best = min(case, key=lambda r: sign * r["truth"])
            for s in SUMS:
                best[s] += min(case, key=lambda r: r[s]) is true_best
            pair = [r for r in case if r["cv_score"] is not None]
            if len(pair) == 2:
                chosen = max(pair, key=lambda r: r["cv_score"])
                right = min(pair, key=lambda r: sign * r["truth"])
                cv_right += chosen is right
                cv_truth.append(chosen["truth"])
                best_truth.append(right["truth"])
        cv_text = f"{cv_right}/{len(cv_truth)}" if cv_truth else ""
        means = f"{np.mean(cv_truth):.4f} / {np.mean(best_truth):.4f}" if cv_truth else ""
        print(f"| {name} | {n_pairs} | {agree['linear']} / {agree['squared']} | {best['linear']}/{len(sel)} / "
              f"{best['squared']}/{len(sel)} | {cv_text} | {means} |")
        summary[name] = {"pairs": n_pairs, "agree": agree, "best_found": best, "cases": len(sel),
                         "cv_right": cv_right, "cv_choice_truth": cv_truth, "best_of_two_truth": best_truth}
    if args.out:
        save_json(args.out, {"machine": machine_info(), "args": vars(args), "rows": rows, "summary": summary})
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
