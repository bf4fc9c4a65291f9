"""Benchmark: domain adaptation in skada pipelines (target-domain accuracy).

Cases (binary labels; 2-D unless said; every case is drawn anew for each seed)
-----------------------------------------------------------------------------
``covariate``    ``skada.datasets.make_shifted_datasets(shift="covariate_shift")``:
                 the target over-samples one region of the source's input
                 space; ``p(y | x)`` is unchanged (reweighting territory).
``conditional``  ``shift="conditional_shift"``: the target is an affine image
                 of the source (scaled by 0.7 and translated by 1).
``subspace``     ``shift="subspace"``: the classes are separable along a
                 direction shared by the domains.
``moons_rotated`` two moons (``sklearn.datasets.make_moons``) against the same
                 moons rotated by ``--angle`` degrees about their centre.
``moons_bent``   two moons against the moons bent by a non-linear map
                 ``(u, v) -> (u, v + 0.6 u^2 - 0.4)``, after centring.
``convex10``     d=10: two classes of ``make_classification`` (4 informative
                 features, two clusters per class); the target rows (drawn
                 from the same distribution) are moved by the gradient of a
                 convex function, ``x -> x + b + 1.5 W^T sigmoid(W x)`` (8
                 random unit rows in ``W``), which is therefore the optimal-
                 transport map between the domains.
``moons_bent_large`` ``moons_bent`` with ``--large-rows`` rows per domain
                 (5000 by default) instead of 480.

``--noise`` sets the noise of the skada generators and of the moons.

Methods (table columns; all put the same classifier last in a skada pipeline)
-----------------------------------------------------------------------------
``none``           the classifier trained on the source rows only.
``OTMapping``      skada's discrete OT map (barycentric), no hyper-parameter.
``EntropicOT``     skada's EntropicOTMapping, grid over ``reg_e``.
``LinearOT``       skada's LinearOTMapping (Gaussian Monge map), grid over ``reg``.
``CORAL``          skada's CORAL, grid over ``reg``.
``DensityReweight`` skada's DensityReweight (kernel density ratio), grid over
                   the bandwidth of its KernelDensity.
``OTFlow``         ``skqflow.da.OTFlow``, grid over the flow's ``gamma``.
``FlowReweight``   ``skqflow.da.FlowDensityReweight``, grid over its flow's ``gamma``.

Every grid is searched by ``GridSearchCV`` with skada's
``SourceTargetShuffleSplit`` and a scorer that never reads target labels:
``--scorer iw`` (default: skada's ``ImportanceWeightedScorer``, importance-
weighted source accuracy) or ``entropy`` (``PredictionEntropyScorer`` on the
target rows). The target labels are masked (-1) in what the search sees; they
are used only for the reported target accuracy of the refitted best model.
Column ``oracle`` (JSON only) is the best target accuracy over the grid, which
no label-free method can exceed: it tells selection error from method error.

Classifier: ``SVC(kernel="rbf", C=1)`` (requesting ``sample_weight`` in fit
and score; calibrated by ``CalibratedClassifierCV(ensemble=False)`` for the
entropy scorer, which needs probabilities). Flows: ``OTFlowTransformer`` with
``--flow-param`` settings over the defaults below.

Goal (issue 4): skqflow at least as accurate as the best skada method on every
case, and better on the non-linear ones.

Run (from the repository root; skada installed, ``pip install ".[da]"``)::

    python benchmarks/bench_domain_adaptation.py

equivalently ``--n-samples 60 --seeds 0 1 --scorer iw``; results go to
``benchmarks/results/bench_domain_adaptation.json`` and ``.txt``. Smoke test::

    python benchmarks/bench_domain_adaptation.py --quick
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, _HERE):  # run from a checkout without installing skqflow
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _baselines import machine_info, parse_param, save_json, save_text  # noqa: E402

CASES = ("covariate", "conditional", "subspace", "moons_rotated", "moons_bent", "convex10", "moons_bent_large")
METHODS = (
    "none", "OTMapping", "EntropicOT", "LinearOT", "CORAL", "DensityReweight", "OTFlow", "FlowReweight",
)
SKQFLOW = ("OTFlow", "FlowReweight")
FLOW_DEFAULTS: dict = {}  # the estimators' own defaults: what a user gets
RATIO_DEFAULTS: dict = {}
GAMMAS = [0.003, 0.03]  # searched only with --flow-grid (gamma acts in the refinement, off by default)


# ---------------------------------------------------------------- data
def _moons(n, noise, rng):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n, noise=noise, random_state=int(rng.integers(2**31 - 1)))
    return X - [0.5, 0.25], y


def _convex10(n_rows, rng):
    """Source and target rows of the ``convex10`` case (see the module docstring)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2 * n_rows, n_features=10, n_informative=4, n_redundant=0, n_clusters_per_class=2,
        class_sep=1.5, flip_y=0.0, random_state=int(rng.integers(2**31 - 1)),
    )
    W = rng.standard_normal((8, 10))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    b = rng.standard_normal(10)
    Xt = X[n_rows:]
    Xt = Xt + b + 1.5 / (1.0 + np.exp(-Xt @ W.T)) @ W  # grad of |x|^2/2 + b.x + 1.5 sum softplus(Wx)
    return X[:n_rows], y[:n_rows], Xt, y[n_rows:]


def make_case(case, n, noise, seed, angle=40.0, large_rows=5000):
    """Stacked rows, labels (target labels unmasked) and sample_domain (1 source, -2 target)."""
    rng = np.random.default_rng(seed)
    if case in ("covariate", "conditional", "subspace"):
        from skada.datasets import make_shifted_datasets

        X, y, sd = make_shifted_datasets(
            n_samples_source=n, n_samples_target=n, shift=f"{case}_shift" if case != "subspace" else case,
            noise=noise, random_state=seed,
        )
        return X, y, sd
    n_rows = large_rows if case.endswith("_large") else 8 * n  # 8n: as many as skada's generators give
    if case == "convex10":
        Xs, ys, Xt, yt = _convex10(n_rows, rng)
        X, y = np.concatenate([Xs, Xt]), np.concatenate([ys, yt])
        return X, y, np.concatenate([np.ones(n_rows, int), -2 * np.ones(n_rows, int)])
    Xs, ys = _moons(n_rows, noise, rng)
    Xt, yt = _moons(n_rows, noise, rng)
    if case == "moons_rotated":
        a = np.deg2rad(angle)
        Xt = Xt @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    else:
        Xt = np.column_stack([Xt[:, 0], Xt[:, 1] + 0.6 * Xt[:, 0] ** 2 - 0.4])
    X = np.concatenate([Xs, Xt])
    y = np.concatenate([ys, yt])
    sd = np.concatenate([np.ones(n_rows, int), -2 * np.ones(n_rows, int)])
    return X, y, sd


# ------------------------------------------------------------- methods
def _classifier(probability=False):
    from sklearn.svm import SVC

    svc = SVC(kernel="rbf", C=1.0)
    if probability:  # the entropy scorer needs predict_proba
        from sklearn.calibration import CalibratedClassifierCV

        svc = CalibratedClassifierCV(svc, ensemble=False)
    return svc.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)


def make_method(name, seed, flow_params, ratio_params, probability=False, flow_grid=False):
    """(pipeline, parameter grid) for one method."""
    import skada
    from sklearn.neighbors import KernelDensity

    from skqflow import OTFlowTransformer
    from skqflow.da import FlowDensityReweight, OTFlow

    flow = {**FLOW_DEFAULTS, **flow_params, "random_state": seed}
    classifier = functools.partial(_classifier, probability)
    if name == "none":
        return skada.make_da_pipeline(classifier()), {}
    if name == "OTMapping":
        return skada.OTMapping(classifier()), {}
    if name == "EntropicOT":
        return skada.EntropicOTMapping(classifier()), {"entropicotmappingadapter__reg_e": [0.1, 1.0, 10.0]}
    if name == "LinearOT":
        return skada.LinearOTMapping(classifier()), {"linearotmappingadapter__reg": [1e-6, 1e-2, 1.0]}
    if name == "CORAL":
        return skada.CORAL(classifier()), {"coraladapter__reg": ["auto", 0.1, 1.0]}
    if name == "DensityReweight":
        return (
            skada.DensityReweight(classifier(), weight_estimator=KernelDensity()),
            {"densityreweightadapter__weight_estimator__bandwidth": [0.1, 0.3, 1.0]},
        )
    if name == "OTFlow":
        return OTFlow(classifier(), **flow), ({"otflowadapter__flow__gamma": GAMMAS} if flow_grid else {})
    if name == "FlowReweight":
        ratio = {**RATIO_DEFAULTS, **ratio_params, "random_state": seed}
        return (
            FlowDensityReweight(classifier(), flow=OTFlowTransformer(**flow), **ratio),
            {"flowdensityreweightadapter__density_ratio__flow__gamma": GAMMAS} if flow_grid else {},
        )
    raise ValueError(f"unknown method {name!r}")


def scorer(kind):
    from skada.metrics import ImportanceWeightedScorer, PredictionEntropyScorer

    return {"iw": ImportanceWeightedScorer, "entropy": PredictionEntropyScorer}[kind]()


def run_method(name, X, y, sd, seed, args):
    """Fit with label-free model selection; return target accuracy, oracle and timing."""
    from skada.model_selection import SourceTargetShuffleSplit
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, ParameterGrid

    y_masked = np.where(sd < 0, -1, y)
    target = sd < 0
    pipe, grid = make_method(
        name, seed, args.flow_params, args.ratio_params, args.scorer == "entropy", args.flow_grid
    )
    start = time.perf_counter()
    if grid:
        cv = SourceTargetShuffleSplit(n_splits=args.n_splits, random_state=seed)
        search = GridSearchCV(pipe, grid, cv=cv, scoring=scorer(args.scorer), refit=True, error_score="raise")
        search.fit(X, y_masked, sample_domain=sd)
        best, chosen = search.best_estimator_, search.best_params_
    else:
        best, chosen = clone(pipe).fit(X, y_masked, sample_domain=sd), {}
    seconds = time.perf_counter() - start
    accuracy = float(best.score(X[target], y[target]))
    oracle = accuracy
    if args.oracle and len(ParameterGrid(grid)) > 1:
        oracle = max(
            float(clone(pipe).set_params(**p).fit(X, y_masked, sample_domain=sd).score(X[target], y[target]))
            for p in ParameterGrid(grid)
        )
    chosen = {k.split("__", 1)[1]: v for k, v in chosen.items()}
    return {"accuracy": accuracy, "oracle": oracle, "chosen": chosen, "seconds": seconds}


# ---------------------------------------------------------------- main
def table(results, cases, methods):
    head = f"{'case':<14}" + "".join(f"{m:>17}" for m in methods)
    lines = ["target accuracy, mean (std) over seeds; * = best of the row", head, "-" * len(head)]
    for case in cases:
        means = {m: np.mean([r["accuracy"] for r in results[case][m]]) for m in methods}
        top = max(means.values())
        cells = []
        for m in methods:
            acc = [r["accuracy"] for r in results[case][m]]
            mark = "*" if np.isclose(means[m], top) else " "
            cells.append(f"{np.mean(acc):>10.3f} ({np.std(acc):.3f}){mark}")
        lines.append(f"{case:<14}" + "".join(f"{c:>17}" for c in cells))
    lines.append("")
    lines.append("fit + selection seconds, mean over seeds")
    for case in cases:
        lines.append(f"{case:<14}" + "".join(f"{np.mean([r['seconds'] for r in results[case][m]]):>17.1f}"
                                             for m in methods))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-samples", type=int, default=60, help="skada's n_samples_source/target (8x rows)")
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--angle", type=float, default=40.0)
    parser.add_argument("--large-rows", type=int, default=5000, help="rows per domain of moons_bent_large")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n-splits", type=int, default=2)
    parser.add_argument("--scorer", choices=("iw", "entropy"), default="iw")
    parser.add_argument("--flow-grid", action="store_true",
                        help="search the flows' gamma (with --flow-param max_iter=1: the paper's refinement)")
    parser.add_argument("--no-oracle", dest="oracle", action="store_false")
    parser.add_argument("--flow-param", dest="flow_params", type=parse_param, action="append", default=[])
    parser.add_argument("--ratio-param", dest="ratio_params", type=parse_param, action="append", default=[])
    parser.add_argument("--quick", action="store_true", help="tiny data and training (smoke test)")
    parser.add_argument("--out", default=os.path.join(_HERE, "results", "bench_domain_adaptation"))
    args = parser.parse_args(argv)
    args.flow_params, args.ratio_params = dict(args.flow_params), dict(args.ratio_params)
    if args.quick:
        args.n_samples, args.seeds, args.oracle = 20, args.seeds[:1], False
        args.flow_params = {"init_steps": 30, "max_iter": 0, "hidden_layer_sizes": (16,), **args.flow_params}
        args.ratio_params = {"n_epochs": 2, "hidden_layer_sizes": (16,), **args.ratio_params}
        args.out += "_quick"

    import sklearn

    sklearn.set_config(enable_metadata_routing=True)  # skada's pipelines route sample_domain
    warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
    results = {case: {m: [] for m in args.methods} for case in args.cases}
    for case in args.cases:
        for seed in args.seeds:
            X, y, sd = make_case(case, args.n_samples, args.noise, seed, args.angle, args.large_rows)
            for m in args.methods:
                r = run_method(m, X, y, sd, seed, args)
                results[case][m].append({"seed": seed, **r})
                print(f"{case:<14} seed {seed} {m:<16} accuracy {r['accuracy']:.3f} "
                      f"(oracle {r['oracle']:.3f}) {r['chosen']} {r['seconds']:.1f}s", flush=True)
        done = args.cases[: args.cases.index(case) + 1]
        save(args, {c: results[c] for c in done}, done)  # after every case: a long run keeps what it did
    print()
    print(table(results, args.cases, args.methods))


def save(args, results, cases):
    """Write the JSON and the text table of the cases done so far."""
    config = {k: v for k, v in vars(args).items() if k != "out"}
    config.update(flow_defaults=FLOW_DEFAULTS, ratio_defaults=RATIO_DEFAULTS, gammas=GAMMAS)
    machine = machine_info(["skada", "ot"])
    save_json(args.out + ".json", {"config": config, "machine": machine, "results": results})
    save_text(args.out + ".txt", table(results, cases, args.methods))


if __name__ == "__main__":
    main()
