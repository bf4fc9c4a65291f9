"""Diagnostic: where does the initial flow's map error come from?

On the Gaussian pair of ``bench_gaussian_ot.py`` this fits the initial flow
(``OTFlowTransformer(max_iter=0)``, flow matching only) three times, changing
nothing but how the rows of a batch are paired:

``minibatch_ot``   the default: exact assignment inside each batch of 512;
``global_ot``      one exact assignment of all training rows of P to all rows
                   of Q (``scipy.optimize.linear_sum_assignment`` on the full
                   n x n cost), each row of P keeping that partner;
``oracle``         each row x of P paired with ``T*(x)``, the true Monge map
                   (not available in practice: it shows what the network and
                   the ODE solver can do when the pairing is right).

It prints the map error against the closed form, the error of the best
affine fit to the learned map (its "linear part"), the transport cost and
the exact W2². The estimator is used as shipped; only the coupling lookup
table entry is swapped for the duration of a fit.

Run::

    python benchmarks/diag_coupling.py --dims 8 32 --shift 1.0

Results go to ``benchmarks/results/diag_coupling.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

from bench_gaussian_ot import make_data, map_metrics  # noqa: E402

import skqflow._torch.flow as _flow  # noqa: E402
from skqflow import OTFlowTransformer, stack  # noqa: E402


def _standardise(X_p, X_q):
    """The estimator's own standardisation (pooled mean, one common scale)."""
    pooled = np.concatenate([X_p, X_q])
    return pooled.mean(0), float(np.sqrt(pooled.var(0).mean()))


def oracle_coupling(pair, shift, scale):
    def pair_rows(x0, x1):
        x = x0.double().numpy() * scale + shift
        return torch.as_tensor((pair.ot_map(x) - shift) / scale, dtype=x0.dtype)

    return pair_rows


def global_coupling(X_p, X_q, shift, scale):
    cost = (X_p**2).sum(1)[:, None] + (X_q**2).sum(1)[None] - 2 * X_p @ X_q.T
    rows, cols = linear_sum_assignment(cost)
    del cost
    z_p = torch.as_tensor((X_p[rows] - shift) / scale, dtype=torch.float32)
    z_q = torch.as_tensor((X_q[cols] - shift) / scale, dtype=torch.float32)

    def pair_rows(x0, x1):
        # x0 holds training rows of P: find each one's index, return its partner.
        return z_q[torch.cdist(x0, z_p).argmin(1)]

    return pair_rows


@contextmanager
def swapped_coupling(fn):
    saved = _flow.COUPLINGS
    _flow.COUPLINGS = {**saved, "minibatch_ot": fn}
    try:
        yield
    finally:
        _flow.COUPLINGS = saved


def run(d, n, shift, seed):
    pair, X_p, X_q, X_test = make_data(d, n, 5000, seed, shift)
    X, y = stack(X_p, X_q)
    loc, scale = _standardise(X_p, X_q)
    A = np.c_[X_test, np.ones(len(X_test))]
    records = []
    for name in ("minibatch_ot", "global_ot", "oracle"):
        t0 = time.perf_counter()
        if name == "minibatch_ot":
            fn = _flow.COUPLINGS["minibatch_ot"]
        elif name == "global_ot":
            fn = global_coupling(X_p, X_q, loc, scale)
        else:
            fn = oracle_coupling(pair, loc, scale)
        with swapped_coupling(fn):
            flow = OTFlowTransformer(max_iter=0, random_state=seed).fit(X, y)
        elapsed = time.perf_counter() - t0
        T_hat = flow.transform(X_test)
        coef, *_ = np.linalg.lstsq(A, T_hat, rcond=None)
        rec = {
            "d": d, "n": n, "shift": shift, "coupling": name,
            "map_error": map_metrics(pair, X_test, T_hat)["map_error"],
            "linear_part_error": map_metrics(pair, X_test, A @ coef)["map_error"],
            "transport_cost": flow.transport_cost_, "w2_squared": pair.w2_squared,
            "time_s": elapsed,
        }
        records.append(rec)
        print(f"{d:>4} {name:<14} {rec['map_error']:.4f} {rec['linear_part_error']:.4f} "
              f"{rec['transport_cost']:9.3f} {rec['w2_squared']:9.3f} {elapsed:7.1f}", flush=True)
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--shift", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(_HERE, "results", "diag_coupling.json"))
    args = ap.parse_args(argv)
    print("   d coupling       map_err lin_part    t_cost   W2^2    time(s)")
    records = []
    for d in args.dims:
        records += run(d, args.n_samples, args.shift, args.seed)
    with open(args.out, "w") as fh:
        json.dump({"args": vars(args), "torch": torch.__version__, "records": records}, fh, indent=1)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
