"""Benchmark: density estimation on sklearn's 8x8 digits (the paper's energy-model experiment, small).

A reference density ``q`` is fitted to the training digits, then skqflow's
density-estimation mode improves on it: ``InfinitesimalDensityRatio(flow=
OTFlowTransformer(reference=q))`` fitted with ``y=None`` learns a flow from
the data (P) to ``q`` (Q) and the log-ratio ``log q/p`` along it, and
``score_samples(x) = log q(x) - int_0^1 r(x, t) dt`` estimates ``log p(x)``.
The improved generator draws from ``q`` and pushes the draws through the
inverse flow: ``est.flow_.inverse_transform(q.sample(n))``.

Data and bits per dimension
---------------------------
The 1797 digits (``sklearn.datasets.load_digits``) have D = 64 pixels with
integer values ``v`` in 0..16. Split into train and test (``--test-size``,
stratified by class), each image is dequantized once, ``y = v + u`` with
``u ~ U[0, 1)^D`` (train and test with separate seeds), so ``y`` has a
density on ``[0, 17)^D``, and then mapped by the affine
``z = (y - m) / s`` (per pixel ``m_j``, ``s_j``) where every model is fitted:

* ``--scaling standard`` (default): ``m``, ``s`` the per-pixel mean and
  standard deviation of the dequantized training images;
* ``--scaling unit``: ``m = 0``, ``s = 17`` (``z`` in ``[0, 1)``).

A model density ``p_Z`` in z-space gives ``p_Y(y) = p_Z(z) / prod_j s_j``,
so the bits per dimension reported are

    bpd = ( -log p_Z(z) + sum_j log s_j ) / (D ln 2)

averaged over the rows (natural logs inside). This is in units of the 17
integer levels: by Jensen, ``E_u[-log2 p_Y(v + u)] >= -log2 P(v)`` for the
discrete model ``P(v) = int_{[0,1)^D} p_Y(v + u) du``, so the bpd is an upper
bound on the discrete model's code length (a model uniform over the 17
levels scores ``log2 17 = 4.087``). Compare numbers only within these units
(not with 8-bit, 256-level image benchmarks). Test values use one
dequantization draw.

Reference models (``--references``)
-----------------------------------
``gaussian``  ``GaussianMixture(n_components=1, covariance_type="full")``.
``gmm``       ``GaussianMixture(n_components=--gmm-components, covariance_type="full")``.
Both pick ``reg_covar`` from ``{1e-3, 1e-2, 3e-2, 1e-1, 3e-1} x`` (mean per-pixel
variance of z) by the log-likelihood of a 20% validation split of the
training rows, then are refitted on all the training rows. They are passed
to the flow wrapped in ``sklearn.frozen.FrozenEstimator`` (so that cloning
the flow keeps them fitted).

Output: a table of train/test bpd of each reference and of its skqflow
improvement, fit seconds; ``benchmarks/results/bench_digits_density.json``
and ``.txt``; and a PNG grid of samples (test digits, each reference's
samples, the same draws pushed through the inverse flow) at
``benchmarks/results/digits_samples.png`` (``--png``; skipped with a
message if matplotlib is missing).

Run (from the repository root)::

    python benchmarks/bench_digits_density.py

Smoke test (tiny training; writes ``*_quick.*``)::

    python benchmarks/bench_digits_density.py --quick
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

REFERENCES = ("gaussian", "gmm")
N_LEVELS = 17  # pixel values 0..16
REG_FACTORS = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1)


# ---------------------------------------------------------------- data
class Scaling:
    """The affine map ``z = (y - shift) / scale`` between dequantized pixels and model space."""

    def __init__(self, kind, Y_train):
        D = Y_train.shape[1]
        if kind == "unit":
            self.shift, self.scale = np.zeros(D), np.full(D, float(N_LEVELS))
        elif kind == "standard":
            self.shift, self.scale = Y_train.mean(0), Y_train.std(0)
            self.scale[self.scale == 0] = 1.0
        else:
            raise ValueError(f"unknown scaling {kind!r}")
        self.log_scale_sum = float(np.sum(np.log(self.scale)))

    def forward(self, Y):
        return (Y - self.shift) / self.scale

    def inverse(self, Z):
        return Z * self.scale + self.shift

    def bits_per_dim(self, log_pz):
        """``(-log p_Z(z) + sum_j log s_j) / (D ln 2)``, averaged over rows."""
        D = len(self.scale)
        return float(np.mean(-np.asarray(log_pz, dtype=float) + self.log_scale_sum) / (D * np.log(2)))


def load_data(test_size, seed, scaling, max_train=None):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    V_tr, V_te = train_test_split(
        digits.data.astype(float), test_size=test_size, random_state=seed, stratify=digits.target
    )
    if max_train is not None:
        V_tr = V_tr[:max_train]
    Y_tr = V_tr + np.random.RandomState(seed + 1).uniform(0.0, 1.0, V_tr.shape)
    Y_te = V_te + np.random.RandomState(seed + 2).uniform(0.0, 1.0, V_te.shape)
    sc = Scaling(scaling, Y_tr)
    return sc, sc.forward(Y_tr), sc.forward(Y_te), V_te


# ----------------------------------------------------------- references
def fit_reference(kind, Z, seed, n_components):
    """GaussianMixture with ``reg_covar`` chosen on a validation split; returns (model, info)."""
    from sklearn.mixture import GaussianMixture

    k = 1 if kind == "gaussian" else n_components
    perm = np.random.RandomState(seed + 3).permutation(len(Z))
    n_val = len(Z) // 5
    Z_fit, Z_val = Z[perm[n_val:]], Z[perm[:n_val]]
    base = float(Z.var(0).mean())
    scores = {}
    for f in REG_FACTORS:
        gm = GaussianMixture(k, covariance_type="full", reg_covar=f * base, random_state=seed, max_iter=300)
        scores[f] = float(gm.fit(Z_fit).score(Z_val))
    f = max(scores, key=scores.get)
    model = GaussianMixture(
        k, covariance_type="full", reg_covar=f * base, random_state=seed, max_iter=300
    ).fit(Z)
    return model, {
        "n_components": k,
        "reg_covar": f * base,
        "reg_factor": f,
        "validation_loglik": scores,
        "converged": bool(model.converged_),
    }


# ---------------------------------------------------------------- plot
def _mosaic(images, n):
    """``n * n`` 8x8 images tiled with a 1-pixel gap into one array (NaN gaps)."""
    tile = np.full((n * 9 - 1, n * 9 - 1), np.nan)
    for i, img in enumerate(images[: n * n]):
        r, c = divmod(i, n)
        tile[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img.reshape(8, 8)
    return tile


def save_png(path, panels, n):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no sample picture (pip install matplotlib)"
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9))
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("gray_r").copy()
    cmap.set_bad("white")
    for ax, (title, pixels) in zip(axes, panels, strict=True):
        ax.imshow(
            _mosaic(np.clip(pixels, 0, N_LEVELS), n),
            cmap=cmap,
            vmin=0,
            vmax=N_LEVELS,
            interpolation="nearest",
        )
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# ---------------------------------------------------------------- main
def _csv(text):
    return [v.strip() for v in text.split(",") if v.strip()]


COLUMNS = (("model", 22), ("train_bpd", 10), ("test_bpd", 10), ("fit_s", 8), ("note", 0))


def table_header():
    head = "  ".join(n.ljust(w) if n in ("model", "note") else n.rjust(w) for n, w in COLUMNS).rstrip()
    return head + "\n" + "-" * len(head)


def table_row(name, rec):
    if "error" in rec:
        return f"{name:<22}  {rec.get('status', 'FAILED')}"
    return (
        f"{name:<22}  {rec['train_bpd']:>10.4f}  {rec['test_bpd']:>10.4f}  {rec['fit_time_s']:>8.1f}  "
        f"{rec.get('note', '')}"
    ).rstrip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--references", type=_csv, default=list(REFERENCES), help=f"comma-separated subset of {REFERENCES}"
    )
    ap.add_argument("--gmm-components", type=int, default=10)
    ap.add_argument("--scaling", choices=("standard", "unit"), default="standard")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-skqflow", action="store_true", help="references only")
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
        help="key=value for the OTFlowTransformer (its reference is set here); repeatable",
    )
    ap.add_argument("--grid", type=int, default=6, help="samples per side of each picture panel")
    ap.add_argument(
        "--png", default=None, help="picture path (default benchmarks/results/digits_samples.png)"
    )
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads for the run")
    ap.add_argument("--quick", action="store_true", help="smoke test: 300 training rows, tiny training")
    ap.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/bench_digits_density.json)"
    )
    args = ap.parse_args(argv)

    for r in args.references:
        if r not in REFERENCES:
            ap.error(f"unknown reference {r!r}; choose from {REFERENCES}")
    q = args.quick
    params = {"quick": q, "user": dict(args.param), "flow": dict(args.flow_param)}
    name = "bench_digits_density_quick" if q else "bench_digits_density"
    out = args.out or os.path.join(_HERE, "results", name + ".json")
    txt = os.path.splitext(out)[0] + ".txt"
    png = args.png or os.path.join(
        os.path.dirname(os.path.abspath(out)), "digits_samples_quick.png" if q else "digits_samples.png"
    )

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    skq_status = "skipped (--no-skqflow)" if args.no_skqflow else None
    if skq_status is None:
        try:
            from skqflow import InfinitesimalDensityRatio  # noqa: F401
        except Exception as exc:  # noqa: BLE001
            skq_status = f"skqflow unavailable ({type(exc).__name__}: {exc})"

    sc, Z_tr, Z_te, V_te = load_data(args.test_size, args.seed, args.scaling, 300 if q else None)
    D = Z_tr.shape[1]
    machine = B.machine_info(extra_modules=("matplotlib",))
    config = {
        "references": args.references,
        "gmm_components": args.gmm_components,
        "scaling": args.scaling,
        "test_size": args.test_size,
        "n_train": len(Z_tr),
        "n_test": len(Z_te),
        "seed": args.seed,
        "skqflow_params": params,
        "log_scale_sum": sc.log_scale_sum,
        "quick": q,
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    lines = [
        (
            f"# Digits density benchmark: {len(Z_tr)} train / {len(Z_te)} test images, D={D}, "
            f"dequantized (v + U[0,1)), scaling={args.scaling}, seed={args.seed}, "
            f"{machine['cpu_count']} CPUs, torch {machine.get('torch')} ({torch.get_num_threads()} threads), "
            f"{machine['date']}"
        ),
        (
            f"# bpd = (-log p_Z(z) + sum_j log s_j) / (D ln 2) in units of the 17 pixel levels "
            f"(uniform over the levels: {np.log2(N_LEVELS):.3f})"
        ),
    ]
    if q or params["user"] or params["flow"]:
        lines.append(
            f"# skqflow: --param {params['user']} --flow-param {params['flow']}"
            + (f"; quick settings {B.QUICK_RATIO_PARAMS}, flow {B.QUICK_FLOW_PARAMS}" if q else "")
        )
    if skq_status:
        lines.append(f"# skqflow {skq_status}; references only")
    lines.append(table_header())
    print("\n".join(lines), flush=True)

    records, notes, t_start = [], [], time.perf_counter()
    rng = np.random.RandomState(args.seed + 4)
    n_pic = args.grid**2
    panels = [("test digits", V_te[rng.choice(len(V_te), min(n_pic, len(V_te)), replace=False)])]

    def emit(rec):
        records.append(rec)
        row = table_row(rec["model"], rec)
        lines.append(row)
        print(row, flush=True)
        _save(out, txt, machine, config, records, lines, notes, time.perf_counter() - t_start)

    for ref_kind in args.references:
        print(f"[reference {ref_kind} ...]", file=sys.stderr, flush=True)
        try:
            t0 = time.perf_counter()
            ref, info = fit_reference(ref_kind, Z_tr, args.seed, args.gmm_components)
            fit_time = time.perf_counter() - t0
            rec = {
                "model": ref_kind,
                "kind": "reference",
                "fit_time_s": fit_time,
                **info,
                "train_bpd": sc.bits_per_dim(ref.score_samples(Z_tr)),
                "test_bpd": sc.bits_per_dim(ref.score_samples(Z_te)),
                "note": f"reg_covar={info['reg_covar']:.2g}",
            }
        except Exception as exc:  # noqa: BLE001
            emit({"model": ref_kind, "kind": "reference", "error": f"{type(exc).__name__}: {exc}"})
            notes.append(f"{ref_kind}: {records[-1]['error']}")
            continue
        emit(rec)
        # GaussianMixture.sample returns (X, labels), grouped by component and
        # seeded by the model's random_state; shuffle the rows for the picture.
        Z_ref = ref.sample(n_pic)[0][rng.permutation(n_pic)]
        panels.append((f"{ref_kind} samples", sc.inverse(Z_ref)))
        if skq_status:
            continue

        label = f"{ref_kind} + skqflow"
        print(f"[{label} ...]", file=sys.stderr, flush=True)
        try:
            from sklearn.frozen import FrozenEstimator

            from skqflow import InfinitesimalDensityRatio

            est, dropped = B.make_skqflow_estimator(
                InfinitesimalDensityRatio,
                random_state=args.seed,
                params=params["user"],
                flow_params=params["flow"],
                quick=q,
                reference=FrozenEstimator(ref),
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.perf_counter()
                est.fit(Z_tr)
                fit_time = time.perf_counter() - t0
                lp_tr, lp_te = est.score_samples(Z_tr), est.score_samples(Z_te)
                X_gen = est.flow_.inverse_transform(Z_ref)
            n_bad = int(np.sum(~np.isfinite(lp_te)))
            rec = {
                "model": label,
                "kind": "skqflow",
                "reference": ref_kind,
                "fit_time_s": fit_time,
                "train_bpd": sc.bits_per_dim(lp_tr),
                "test_bpd": sc.bits_per_dim(lp_te),
                "gain_test_bpd": rec["test_bpd"] - sc.bits_per_dim(lp_te),
                "n_nonfinite_test": n_bad,
                "params": est.get_params(deep=True),
                "quick_params_dropped": dropped,
                "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
            }
            rec["note"] = f"test gain {rec['gain_test_bpd']:+.4f} bpd"
            panels.append((f"{ref_kind} + skqflow", sc.inverse(X_gen)))
        except Exception as exc:  # noqa: BLE001
            rec = {
                "model": label,
                "kind": "skqflow",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc().strip().splitlines()[-6:],
            }
            notes.append(f"{label}: {rec['error']}")
        if rec.get("warnings"):
            notes.append(f"{label} warnings: " + "; ".join(rec["warnings"]))
        emit(rec)

    msg = save_png(png, panels, args.grid)
    notes.append(msg or f"samples saved to {png} (panels: {', '.join(t for t, _ in panels)})")
    footer = (
        [""]
        + notes
        + [
            "",
            "bpd: bits per dimension of the dequantized 17-level pixels (lower is better).",
            "'+ skqflow': InfinitesimalDensityRatio(flow=OTFlowTransformer(reference=ref)).score_samples",
        ]
    )
    print("\n".join(footer))
    lines += footer
    _save(out, txt, machine, config, records, lines, notes, time.perf_counter() - t_start)
    print(f"saved {out} and {txt}")
    return 1 if any("error" in r for r in records) else 0


def _save(out, txt, machine, config, records, lines, notes, elapsed):
    B.save_json(
        out, {"machine": machine, "config": config, "elapsed_s": elapsed, "results": records, "notes": notes}
    )
    B.save_text(txt, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
