"""Benchmark: log density ratio between two samples with an exact log ratio (paper section 4.2).

``--task mixture`` (default), ``skqflow.datasets.make_gaussian_mixture_pair()``:
2-D, P has three components and Q two, partly overlapping. ``--task gaussian``
and ``gaussian8``: ``make_gaussian_pair(n_features=2 or 8)``, Gaussians shifted
and stretched. Each pair has the exact ``log q(x) - log p(x)``
(``pair.log_ratio``). Every method is fitted on ``--n-samples`` rows of each
side and scored on ``--n-test`` fresh rows of P and ``--n-test`` fresh rows
of Q against the exact log-ratio.

Methods (table rows)
--------------------
``skqflow``    ``InfinitesimalDensityRatio(random_state=seed, **params)``
               ``.fit(*stack(X_p, X_q)).predict_log_ratio(X)`` (``--param``
               forwarded to it, ``--flow-param`` to an ``OTFlowTransformer``
               passed as its ``flow``).
``one_ratio``  one classifier: skqflow's time-score net trained on P against
               Q alone (``_baselines.telescoping_log_ratio(waymarks="none")``).
``tre``        telescoping with linear waymarks: the same net on snapshots of
               ``sqrt(1 - a^2) x0 + a x1``, ``a = k / L`` (``--tre-intervals``).
               Both ratio baselines use skqflow's ratio-net defaults (3x256
               Softplus, batch 256, Adam 1e-3 cosine-decayed, Gauss quadrature,
               last epoch, no held-out split) and ``--ratio-epochs``
               epochs, or, for the methods in ``--match-time``, as many
               epochs as fit in skqflow's measured fit time
               (``_baselines.epochs_for_time``).
``ulsif``      uLSIF (Kanamori et al. 2009) with Gaussian kernels at
               ``--ulsif-centers`` centres drawn from Q, width and ridge by
               closed-form leave-one-out CV; ``r = q/p`` is a non-negative
               kernel sum, clipped at ``--ulsif-min-ratio`` before the log
               (the JSON reports how many test rows were clipped).

Metrics: mean absolute error (``mae``) and maximum absolute error (``max``)
of the log-ratio on the test rows of P, of Q and of both pooled; fit
wall-clock seconds (each fit runs in this process). The JSON also has the
median and RMS errors. Goal: skqflow has the smallest pooled MAE.

Run (from the repository root)::

    python benchmarks/bench_density_ratio.py

equivalently ``--n-samples 10000 --n-test 5000 --seed 0``. Results go to
``benchmarks/results/bench_density_ratio.json`` and ``.txt`` (``--out``).
Smoke test (tiny data and training; writes ``bench_density_ratio_quick.*``)::

    python benchmarks/bench_density_ratio.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, _HERE):  # run from a checkout without installing skqflow
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _baselines as B  # noqa: E402

METHODS = ("skqflow", "one_ratio", "tre", "ulsif")
COLUMNS = (
    ("method", 10),
    ("mae_P", 8),
    ("max_P", 8),
    ("mae_Q", 8),
    ("max_Q", 8),
    ("mae_all", 8),
    ("max_all", 8),
    ("fit_s", 8),
    ("note", 0),
)


#: Tasks: name -> (description, builder of the pair from --pair-seed).
TASKS = {
    "mixture": "2-D Gaussian mixtures, P three components, Q two (make_gaussian_mixture_pair)",
    "gaussian": "2-D Gaussians, shifted and stretched (make_gaussian_pair(n_features=2))",
    "gaussian8": "8-D Gaussians, shifted and stretched (make_gaussian_pair(n_features=8))",
}


def make_pair(task, pair_seed):
    from skqflow.datasets import make_gaussian_mixture_pair, make_gaussian_pair

    if task == "mixture":
        return make_gaussian_mixture_pair(random_state=pair_seed)
    n_features = {"gaussian": 2, "gaussian8": 8}[task]
    return make_gaussian_pair(n_features=n_features, random_state=0 if pair_seed is None else pair_seed)


def make_data(n, n_test, seed, pair_seed, task="mixture"):
    pair = make_pair(task, pair_seed)
    X_p, X_q = pair.sample(n, random_state=seed)
    E_p, E_q = pair.sample(n_test, random_state=seed + 1)
    return pair, X_p, X_q, E_p, E_q


def errors(est, truth, n_p):
    """MAE, max, median and RMS absolute error on the P rows, the Q rows and all."""
    err = np.abs(np.asarray(est, dtype=float) - truth)
    out = {}
    for name, e in (("P", err[:n_p]), ("Q", err[n_p:]), ("all", err)):
        out.update(
            {
                f"mae_{name}": float(np.mean(e)),
                f"max_{name}": float(np.max(e)),
                f"median_{name}": float(np.median(e)),
                f"rmse_{name}": float(np.sqrt(np.mean(e**2))),
            }
        )
    return out


def run_method(method, args, params, X_p, X_q, E, seed, target_time):
    rec = {}
    if method == "skqflow":
        from skqflow import InfinitesimalDensityRatio, stack

        est, dropped = B.make_skqflow_estimator(
            InfinitesimalDensityRatio,
            random_state=seed,
            params=params["user"],
            flow_params=params["flow"],
            quick=params["quick"],
        )
        X, y = stack(X_p, X_q)
        t0 = time.perf_counter()
        est.fit(X, y)
        rec["fit_time_s"] = time.perf_counter() - t0
        pred = est.predict_log_ratio(E)
        rec.update(params=est.get_params(deep=True), quick_params_dropped=dropped)
        rec.update(kept=getattr(est, "method_", None), held_out_loss=getattr(est, "held_out_loss_", None))
    elif method in ("one_ratio", "tre"):
        kw = dict(
            n_intervals=args.tre_intervals,
            waymarks="linear" if method == "tre" else "none",
            hidden_layer_sizes=tuple(args.ratio_hidden),
            n_epochs=args.ratio_epochs,
            batch_size=args.ratio_batch_size,
            lr=args.ratio_lr,
            quadrature=args.ratio_quadrature,
            validation_fraction=args.ratio_validation_fraction,
        )
        if target_time is not None:
            kw["n_epochs"], cal = B.epochs_for_time(X_p, X_q, target_time, random_state=seed, **kw)
            rec.update(calibration=cal, matched_to_s=target_time)
        pred, rec["fit_time_s"] = B.telescoping_log_ratio(X_p, X_q, E, random_state=seed, **kw)
        rec.update(n_epochs=kw["n_epochs"], n_intervals=kw["n_intervals"] if method == "tre" else 1)
    elif method == "ulsif":
        t0 = time.perf_counter()
        pred, info = B.ulsif_log_ratio(
            X_p,
            X_q,
            E,
            n_centers=args.ulsif_centers,
            min_ratio=args.ulsif_min_ratio,
            random_state=seed,
            return_params=True,
        )
        # Fit and prediction are one call; prediction at a few thousand rows
        # and 200 centres is a negligible part of it.
        rec["fit_time_s"] = time.perf_counter() - t0
        rec["ulsif"] = info
    else:
        raise ValueError(f"unknown method {method!r}")
    return rec, np.asarray(pred, dtype=float)


def table_header():
    head = "  ".join(n.ljust(w) if n in ("method", "note") else n.rjust(w) for n, w in COLUMNS)
    return head.rstrip() + "\n" + "-" * len(head.rstrip())


def table_row(rec, budget):
    if "error" in rec:
        return f"{rec['method']:<10}  {rec.get('status', 'FAILED')}"
    cells = [f"{rec['method']:<10}"] + [
        f"{rec[k]:>8.4f}" for k in ("mae_P", "max_P", "mae_Q", "max_Q", "mae_all", "max_all")
    ]
    flag = "!" if budget and rec["fit_time_s"] > budget else ""
    cells.append(f"{rec['fit_time_s']:>8.1f}{flag}")
    note = f"kept: {rec['kept']}" if rec.get("kept") else ""
    if "n_epochs" in rec:
        note = f"{rec['n_epochs']} epochs" + (" (time-matched)" if "matched_to_s" in rec else "")
    if "ulsif" in rec:
        u = rec["ulsif"]
        note = f"sigma={u['sigma']:.3g} lambda={u['lambda']:.3g} clipped={u['n_clipped']}"
    cells.append(note)
    return "  ".join(cells).rstrip()


def _csv(cast):
    def parse(text):
        return [cast(v.strip()) for v in text.split(",") if v.strip()]

    return parse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-samples", type=int, help="training rows per side (default 10000; quick: 500)")
    ap.add_argument("--n-test", type=int, help="test rows per side (default 5000; quick: 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task", choices=sorted(TASKS), default="mixture", help="the pair P, Q (default mixture)")
    ap.add_argument(
        "--pair-seed",
        type=int,
        default=None,
        help="random_state of make_gaussian_mixture_pair (default: its fixed configuration)",
    )
    ap.add_argument(
        "--methods", type=_csv(str), default=list(METHODS), help=f"comma-separated subset of {METHODS}"
    )
    ap.add_argument(
        "--param",
        type=B.parse_param,
        action="append",
        default=[],
        help="key=value (JSON value) for InfinitesimalDensityRatio; repeatable",
    )
    ap.add_argument(
        "--flow-param",
        type=B.parse_param,
        action="append",
        default=[],
        help="key=value for the OTFlowTransformer passed as its flow; repeatable",
    )
    ap.add_argument(
        "--match-time",
        type=_csv(str),
        default=["none"],
        help="ratio baselines (tre, one_ratio) whose epochs match skqflow's fit time (default none)",
    )
    ap.add_argument("--ratio-epochs", type=int, help="epochs of the ratio baselines (default 50; quick: 2)")
    ap.add_argument("--tre-intervals", type=int, help="TRE waymark intervals (default 10; quick: 4)")
    ap.add_argument(
        "--ratio-hidden", type=_csv(int), help="ratio-net widths (default 256,256,256; quick: 32,32)"
    )
    ap.add_argument("--ratio-batch-size", type=int, default=256)
    ap.add_argument("--ratio-lr", type=float, default=1e-3)
    ap.add_argument("--ratio-quadrature", choices=("gauss", "simpson"), default="gauss")
    ap.add_argument("--ratio-validation-fraction", type=float, default=0.1)
    ap.add_argument("--ulsif-centers", type=int, default=200)
    ap.add_argument(
        "--ulsif-min-ratio",
        type=float,
        default=1e-6,
        help="floor of the uLSIF ratio before the log (default 1e-6, log -13.8)",
    )
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds per fit (informational: recorded, slower fits marked '!')",
    )
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads for the run")
    ap.add_argument("--quick", action="store_true", help="smoke test: 500 rows, tiny training")
    ap.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/bench_density_ratio.json)"
    )
    args = ap.parse_args(argv)

    methods = list(dict.fromkeys(args.methods))
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; choose from {METHODS}")
    match = [] if args.match_time == ["none"] else args.match_time
    q = args.quick
    args.n_samples = args.n_samples or (500 if q else 10000)
    args.n_test = args.n_test or (300 if q else 5000)
    args.ratio_epochs = args.ratio_epochs or (2 if q else 50)
    args.tre_intervals = args.tre_intervals or (4 if q else 10)
    args.ratio_hidden = args.ratio_hidden or ([32, 32] if q else [256, 256, 256])
    params = {"quick": q, "user": dict(args.param), "flow": dict(args.flow_param)}
    name = "bench_density_ratio_quick" if q else "bench_density_ratio"
    out = args.out or os.path.join(_HERE, "results", name + ".json")
    txt = os.path.splitext(out)[0] + ".txt"

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    skq_status = None
    if "skqflow" in methods:
        try:
            from skqflow import InfinitesimalDensityRatio, stack  # noqa: F401
        except Exception as exc:  # noqa: BLE001
            skq_status = f"skqflow unavailable ({type(exc).__name__}: {exc})"

    pair, X_p, X_q, E_p, E_q = make_data(args.n_samples, args.n_test, args.seed, args.pair_seed, args.task)
    E = np.concatenate([E_p, E_q])
    truth = pair.log_ratio(E)
    machine = B.machine_info()
    config = {
        "n_samples": args.n_samples,
        "n_test": args.n_test,
        "seed": args.seed,
        "task": args.task,
        "pair_seed": args.pair_seed,
        "methods": methods,
        "match_time": match,
        "skqflow_params": params,
        "ratio_epochs": args.ratio_epochs,
        "tre_intervals": args.tre_intervals,
        "ratio_hidden": args.ratio_hidden,
        "ratio_batch_size": args.ratio_batch_size,
        "ratio_lr": args.ratio_lr,
        "ratio_quadrature": args.ratio_quadrature,
        "ratio_validation_fraction": args.ratio_validation_fraction,
        "ulsif_centers": args.ulsif_centers,
        "ulsif_min_ratio": args.ulsif_min_ratio,
        "time_budget_s": args.time_budget,
        "quick": q,
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    truth_summary = {
        side: {"min": float(t.min()), "median": float(np.median(t)), "max": float(t.max())}
        for side, t in (("P", truth[: len(E_p)]), ("Q", truth[len(E_p) :]))
    }
    lines = [
        (
            f"# log-ratio benchmark, task {args.task} ({TASKS[args.task]}): n={args.n_samples} rows a side, "
            f"{args.n_test} test rows a side, seed={args.seed}, {machine['cpu_count']} CPUs, "
            f"torch {machine.get('torch')} ({torch.get_num_threads()} threads), {machine['date']}"
        ),
        "# true log q/p on test rows: "
        + "; ".join(
            f"{s}: {v['min']:.1f} .. {v['median']:.1f} (median) .. {v['max']:.1f}"
            for s, v in truth_summary.items()
        ),
        (
            f"# ratio baselines: {args.ratio_hidden} net, batch {args.ratio_batch_size}, lr {args.ratio_lr}, "
            f"TRE {args.tre_intervals} intervals, epochs matched to skqflow for {match or 'none'} "
            f"else {args.ratio_epochs}"
        ),
    ]
    if q or params["user"] or params["flow"]:
        lines.append(
            f"# skqflow: --param {params['user']} --flow-param {params['flow']}"
            + (f"; quick settings {B.QUICK_RATIO_PARAMS}, flow {B.QUICK_FLOW_PARAMS}" if q else "")
        )
    if skq_status:
        lines.append(f"# {skq_status}; running the baselines only")
    lines.append(table_header())
    print("\n".join(lines), flush=True)

    records, notes, t_start = {}, [], time.perf_counter()
    # skqflow first: its fit time sets the epochs of the time-matched baselines.
    for method in sorted(methods, key=lambda m: m != "skqflow"):
        if method == "skqflow" and skq_status:
            records[method] = {"method": method, "error": skq_status, "status": "unavailable"}
            continue
        skq = records.get("skqflow", {})
        target = skq.get("fit_time_s") if (method in match and "error" not in skq) else None
        print(f"[{method} ...]", file=sys.stderr, flush=True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rec, pred = run_method(method, args, params, X_p, X_q, E, args.seed, target)
            rec = {"method": method, **rec, **errors(pred, truth, len(E_p))}
            rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
        except Exception as exc:  # noqa: BLE001 - report and go on
            rec = {
                "method": method,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc().strip().splitlines()[-6:],
            }
            notes.append(f"{method}: {rec['error']}")
        if rec.get("warnings"):
            notes.append(f"{method} warnings: " + "; ".join(rec["warnings"]))
        records[method] = rec
        _save(out, txt, machine, config, truth_summary, records, lines, notes, time.perf_counter() - t_start)

    rows = [table_row(records[m], args.time_budget) for m in methods]
    print("\n".join(rows))
    lines += rows
    ok = {m: r["mae_all"] for m, r in records.items() if "mae_all" in r}
    footer = (
        [""]
        + notes
        + [
            "",
            "mae/max: mean/maximum |estimated - true log q/p| on the test rows of P, of Q and of both (all).",
            "fit_s: fit seconds ('!' over --time-budget).",
        ]
    )
    if "skqflow" in ok and len(ok) > 1:
        best = min(ok, key=ok.get)
        footer.append(
            f"goal (skqflow has the smallest pooled MAE): {'ok' if best == 'skqflow' else 'MISS'} "
            f"(smallest: {best} {ok[best]:.4f}; skqflow {ok['skqflow']:.4f})"
        )
    print("\n".join(footer))
    lines += footer
    _save(out, txt, machine, config, truth_summary, records, lines, notes, time.perf_counter() - t_start)
    print(f"saved {out} and {txt}")
    return 1 if any("error" in r and r.get("status") != "unavailable" for r in records.values()) else 0


def _save(out, txt, machine, config, truth_summary, records, lines, notes, elapsed):
    B.save_json(
        out,
        {
            "machine": machine,
            "config": config,
            "elapsed_s": elapsed,
            "true_log_ratio": truth_summary,
            "results": list(records.values()),
            "notes": notes,
        },
    )
    B.save_text(txt, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
