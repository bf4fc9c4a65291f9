"""Benchmark: OT maps between two Gaussians, skqflow against POT baselines.

Two Gaussians ``P = N(0, S_p)`` and ``Q = N(m_q, S_q)`` have a known optimal
transport (Monge) map ``T*(x) = m_q + A x`` and a known ``W2²``
(``--pair convex``: a Gaussian mixture and its push-forward by the gradient
of a known convex function, :func:`skqflow.datasets.make_convex_map_pair`,
whose OT map is known and non-linear; ``W2²`` by Monte Carlo)
(:func:`skqflow.datasets.make_gaussian_pair`), so the learned maps can be
scored exactly on fresh rows of P.

Methods (table rows)
--------------------
``skqflow linear``
    ``OTFlowTransformer(init="linear")`` fitted on ``skqflow.stack(X_p, X_q)``.
``skqflow minibatch_ot``
    The same with ``init="minibatch_ot"`` (the estimator's default).
``skqflow minibatch_ot_256``
    Plain minibatch-OT flow matching: ``init="minibatch_ot"`` with
    ``coupling_batch_size=256``, one exact assignment per batch of 256 rows
    (the default before groups of up to 2048 rows were paired together).
``skqflow brenier``
    The same with ``init="brenier"`` (a Brenier potential fitted on all rows
    pairs the rows that train the flow).
``POT EMD (barycentric)``
    Exact discrete OT plan ``G`` between the training rows (``ot.emd``,
    uniform weights, squared Euclidean cost); a training row maps to its
    barycentric projection ``n G X_q``; a test row ``x`` maps to
    ``x + T(x_nn) - x_nn`` with ``x_nn`` its nearest training row of P (the
    out-of-sample rule of ``ot.da.EMDTransport.transform``, re-implemented
    here so that the n x n normalised plan is not rebuilt for every batch
    of 128 test rows as ``EMDTransport.transform`` does). Above
    ``--emd-max`` rows a side the plan is fitted on a random subsample.
``POT LinearTransport``
    ``ot.da.LinearTransport`` -- the closed-form Gaussian (Bures) affine map
    from the empirical means and covariances. It is the right model for
    this problem, hence the statistical floor at this sample size.

Metrics (on ``--n-test`` fresh rows of P)
-----------------------------------------
``map_error``        mean of ``||T^(x) - T*(x)|| / ||T*(x) - x||``.
``w2_error``         ``|W2^² - W2²| / W2²``; ``W2^²`` is ``flow.transport_cost``
                     (kinetic energy) for skqflow and the mean of
                     ``||T^(x) - x||²`` for POT (the plan cost ``<G, M>`` of
                     EMD is also saved in the JSON).
``inversion_error``  skqflow only: mean of
                     ``||T^-1(T(x)) - x|| / (||x|| + 1e-12)`` (the absolute
                     RMS round-trip error is in the JSON).
``fit_time_s``       wall clock of the fit alone.
``peak_mem_mb``      peak resident-memory increase during the fit: each
                     (method, d) runs in a fresh subprocess (this script with
                     a hidden ``--single`` flag) and reports ``ru_maxrss``
                     after the fit minus ``ru_maxrss`` after its imports and
                     data generation.

Run (full benchmark, from the repository root; ~minutes per skqflow fit and
a 10000 x 10000 EMD, which needs about 3-4 GB)::

    python benchmarks/bench_gaussian_ot.py

equivalently ``--dims 2 8 32 --n-samples 10000 --n-test 5000 --seed 0``.
Results go to ``benchmarks/results/bench_gaussian_ot.json`` (``--out``).
Smoke test (seconds; writes ``benchmarks/results/bench_gaussian_ot_quick.json``)::

    python benchmarks/bench_gaussian_ot.py --quick

Other options: ``--methods "skqflow minibatch_ot" "POT LinearTransport"``
(short aliases: linear, minibatch_ot, emd, lineartransport), ``--param
key=value`` (repeatable, JSON-parsed value, passed to both skqflow methods,
e.g. ``--param max_iter=0 --param init_steps=2000``), ``--torch-threads``.

Goals (10000 rows a side, 2-core CPU, default OTFlowTransformer parameters)
---------------------------------------------------------------------------
* map error under 0.035 at d=8 and under 0.05 at d=32 (the LinearTransport
  row shows the floor of the sample size);
* each skqflow fit in under 5 minutes;
* inversion error under 1e-4.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:  # run from a checkout without installing skqflow
    sys.path.insert(0, _ROOT)

METHODS = (
    "skqflow linear",
    "skqflow minibatch_ot",
    "skqflow minibatch_ot_256",
    "skqflow brenier",
    "POT EMD (barycentric)",
    "POT LinearTransport",
)
ALIASES = {
    "linear": "skqflow linear",
    "minibatch_ot": "skqflow minibatch_ot",
    "minibatch_ot_256": "skqflow minibatch_ot_256",
    "brenier": "skqflow brenier",
    "emd": "POT EMD (barycentric)",
    "lineartransport": "POT LinearTransport",
    "linear_transport": "POT LinearTransport",
}
QUICK_PARAMS = {
    "init_steps": 30,
    "max_iter": 1,
    "refine_epochs": 1,
    "classifier_epochs": 1,
    "hidden_layer_sizes": [32, 32],
}
#: Parameters of each skqflow method beyond ``random_state`` and ``--param``.
SKQFLOW_PARAMS = {
    "skqflow linear": {"init": "linear"},
    "skqflow minibatch_ot": {"init": "minibatch_ot"},
    "skqflow minibatch_ot_256": {"init": "minibatch_ot", "coupling_batch_size": 256},
    "skqflow brenier": {"init": "brenier"},
}
RESULT_MARKER = "@@BENCH_RESULT@@"
COLUMNS = (
    ("d", 4), ("method", 24), ("map_error", 11), ("w2_error", 11),
    ("inversion_error", 16), ("fit_time_s", 11), ("peak_mem_mb", 12),
)


# ----------------------------------------------------------------- data
def make_data(d, n, n_test, seed, shift=1.0, kind="gaussian"):
    """The pair, training rows of both sides and fresh test rows of P."""
    from skqflow.datasets import make_convex_map_pair, make_gaussian_pair

    if kind == "convex":
        pair = make_convex_map_pair(d, random_state=seed)
    else:
        pair = make_gaussian_pair(d, shift=shift, random_state=seed)
    X_p, X_q = pair.sample(n, random_state=seed + 1)
    X_test, _ = pair.sample(n_test, random_state=seed + 2, n_samples_q=1)
    return pair, X_p, X_q, X_test


# --------------------------------------------------------------- memory
def _maxrss_mb():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _proc_status_mb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return None


def _reset_hwm():
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# -------------------------------------------------------------- metrics
def map_metrics(pair, X_test, T_hat):
    T_star = pair.ot_map(X_test)
    err = np.linalg.norm(T_hat - T_star, axis=1)
    disp = np.linalg.norm(T_star - X_test, axis=1)
    return {
        "map_error": float(np.mean(err / disp)),
        "map_error_median": float(np.median(err / disp)),
        "map_error_rms": float(np.sqrt(np.mean(err**2) / np.mean(disp**2))),
        "displacement_cost": float(np.mean(np.sum((T_hat - X_test) ** 2, axis=1))),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


# ------------------------------------------------------------ one run
def run_single(cfg):
    """Fit one method at one d; return the JSON record (runs in a fresh process)."""
    import ot  # noqa: F401  (imported before the memory baseline)
    import torch

    import skqflow

    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg["torch_threads"]))
    method, d, seed = cfg["method"], cfg["d"], cfg["seed"]
    pair, X_p, X_q, X_test = make_data(
        d, cfg["n"], cfg["n_test"], seed, cfg.get("shift", 1.0), cfg.get("pair", "gaussian")
    )
    w2 = pair.w2_squared
    rec = {
        "method": method, "d": d, "n": cfg["n"], "n_test": cfg["n_test"], "seed": seed,
        "shift": cfg.get("shift", 1.0),
        "w2_squared_true": w2, "torch_threads": torch.get_num_threads(),
    }

    # Inputs prepared before the baseline so only the fit's memory is counted.
    if method.startswith("skqflow"):
        params = {**SKQFLOW_PARAMS[method], "random_state": seed, **cfg["params"]}
        flow = skqflow.OTFlowTransformer(**params)
        X, y = skqflow.stack(X_p, X_q)
    elif method == "POT EMD (barycentric)":
        m = min(cfg["n"], cfg["emd_max"])
        if m < cfg["n"]:
            sub = np.random.RandomState(seed + 3)
            Xs = X_p[sub.choice(cfg["n"], m, replace=False)]
            Xt = X_q[sub.choice(cfg["n"], m, replace=False)]
        else:
            Xs, Xt = X_p, X_q
        rec["n_fit"] = m
        rec["subsampled"] = m < cfg["n"]
    elif method == "POT LinearTransport":
        pass
    else:
        raise ValueError(f"unknown method {method!r}")

    base_maxrss = _maxrss_mb()
    base_rss = _proc_status_mb("VmRSS")
    hwm_ok = _reset_hwm()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        if method.startswith("skqflow"):
            flow.fit(X, y)
        elif method == "POT EMD (barycentric)":
            M = ot.dist(Xs, Xt)  # squared Euclidean
            G, log = ot.emd(
                ot.unif(len(Xs)), ot.unif(len(Xt)), M,
                numItermax=cfg["emd_numitermax"], numThreads=cfg["emd_threads"], log=True,
            )
            T_train = len(Xs) * (G @ Xt)  # barycentric projection (uniform weights)
            del M, G
        else:
            lin = ot.da.LinearTransport().fit(Xs=X_p, Xt=X_q)
        fit_time = time.perf_counter() - t0

    rec["fit_time_s"] = fit_time
    rec["peak_mem_mb"] = max(_maxrss_mb() - base_maxrss, 0.0)
    hwm = _proc_status_mb("VmHWM")
    if hwm_ok and hwm is not None and base_rss is not None:
        rec["peak_mem_mb_hwm"] = hwm - base_rss  # peak RSS during fit - RSS at its start
    rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})

    t0 = time.perf_counter()
    if method.startswith("skqflow"):
        T_hat = flow.transform(X_test)
        rec["transform_time_s"] = time.perf_counter() - t0
        back = flow.inverse_transform(T_hat)
        rt = np.linalg.norm(back - X_test, axis=1)
        w2_hat = flow.transport_cost(X_test)
        rec.update(
            inversion_error=float(np.mean(rt / (np.linalg.norm(X_test, axis=1) + 1e-12))),
            inversion_error_abs_rms=float(np.sqrt(np.mean(rt**2))),
            n_iter_=int(flow.n_iter_),
            transport_cost_=float(flow.transport_cost_),
            inversion_error_=float(flow.inversion_error_),
            device_=flow.device_,
            params=_jsonable(flow.get_params()),
        )
    elif method == "POT EMD (barycentric)":
        # Out-of-sample rule of ot.da.EMDTransport.transform: nearest training
        # row of P (squared Euclidean), plus that row's displacement.
        idx = np.concatenate([
            np.argmin(ot.dist(X_test[i:i + 1024], Xs), axis=1)
            for i in range(0, len(X_test), 1024)
        ])
        T_hat = X_test + (T_train[idx] - Xs[idx])
        rec["transform_time_s"] = time.perf_counter() - t0
        w2_hat = float(np.mean(np.sum((T_hat - X_test) ** 2, axis=1)))
        rec.update(
            inversion_error="n/a",
            plan_cost=float(log["cost"]),
            plan_cost_error=abs(float(log["cost"]) - w2) / w2,
            emd_result_code=int(log["result_code"]),
            emd_warning=log["warning"],
            emd_converged=log["warning"] is None,
            emd_numitermax=cfg["emd_numitermax"],
            train_map_error=map_metrics(pair, Xs, T_train)["map_error"],
        )
    else:
        T_hat = lin.transform(Xs=X_test)
        rec["transform_time_s"] = time.perf_counter() - t0
        w2_hat = float(np.mean(np.sum((T_hat - X_test) ** 2, axis=1)))
        rec["inversion_error"] = "n/a"
    rec.update(map_metrics(pair, X_test, T_hat))
    rec["w2_squared_hat"] = float(w2_hat)
    rec["w2_error"] = abs(float(w2_hat) - w2) / w2
    return rec


def launch(cfg):
    """Run one (method, d) in a fresh interpreter; return its record."""
    cmd = [sys.executable, os.path.abspath(__file__), "--single", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    return {
        "method": cfg["method"], "d": cfg["d"], "n": cfg["n"], "seed": cfg["seed"],
        "error": f"child exited with code {proc.returncode}", "stderr_tail": tail,
    }


# ---------------------------------------------------------------- table
def _fmt(value, spec):
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    return format(value, spec)


def table_row(rec):
    name = rec["method"] + ("*" if rec.get("subsampled") else "")
    if "error" in rec:
        cells = [str(rec["d"]), name, "FAILED", "", "", "", ""]
    else:
        cells = [
            str(rec["d"]), name, _fmt(rec["map_error"], ".4f"), _fmt(rec["w2_error"], ".4f"),
            _fmt(rec["inversion_error"], ".2e"), _fmt(rec["fit_time_s"], ".2f"),
            _fmt(rec["peak_mem_mb"], ".1f"),
        ]
    line = "  ".join(c.rjust(w) if i != 1 else c.ljust(w) for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS)))
    return line.rstrip()


def table_header():
    head = "  ".join(n.rjust(w) if n != "method" else n.ljust(w) for n, w in COLUMNS)
    return head + "\n" + "-" * len(head)


# ------------------------------------------------------------ machine
def machine_info():
    import ot
    import scipy
    import sklearn
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "pot": ot.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------- main
def _parse_param(text):
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param expects key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # bare strings, e.g. device=cpu
    return key.strip(), value


def _parse_method(text):
    if text in METHODS:
        return text
    key = text.strip().lower().replace(" ", "_").replace("-", "_")
    if key in ALIASES:
        return ALIASES[key]
    for m in METHODS:
        if m.lower() == text.strip().lower():
            return m
    raise argparse.ArgumentTypeError(f"unknown method {text!r}; choose from {list(METHODS)} or {list(ALIASES)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", help="dimensions (default 2 8 32; quick: 2 4)")
    ap.add_argument("--n-samples", type=int, help="training rows per side (default 10000; quick: 500)")
    ap.add_argument("--n-test", type=int, help="test rows of P (default 5000; quick: 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pair", choices=("gaussian", "convex"), default="gaussian",
                    help="gaussian: make_gaussian_pair; convex: make_convex_map_pair (a Gaussian mixture "
                         "and its push-forward by the gradient of a convex function: a non-linear OT map)")
    ap.add_argument("--shift", type=float, default=1.0,
                    help="std of each coordinate of Q's mean (make_gaussian_pair(shift=)); 1.5 gives "
                         "W2^2 ~ 11 at d=8, the scale of DESIGN.md section 5's calibration")
    ap.add_argument("--methods", type=_parse_method, nargs="+", default=list(METHODS),
                    help=f"subset of {list(METHODS)} (aliases {list(ALIASES)})")
    ap.add_argument("--param", type=_parse_param, action="append", default=[],
                    help="key=value (JSON value) passed to OTFlowTransformer; repeatable")
    ap.add_argument("--emd-max", type=int, default=10000,
                    help="largest number of rows a side for EMD; above it EMD uses a subsample")
    ap.add_argument("--emd-numitermax", type=int, default=10_000_000)
    ap.add_argument("--emd-threads", type=int, default=1, help="numThreads of ot.emd")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads in each run")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: n=500, 300 test rows, dims 2 4, tiny skqflow training")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench_gaussian_ot.json)")
    ap.add_argument("--single", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.single is not None:
        rec = run_single(json.loads(args.single))
        sys.stdout.write(RESULT_MARKER + json.dumps(_jsonable(rec)) + "\n")
        return 0

    dims = args.dims or ([2, 4] if args.quick else [2, 8, 32])
    n = args.n_samples or (500 if args.quick else 10000)
    n_test = args.n_test or (300 if args.quick else 5000)
    params = {**(QUICK_PARAMS if args.quick else {}), **dict(args.param)}
    out = args.out or os.path.join(
        _HERE, "results", "bench_gaussian_ot_quick.json" if args.quick else "bench_gaussian_ot.json"
    )
    methods = list(dict.fromkeys(args.methods))

    config = {
        "dims": dims, "n_samples": n, "n_test": n_test, "seed": args.seed, "shift": args.shift, "pair": args.pair,
        "methods": methods, "skqflow_params": params, "emd_max": args.emd_max,
        "emd_numitermax": args.emd_numitermax,
        "emd_threads": args.emd_threads, "torch_threads": args.torch_threads, "quick": args.quick,
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    machine = machine_info()
    print(f"# Gaussian OT benchmark: n={n} rows a side, {n_test} test rows, seed={args.seed}, "
          f"pair={args.pair}, shift={args.shift}, "
          f"{machine['cpu_count']} CPUs, torch {machine['torch']} "
          f"({args.torch_threads or machine['torch_threads_default']} threads)")
    if params:
        print(f"# skqflow params: {json.dumps(params)}")
    print(table_header(), flush=True)

    records, t_start = [], time.perf_counter()
    for d in dims:
        for method in methods:
            cfg = {
                "method": method, "d": d, "n": n, "n_test": n_test, "seed": args.seed,
                "shift": args.shift, "pair": args.pair, "params": params, "emd_max": args.emd_max,
                "emd_numitermax": args.emd_numitermax,
                "emd_threads": args.emd_threads, "torch_threads": args.torch_threads,
            }
            print(f"[running d={d} {method} ...]", file=sys.stderr, flush=True)
            rec = launch(cfg)
            records.append(rec)
            print(table_row(rec), flush=True)
            # Save as we go so a long run that is interrupted keeps its rows.
            _save(out, machine, config, records, time.perf_counter() - t_start)

    notes = []
    for rec in records:
        if "error" in rec:
            notes.append(f"d={rec['d']} {rec['method']}: {rec['error']}\n    " + "\n    ".join(rec["stderr_tail"]))
        if rec.get("subsampled"):
            notes.append(f"* d={rec['d']} {rec['method']}: EMD fitted on a random subsample of "
                         f"{rec['n_fit']} rows a side (n={rec['n']} > --emd-max={args.emd_max})")
        if rec.get("emd_converged") is False:
            notes.append(f"! d={rec['d']} {rec['method']}: EMD did not converge "
                         f"(result_code={rec['emd_result_code']}: {rec['emd_warning']}); "
                         "raise --emd-numitermax")
        if rec.get("warnings"):
            notes.append(f"d={rec['d']} {rec['method']} warnings: " + "; ".join(rec["warnings"]))
    if notes:
        print()
        print("\n".join(notes))
    print("\nmap_error: mean ||T^(x)-T*(x)|| / ||T*(x)-x||; w2_error: |W2^2 est - W2^2| / W2^2; "
          "inversion_error: mean ||T^-1(T(x))-x|| / ||x||; peak_mem_mb: ru_maxrss increase during fit.")
    print(f"saved {out}")
    return 1 if any("error" in r for r in records) else 0


def _save(path, machine, config, records, elapsed):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {"machine": machine, "config": config, "elapsed_s": elapsed, "results": records}
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(_jsonable(payload), fh, indent=2)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
