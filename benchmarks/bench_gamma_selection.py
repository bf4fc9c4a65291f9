"""Benchmark: can ``GridSearchCV`` choose ``gamma`` with the estimator's own score? (issue 13, item 6)

In the paper's setting, where the refinement has real work to do (an initial
flow on independent pairs, ``init="linear"``, far from optimal; d=8), it runs

* ``GridSearchCV(OTFlowTransformer(init="linear", max_iter=2, ...), {"gamma": grid}, cv=3)``
  with the estimator's own label-free ``score`` on the stacked rows;
* each ``gamma`` of the grid fitted on all rows, scored on 1000 fresh rows of
  P by the relative map error ``mean ||T^(x) - T*(x)|| / ||T*(x) - x||``
  against the exact OT map ``T*`` (held-out truth the search never sees), and
  by the same error at mid-path, the flow's ``interpolate(x, 0.5)`` against
  the displacement interpolation ``(x + T*(x)) / 2`` (what the path cost
  weighted by ``gamma`` acts on: the endpoint map alone does not see it);
* baselines in the same run: the initial flow alone (``max_iter=0``), the
  estimator's defaults (minibatch-OT flow matching, no refinement) and the
  closed-form Gaussian (Bures) plug-in map of the samples.

and says whether (a) some ``gamma`` beats the grid's smallest on map error
(the refinement's W2 term doing its job) and (b) the search's choice is
within 10% of the grid's best map error.

Usage (one torch thread; about 20 minutes on two cores)::

    python benchmarks/bench_gamma_selection.py --out benchmarks/results/bench_gamma_selection.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skqflow import OTFlowTransformer, stack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _baselines import gaussian_plug_in_map, refinement_task, relative_map_error  # noqa: E402


def fit_only_score(est, X, y):
    """The score's fit part alone: minus the two energy distances, in units of X (the score before item 6)."""
    from skqflow._base import split_domains
    from skqflow._torch.criteria import push_forward_fit
    from skqflow._transport import torch_view

    _, X_p, X_q = split_domains(X, y, min_rows=1)
    fmap, scaler = torch_view(est)
    return -float(push_forward_fit(fmap, scaler.to_tensor(X_p), scaler.to_tensor(X_q))) * scaler.scale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--n", type=int, default=4000, help="rows a side")
    ap.add_argument("--shift", type=float, default=1.5)
    ap.add_argument("--eig-range", type=float, nargs=2, default=(0.5, 2.0),
                    help="eigenvalue range of both covariances (wider: independent pairs farther from OT)")
    ap.add_argument("--gammas", default="0,0.003,0.03,0.3")
    ap.add_argument("--cv", type=int, default=3)
    ap.add_argument("--init-steps", type=int, default=150)
    ap.add_argument("--init-batch", type=int, default=512)
    ap.add_argument("--max-iter", type=int, default=2)
    ap.add_argument("--refine-learning-rate", type=float, default=2e-4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    gammas = [float(g) for g in args.gammas.split(",")]
    pair, X_p, X_q, X_t, _ = refinement_task(args.d, args.n, args.shift, args.eig_range)
    T_star = pair.ot_map(X_t)
    X, y = stack(X_p, X_q)

    def map_error(mapped):
        return relative_map_error(mapped, T_star, X_t)

    paper = OTFlowTransformer(
        init="linear", init_steps=args.init_steps, batch_size=args.init_batch, max_iter=args.max_iter,
        refine_epochs=5, refine_learning_rate=args.refine_learning_rate, random_state=0,
    )
    rows = []
    print(f"d={args.d}, {args.n} rows a side, shift {args.shift}, exact W2^2 {pair.w2_squared:.3f}; "
          f"grid {gammas}, cv={args.cv}", flush=True)

    start = time.perf_counter()
    # the estimator's own score chooses (refit); the fit part alone (the score before issue 13
    # item 6: minus the energy distances, without the map's asymmetry) is recorded beside it
    scoring = {"score": lambda est, X_, y_: est.score(X_, y_), "fit_only": fit_only_score}
    search = GridSearchCV(paper, {"gamma": gammas}, cv=args.cv, scoring=scoring, refit="score").fit(X, y)
    search_s = time.perf_counter() - start
    params = [p["gamma"] for p in search.cv_results_["params"]]
    cv_scores = dict(zip(params, search.cv_results_["mean_test_score"]))
    cv_fit = dict(zip(params, search.cv_results_["mean_test_fit_only"]))
    chosen = search.best_params_["gamma"]
    chosen_by_fit = max(cv_fit, key=cv_fit.get)

    print("| flow | map error (1000 fresh rows) | mid-path error | cross-validated score | fit part alone | "
          "map asymmetry | transport cost | fit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    midpoint = (X_t + T_star) / 2

    def add(name, mapped, seconds, gamma=None, cost=None, middle=None, asym=None):
        mid = None if middle is None else float(np.mean(
            np.linalg.norm(middle - midpoint, axis=1) / np.linalg.norm(T_star - X_t, axis=1)))
        row = {"flow": name, "gamma": gamma, "map_error": map_error(mapped), "mid_path_error": mid,
               "cv_score": cv_scores.get(gamma), "cv_fit_only": cv_fit.get(gamma), "map_asymmetry": asym,
               "transport_cost": cost, "fit_s": seconds}
        rows.append(row)

        def fmt(v, spec):
            return "" if v is None else format(v, spec)

        print(f"| {name} | {row['map_error']:.3f} | {fmt(mid, '.3f')} | {fmt(row['cv_score'], '.4f')} | "
              f"{fmt(row['cv_fit_only'], '.4f')} | {fmt(asym, '.3f')} | {fmt(cost, '.2f')} | {seconds:.0f} s |",
              flush=True)
        return row

    for name, est in (("initial flow alone (linear, max_iter=0)", clone(paper).set_params(max_iter=0)),
                      ("defaults (minibatch OT, no refinement)", OTFlowTransformer(random_state=0))):
        start = time.perf_counter()
        est.fit(X, y)
        add(name, est.transform(X_t), time.perf_counter() - start, cost=est.transport_cost(X_t),
            middle=est.interpolate(X_t, 0.5), asym=est.map_asymmetry(X_t))
    start = time.perf_counter()
    T_plug = gaussian_plug_in_map(X_p, X_q)
    add("Gaussian plug-in (Bures) map", T_plug(X_t), time.perf_counter() - start, middle=(X_t + T_plug(X_t)) / 2)
    by_gamma = {}
    for gamma in gammas:
        est = clone(paper).set_params(gamma=gamma)
        start = time.perf_counter()
        est.fit(X, y)
        by_gamma[gamma] = add(f"paper's setting, gamma {gamma}", est.transform(X_t), time.perf_counter() - start,
                              gamma, est.transport_cost(X_t), est.interpolate(X_t, 0.5), est.map_asymmetry(X_t))
    errors = {g: r["map_error"] for g, r in by_gamma.items()}
    best = min(errors, key=errors.get)
    smallest = min(gammas)
    beats_smallest = [g for g in gammas if errors[g] < errors[smallest]]
    within = errors[chosen] <= 1.1 * errors[best]
    summary = {
        "chosen_gamma": chosen, "chosen_map_error": errors[chosen], "best_gamma": best,
        "best_map_error": errors[best], "gammas_beating_smallest": beats_smallest,
        "chosen_within_10pct_of_best": within, "search_seconds": search_s,
        "chosen_by_fit_part_alone": chosen_by_fit, "fit_part_alone_map_error": errors[chosen_by_fit],
    }
    print(f"\nGridSearchCV chose gamma={chosen} (map error {errors[chosen]:.3f}); best of the grid: "
          f"gamma={best} ({errors[best]:.3f}); within 10%: {within}; gammas beating the smallest "
          f"({smallest}): {beats_smallest or 'none'}; search {search_s:.0f} s; the fit part alone "
          f"would choose gamma={chosen_by_fit} ({errors[chosen_by_fit]:.3f})")
    payload = {
        "command": "python benchmarks/bench_gamma_selection.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} 2-core CPU, 1 torch thread",
        "torch": torch.__version__, "config": vars(args), "summary": summary, "rows": rows,
    }
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(payload, fh, indent=1, default=str)
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
