"""Benchmark: mutual information in growing dimension (the paper's figure 3, CPU scale).

Tasks (``skqflow.datasets.make_mutual_info_pair(n_features=d, kind=task)``),
each with a known MI of ``d / 4`` nats between ``X`` (d/2 columns) and ``y``
(d/2 columns):

``gaussian``   the paper's setup: d/2 correlated pairs (x_i, y_i), each a
               bivariate normal with correlation rho, rho set so MI = d/4.
``warped``     the same pairs pushed through elementwise invertible maps
               (MI is invariant under them): non-Gaussian marginals.
``student_t``  a multivariate Student-t with the same true MI.

Methods (table columns)
-----------------------
``skqflow``    ``MutualInformationEstimator(random_state=seed, **params).fit(X, y)``
               (``--param key=value`` is forwarded to it, ``--flow-param
               key=value`` to an ``OTFlowTransformer`` passed as its
               ``flow``); its estimate is
               ``score(X_test, y_test)`` with ``--eval heldout`` (default) and
               ``mutual_info_`` with ``--eval train``; with the copula method
               (the default since 2026-11-30) always ``mutual_info_``, whose
               learned part is cross-fitted (held out) and whose Gaussian
               part is bias-corrected (the held-out score is recorded as
               ``heldout_estimate``).
``tre``        telescoping ratio estimation with linear waymarks, flow-free:
               the same time-score net as skqflow trained on snapshots of
               ``x_t = sqrt(1 - a^2) x0 + a x1`` (``_baselines.telescoping_log_ratio``,
               ``--tre-intervals`` intervals) between P = joint rows ``[X, y]``
               and Q = product rows ``[X, y[perm]]``, each column standardised
               first as skqflow does (``--no-standardize`` to skip). Net
               and training as skqflow's ratio net by default (3x256
               Softplus, batch 256, Adam 1e-3 cosine-decayed, Gauss
               quadrature, last epoch, no held-out split).
``one_ratio``  the same net trained on P against Q alone (one classifier).
``ksg``        Kraskov-Stoegbauer-Grassberger k-NN estimator (``--ksg-k``) on
               the training rows.
``cca``        Gaussian plug-in ``-0.5 sum log(1 - rho_i^2)`` over the sample
               canonical correlations, on the training rows.

For ``tre`` and ``one_ratio`` the MI estimate is ``-mean log q/p`` over joint
rows: ``--n-test`` fresh (held-out) joint rows with ``--eval heldout``
(default), the training joint rows with ``--eval train``.

Same fit time
-------------
The goal is that skqflow is never less accurate than the telescoping
baseline *given the same fit time*. With ``--match-time tre`` (default) the
``tre`` epochs are set at each (task, d) from skqflow's measured fit time:
a two-epoch calibration run (not counted in the fit time, recorded as
``calibration``) measures the set-up time and the time of one epoch, and
``n_epochs = max(1, round((t_skqflow - t_setup) / t_epoch))``
(``_baselines.epochs_for_time``).
Without skqflow, or for methods not listed in ``--match-time``, the ratio
baselines train ``--ratio-epochs`` epochs. The ``goal`` column says ``ok``
when ``|error(skqflow)| <= |error(tre)|``.

Metrics: estimate (nats), signed relative error ``(est - true) / true`` in %,
fit wall-clock seconds (each fit runs in this process, one after another).
A fit slower than ``--time-budget`` (informational; nothing is stopped) is
marked ``!``.

Run (from the repository root; the full grid is hours on 2 cores)::

    python benchmarks/bench_mutual_info.py

equivalently ``--tasks gaussian,warped,student_t --dims 10,20,40,80,160
--n-samples 20000 --n-test 10000``. Results go to
``benchmarks/results/bench_mutual_info.json`` and ``.txt`` (``--out``).
Smoke test (tiny data and training; writes ``bench_mutual_info_quick.*``)::

    python benchmarks/bench_mutual_info.py --quick
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

TASKS = ("gaussian", "warped", "student_t")
METHODS = ("skqflow", "tre", "one_ratio", "ksg", "cca")


# ---------------------------------------------------------------- data
def make_data(task, d, n, n_test, seed):
    from skqflow.datasets import make_mutual_info_pair

    pair = make_mutual_info_pair(n_features=d, kind=task)
    X, y = pair.sample(n, random_state=seed)
    X_te, y_te = pair.sample(n_test, random_state=seed + 1)
    X, y, X_te, y_te = (np.asarray(a, dtype=float) for a in (X, y, X_te, y_te))
    y, y_te = y.reshape(len(y), -1), y_te.reshape(len(y_te), -1)
    return pair, X, y, X_te, y_te


def joint_and_product(X, y, X_te, y_te, seed, standardize):
    """P = joint rows [X, y]; Q = product rows [X, y[perm]] (one permutation); held-out joint rows.

    With ``standardize`` every column is centred and scaled by its training
    mean and standard deviation first, as ``MutualInformationEstimator``
    does (MI is unchanged by a separate affine map of each column).
    """
    P, E = np.hstack([X, y]), np.hstack([X_te, y_te])
    if standardize:
        mu, sd = P.mean(0), P.std(0)
        sd[sd == 0] = 1.0
        P, E = (P - mu) / sd, (E - mu) / sd
    dx = X.shape[1]
    perm = np.random.RandomState(seed + 2).permutation(len(P))
    Q = np.hstack([P[:, :dx], P[perm, dx:]])
    return P, Q, E


# ------------------------------------------------------------- methods
def _ratio_kwargs(args, method):
    return dict(
        n_intervals=args.tre_intervals,
        waymarks="linear" if method == "tre" else "none",
        hidden_layer_sizes=tuple(args.ratio_hidden),
        n_epochs=args.ratio_epochs,
        batch_size=args.ratio_batch_size,
        lr=args.ratio_lr,
        quadrature=args.ratio_quadrature,
        validation_fraction=args.ratio_validation_fraction,
    )


def run_ratio_baseline(method, args, data_pair, X, y, X_te, y_te, seed, target_time):
    P, Q, E = joint_and_product(X, y, X_te, y_te, seed, args.standardize)
    E = E if args.eval == "heldout" else P
    kw = _ratio_kwargs(args, method)
    rec = {}
    if target_time is not None:
        kw["n_epochs"], cal = B.epochs_for_time(P, Q, target_time, random_state=seed, **kw)
        rec.update(calibration=cal, matched_to_s=target_time)
    log_qp, fit_time = B.telescoping_log_ratio(P, Q, E, random_state=seed, **kw)
    log_pq = -log_qp
    if args.eval == "heldout":  # pointwise check against the exact log joint/product
        # pair.log_ratio is the exact log product/joint = log q/p
        rec["pointwise_mae"] = float(np.mean(np.abs(log_qp - data_pair.log_ratio(X_te, y_te))))
    rec.update(
        estimate=float(np.mean(log_pq)),
        std_error=float(np.std(log_pq) / np.sqrt(len(log_pq))),
        fit_time_s=fit_time,
        n_epochs=kw["n_epochs"],
        n_intervals=kw["n_intervals"] if method == "tre" else 1,
        n_eval=len(E),
        eval=args.eval,
    )
    return rec


def run_skqflow(args, params, X, y, X_te, y_te, seed):
    from skqflow import MutualInformationEstimator

    est, dropped = B.make_skqflow_estimator(
        MutualInformationEstimator,
        random_state=seed,
        params=params["user"],
        flow_params=params["flow"],
        quick=params["quick"],
    )
    t0 = time.perf_counter()
    est.fit(X, y if y.shape[1] > 1 else y[:, 0])
    fit_time = time.perf_counter() - t0
    rec = {
        "fit_time_s": fit_time,
        "mutual_info_": float(est.mutual_info_),
        "mutual_info_std_": float(getattr(est, "mutual_info_std_", np.nan)),
        "params": est.get_params(deep=True),
        "quick_params_dropped": sorted(dropped),
    }
    try:
        rec["heldout_estimate"] = float(est.score(X_te, y_te if y_te.shape[1] > 1 else y_te[:, 0]))
    except Exception as exc:  # noqa: BLE001 - report, do not stop
        rec["heldout_error"] = f"{type(exc).__name__}: {exc}"
    rec["method_"] = getattr(est, "method_", "flow")
    if rec["method_"] == "copula":
        # the copula's own estimate: its learned part is already held out (cross-fitted)
        # and its closed-form part bias-corrected; a held-out score would add the
        # out-of-sample bias of the Gaussian log-likelihood (about -d_x d_y / (2 n))
        rec.update(
            estimate=rec["mutual_info_"], std_error=rec["mutual_info_std_"], eval="crossfit", n_eval=len(X)
        )
    elif args.eval == "heldout" and "heldout_estimate" in rec:
        rec.update(estimate=rec["heldout_estimate"], eval="heldout", n_eval=len(X_te))
    else:
        rec.update(
            estimate=rec["mutual_info_"], std_error=rec["mutual_info_std_"], eval="train", n_eval=len(X)
        )
    return rec


def run_method(method, args, params, data, seed, target_time):
    pair, X, y, X_te, y_te = data
    if method == "skqflow":
        return run_skqflow(args, params, X, y, X_te, y_te, seed)
    if method in ("tre", "one_ratio"):
        return run_ratio_baseline(method, args, pair, X, y, X_te, y_te, seed, target_time)
    if method == "ksg":
        m = min(len(X), args.ksg_max_n)
        t0 = time.perf_counter()
        est = B.ksg_mutual_info(X[:m], y[:m], k=args.ksg_k, jitter=1e-10, random_state=seed)
        return {"estimate": est, "fit_time_s": time.perf_counter() - t0, "n_eval": m, "eval": "train"}
    if method == "cca":
        t0 = time.perf_counter()
        est = B.gaussian_mutual_info(X, y)
        return {"estimate": est, "fit_time_s": time.perf_counter() - t0, "n_eval": len(X), "eval": "train"}
    raise ValueError(f"unknown method {method!r}")


# --------------------------------------------------------------- table
CELL = 25  # width of one method's block: estimate, error %, seconds


def table_header(methods):
    left = f"{'task':<10} {'d':>4} {'true':>7}"
    top = " " * len(left) + "".join(f" | {m:^{CELL}}" for m in methods) + " |  goal"
    sub = left + "".join(f" | {'est':>8} {'err%':>7} {'s':>8}" for _ in methods) + " |"
    return top + "\n" + sub + "\n" + "-" * len(top)


def table_row(task, d, true, recs, methods, budget):
    cells = [f"{task:<10} {d:>4} {true:>7.2f}"]
    for m in methods:
        r = recs.get(m)
        if r is None:
            cells.append(f"{'-':>{CELL}}")
        elif "error" in r:
            cells.append(f"{r.get('status', 'FAILED'):>{CELL}}")
        else:
            flag = "!" if budget and r["fit_time_s"] > budget else " "
            cells.append(f"{r['estimate']:>8.3f} {100 * r['rel_error']:>+7.1f} {r['fit_time_s']:>7.1f}{flag}")
    goal = _goal(recs)
    return " | ".join(cells) + " | " + (goal or "")


def _goal(recs):
    s, t = recs.get("skqflow"), recs.get("tre")
    if not s or not t or "error" in s or "error" in t:
        return None
    return "ok" if abs(s["rel_error"]) <= abs(t["rel_error"]) else "MISS"


# ---------------------------------------------------------------- main
def _csv(cast):
    def parse(text):
        return [cast(v.strip()) for v in text.split(",") if v.strip()]

    return parse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=_csv(str), default=list(TASKS), help=f"comma-separated subset of {TASKS}")
    ap.add_argument(
        "--dims", type=_csv(int), help="comma-separated even dimensions (default 10,20,40,80,160; quick: 4,8)"
    )
    ap.add_argument("--n-samples", type=int, help="training rows (default 20000; quick: 500)")
    ap.add_argument("--n-test", type=int, help="held-out joint rows (default 10000; quick: 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--methods", type=_csv(str), default=list(METHODS), help=f"comma-separated subset of {METHODS}"
    )
    ap.add_argument(
        "--param",
        type=B.parse_param,
        action="append",
        default=[],
        help="key=value (JSON value) for MutualInformationEstimator; repeatable",
    )
    ap.add_argument(
        "--flow-param",
        type=B.parse_param,
        action="append",
        default=[],
        help="key=value for the OTFlowTransformer passed as its flow; repeatable",
    )
    ap.add_argument(
        "--eval",
        choices=("heldout", "train"),
        default="heldout",
        help="rows the ratio-based estimates average over (default heldout)",
    )
    ap.add_argument(
        "--match-time",
        type=_csv(str),
        default=None,
        help="ratio baselines whose epochs match skqflow's fit time "
        "(default tre; quick: none; 'none' to disable)",
    )
    ap.add_argument(
        "--ratio-epochs", type=int, help="epochs of unmatched ratio baselines (default 50; quick: 2)"
    )
    ap.add_argument("--tre-intervals", type=int, help="TRE waymark intervals (default 10; quick: 4)")
    ap.add_argument(
        "--ratio-hidden", type=_csv(int), help="ratio-net widths (default 256,256,256; quick: 32,32)"
    )
    ap.add_argument("--ratio-batch-size", type=int, default=256)
    ap.add_argument("--ratio-lr", type=float, default=1e-3)
    ap.add_argument("--ratio-quadrature", choices=("gauss", "simpson"), default="gauss")
    ap.add_argument(
        "--ratio-validation-fraction",
        type=float,
        default=0.1,
        help="held-out share of each snapshot for epoch selection, as the estimators do (0: last epoch)",
    )
    ap.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="do not standardise each column before the ratio baselines",
    )
    ap.add_argument("--ksg-k", type=int, default=3)
    ap.add_argument("--ksg-max-n", type=int, default=20000, help="KSG uses at most this many training rows")
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds per fit (informational: recorded, slower fits marked '!')",
    )
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads for the run")
    ap.add_argument("--quick", action="store_true", help="smoke test: dims 4,8, 500 rows, tiny training")
    ap.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/bench_mutual_info.json)"
    )
    args = ap.parse_args(argv)

    for t in args.tasks:
        if t not in TASKS:
            ap.error(f"unknown task {t!r}; choose from {TASKS}")
    methods = list(dict.fromkeys(args.methods))
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; choose from {METHODS}")
    q = args.quick
    if args.match_time is None:
        args.match_time = [] if q else ["tre"]
    match = [] if args.match_time == ["none"] else args.match_time
    dims = args.dims or ([4, 8] if q else [10, 20, 40, 80, 160])
    if any(d % 2 for d in dims):
        ap.error("every dimension must be even (d/2 columns for X and for y)")
    args.n_samples = args.n_samples or (500 if q else 20000)
    args.n_test = args.n_test or (500 if q else 10000)
    args.ratio_epochs = args.ratio_epochs or (2 if q else 50)
    args.tre_intervals = args.tre_intervals or (4 if q else 10)
    args.ratio_hidden = args.ratio_hidden or ([32, 32] if q else [256, 256, 256])
    params = {"quick": q, "user": dict(args.param), "flow": dict(args.flow_param)}
    name = "bench_mutual_info_quick" if q else "bench_mutual_info"
    out = args.out or os.path.join(_HERE, "results", name + ".json")
    txt = os.path.splitext(out)[0] + ".txt"

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    skq_status = None
    if "skqflow" in methods:
        try:
            from skqflow import MutualInformationEstimator  # noqa: F401
        except Exception as exc:  # noqa: BLE001
            skq_status = f"skqflow unavailable ({type(exc).__name__}: {exc})"

    machine = B.machine_info()
    config = {
        "tasks": args.tasks,
        "dims": dims,
        "n_samples": args.n_samples,
        "n_test": args.n_test,
        "seed": args.seed,
        "methods": methods,
        "eval": args.eval,
        "match_time": match,
        "skqflow_params": params,
        "ratio_epochs": args.ratio_epochs,
        "tre_intervals": args.tre_intervals,
        "ratio_hidden": args.ratio_hidden,
        "ratio_batch_size": args.ratio_batch_size,
        "ratio_lr": args.ratio_lr,
        "ratio_quadrature": args.ratio_quadrature,
        "ratio_validation_fraction": args.ratio_validation_fraction,
        "standardize": args.standardize,
        "ksg_k": args.ksg_k,
        "ksg_max_n": args.ksg_max_n,
        "time_budget_s": args.time_budget,
        "quick": q,
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    lines = [
        (
            f"# Mutual information benchmark: n={args.n_samples} training rows, {args.n_test} held-out rows, "
            f"seed={args.seed}, {machine['cpu_count']} CPUs, torch {machine.get('torch')} "
            f"({torch.get_num_threads()} threads), {machine['date']}"
        ),
        (
            f"# ratio baselines: {args.ratio_hidden} net, batch {args.ratio_batch_size}, lr {args.ratio_lr}, "
            f"TRE {args.tre_intervals} intervals, epochs matched to skqflow for {match or 'none'} "
            f"else {args.ratio_epochs}; estimates over {args.eval} rows"
        ),
    ]
    if q or params["user"] or params["flow"]:
        lines.append(
            f"# skqflow: --param {params['user']} --flow-param {params['flow']}"
            + (f"; quick settings {B.QUICK_RATIO_PARAMS}, flow {B.QUICK_FLOW_PARAMS}" if q else "")
        )
    if skq_status:
        lines.append(f"# {skq_status}; running the baselines only")
    lines.append(table_header(methods))
    print("\n".join(lines), flush=True)

    records, notes, t_start = [], [], time.perf_counter()
    for task in args.tasks:
        for d in dims:
            seed = args.seed
            try:
                data = make_data(task, d, args.n_samples, args.n_test, seed)
            except Exception as exc:  # noqa: BLE001
                notes.append(f"{task} d={d}: data generation failed: {type(exc).__name__}: {exc}")
                print(f"{task:<10} {d:>4}  data generation failed: {exc}", flush=True)
                continue
            true = float(data[0].mutual_info)
            try:  # Monte Carlo MI of the held-out rows: the sampling floor of held-out estimates
                oracle = -float(np.mean(data[0].log_ratio(data[3], data[4])))  # log_ratio = log q/p
            except Exception:  # noqa: BLE001
                oracle = None
            recs = {}
            # skqflow first: its fit time sets the epochs of the matched baselines.
            for method in sorted(methods, key=lambda m: m != "skqflow"):
                if method == "skqflow" and skq_status:
                    recs[method] = {"error": skq_status, "status": "unavailable"}
                    continue
                skq = recs.get("skqflow", {})
                target = skq.get("fit_time_s") if (method in match and "error" not in skq) else None
                print(f"[{task} d={d} {method} ...]", file=sys.stderr, flush=True)
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        rec = run_method(method, args, params, data, seed, target)
                    rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
                    rec["rel_error"] = (rec["estimate"] - true) / true
                    rec["abs_rel_error"] = abs(rec["rel_error"])
                except Exception as exc:  # noqa: BLE001 - report and go on
                    rec = {
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc().strip().splitlines()[-6:],
                    }
                recs[method] = rec
            recs = {m: recs[m] for m in methods}
            for method, rec in recs.items():
                records.append(
                    {
                        "task": task,
                        "d": d,
                        "true_mi": true,
                        "oracle_heldout_mi": oracle,
                        "method": method,
                        **rec,
                    }
                )
                if "error" in rec and rec.get("status") != "unavailable":
                    notes.append(f"{task} d={d} {method}: {rec['error']}")
                if rec.get("warnings"):
                    notes.append(f"{task} d={d} {method} warnings: " + "; ".join(rec["warnings"]))
                if "n_epochs" in rec:
                    how = (
                        f"matched to skqflow's {rec['matched_to_s']:.1f}s"
                        if "matched_to_s" in rec
                        else "fixed"
                    )
                    notes.append(f"{task} d={d} {method}: {rec['n_epochs']} epochs ({how})")
            row = table_row(task, d, true, recs, methods, args.time_budget)
            lines.append(row)
            print(row, flush=True)
            _save(out, txt, machine, config, records, lines, notes, time.perf_counter() - t_start)

    goals = [
        r
        for r in (
            _goal({m["method"]: m for m in records if m["task"] == t and m["d"] == d})
            for t in args.tasks
            for d in dims
        )
        if r
    ]
    footer = (
        [""]
        + notes
        + [
            "",
            "est: MI estimate (nats); err%: (est - true) / true; s: fit seconds ('!' over --time-budget).",
            (
                f"skqflow/tre/one_ratio average log p/q over {args.eval} joint rows; "
                f"ksg (k={args.ksg_k}) and cca use the training rows."
            ),
            "goal: ok when |err skqflow| <= |err tre|.",
        ]
    )
    if goals:
        footer.append(f"goal met in {goals.count('ok')} of {len(goals)} (task, d) rows")
    print("\n".join(footer))
    lines += footer
    _save(out, txt, machine, config, records, lines, notes, time.perf_counter() - t_start)
    print(f"saved {out} and {txt}")
    return 1 if any("error" in r and r.get("status") != "unavailable" for r in records) else 0


def _save(out, txt, machine, config, records, lines, notes, elapsed):
    B.save_json(
        out, {"machine": machine, "config": config, "elapsed_s": elapsed, "results": records, "notes": notes}
    )
    B.save_text(txt, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
