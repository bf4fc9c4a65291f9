"""Diagnostic: does the refinement (Algorithm 1) improve a far-from-optimal flow, and why did it
not? (issue 13, items 5 and 6)

Usage::

    python benchmarks/diag_refinement_gamma.py D N GAMMAS [--shift S] [--init-steps K]
        [--init-batch B] [--settings before,after] [--out PATH]

e.g. ``python benchmarks/diag_refinement_gamma.py 8 4000 0.003,0.03,0.3``: a Gaussian pair
(``make_gaussian_pair(D, shift=S)``, default shift 1.5), ``N`` rows a side, an initial flow on
independent pairs (``init="linear"``, ``K`` steps (default 150) in batches of ``B`` (default 512): far from
optimal), then for each gamma and each setting two warm-started refinement rounds of 5 epochs
per direction at ``refine_learning_rate=2e-4``:

``before``
    the classifiers of the package until 2026-11-30 (3 x 256, Adam 3e-3, 2 classifier epochs
    after each flow epoch), kept as trained (``validation_fraction=0``): the table recorded
    in docs/benchmarks.md before the diagnosis.
``after``
    the current defaults of the classifiers, with the held-out keep-best selection of the
    estimator (criterion: energy distances plus ``gamma`` times the transport costs).

Prints, per flow, the map error against the exact OT map on 1000 fresh rows, the label-free
score (minus the symmetric energy distance), the transport cost (kinetic energy, the W2²
estimate) against the exact W2², the refinement record that was kept and the largest
training KL estimate of the classifiers (a memorising classifier reports several nats). The
table also goes to ``benchmarks/results/diag_refinement_gamma_d{D}.json`` (``--out``).
Runs with one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from skqflow import OTFlowTransformer, stack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _baselines import rectified_gaussian_map, refinement_task  # noqa: E402

#: The refinement settings compared (on top of the shared ones below).
SETTINGS = {
    "before": dict(
        classifier_hidden_layer_sizes=(256, 256, 256), classifier_learning_rate=3e-3,
        classifier_inner_epochs=2, validation_fraction=0.0,
    ),
    "after": dict(),  # the estimator's current defaults
}
SHARED = dict(warm_start=True, max_iter=2, refine_epochs=5, refine_learning_rate=2e-4)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("d", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("gammas")
    ap.add_argument("--shift", type=float, default=1.5)
    ap.add_argument("--eig-range", type=float, nargs=2, default=(0.5, 2.0),
                    help="eigenvalue range of both covariances (wider: independent pairs farther from OT)")
    ap.add_argument("--init-steps", type=int, default=150)
    ap.add_argument("--init-batch", default="512", help='batch size of the initial flow, or "auto"')
    ap.add_argument("--settings", default="before,after")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    gammas = [float(g) for g in args.gammas.split(",")]
    pair, X_p, X_q, X_t, Y_t = refinement_task(args.d, args.n, args.shift, args.eig_range)
    T = pair.ot_map(X_t)
    test_X, test_y = stack(X_t, Y_t)
    rows = []

    def report(name, flow, seconds=None, setting=None, gamma=None):
        err = float(np.mean(np.linalg.norm(flow.transform(X_t) - T, axis=1) / np.linalg.norm(T - X_t, axis=1)))
        refine = [r for r in flow.history_ if r["phase"] == "refinement"]
        kept = next((r for r in refine if r.get("kept")), None)
        row = {
            "flow": name, "setting": setting, "gamma": gamma, "map_error": err,
            "score": float(flow.score(test_X, test_y)), "transport_cost": float(flow.transport_cost(X_t)),
            "w2_squared": float(pair.w2_squared), "fit_s": seconds,
            "kept": None if kept is None else f"{kept['direction']} e{kept['epoch']}"
            + ("" if kept["direction"] == "initial" else f" r{kept['round']}"),
            "max_train_kl": max((r["kl"] for r in refine if "kl" in r), default=None),
            "history": [{k: v for k, v in r.items() if k != "phase"} for r in refine],
        }
        rows.append(row)
        kl = "" if row["max_train_kl"] is None else f"{row['max_train_kl']:.2f}"
        print(f"| {name} | {err:.3f} | {row['score']:.4f} | {row['transport_cost']:.2f} | "
              f"{row['kept'] or ''} | {kl} | {'' if seconds is None else f'{seconds:.0f} s'} |", flush=True)

    print(f"d={args.d}, {args.n} rows a side, shift {args.shift}, eigenvalues in {tuple(args.eig_range)}, "
          f"exact W2^2 {pair.w2_squared:.3f}")
    limit = rectified_gaussian_map(pair)  # where init="linear" converges with unlimited data and steps
    R = pair.mean_q + (X_t - pair.mean_p) @ limit.T
    rf_err = float(np.mean(np.linalg.norm(R - T, axis=1) / np.linalg.norm(T - X_t, axis=1)))
    rf_cost = float(np.mean(np.sum((R - X_t) ** 2, axis=1)))
    print(f"exact flow of independent pairs (the limit of init='linear'): map error {rf_err:.3f}, "
          f"endpoint cost {rf_cost:.3f}")
    print("| flow | map error | score | transport cost | kept record | max training KL | fit |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: |")
    base = OTFlowTransformer(init="linear", init_steps=args.init_steps,
        batch_size=args.init_batch if args.init_batch == "auto" else int(args.init_batch), max_iter=0, random_state=0)
    start = time.perf_counter()
    base.fit(*stack(X_p, X_q))
    report(f"initial flow (linear, {args.init_steps} steps)", base, time.perf_counter() - start)
    for setting in args.settings.split(","):
        for gamma in gammas:
            flow = copy.deepcopy(base).set_params(**SHARED, **SETTINGS[setting], gamma=gamma)
            start = time.perf_counter()
            flow.fit(*stack(X_p, X_q))
            report(f"{setting}, gamma {gamma}", flow, time.perf_counter() - start, setting, gamma)

    out = Path(args.out or Path(__file__).parent / "results" / f"diag_refinement_gamma_d{args.d}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python benchmarks/diag_refinement_gamma.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} shared 2-core CPU, 1 torch thread",
        "torch": torch.__version__, "settings": {k: {**SHARED, **v} for k, v in SETTINGS.items()},
        "eig_range": list(args.eig_range), "rectified_limit": {"map_error": rf_err, "endpoint_cost": rf_cost},
        "rows": rows,
    }
    out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
