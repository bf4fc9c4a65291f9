"""Diagnostic: does the refinement (Algorithm 1) improve a far-from-optimal flow, and does gamma
or the Monge gap tell the candidates apart? (issue 13, items 5 and 6)

Usage: ``python benchmarks/diag_refinement_gamma.py D N GAMMAS``, e.g.
``python benchmarks/diag_refinement_gamma.py 8 3000 0.003,0.03,0.3``: a Gaussian pair
(``make_gaussian_pair(D, shift=1.5)``), ``N`` rows a side, an initial flow on independent pairs
(``init="linear"``, 150 steps in batches of 512: far from optimal), then two refinement rounds of
5 epochs per direction (learning rate 2e-4, no held-out selection) for each gamma. Prints the
map error on 1500 fresh rows, the discrete Monge gap (1000 rows), the label-free score and the
transport cost.
"""

from __future__ import annotations

import copy
import sys
import time
import warnings

import numpy as np
import torch

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    d, n = int(argv[0]), int(argv[1])
    gammas = [float(g) for g in argv[2].split(",")]
    pair = make_gaussian_pair(d, shift=1.5, random_state=0)
    X_p, X_q = pair.sample(n, random_state=1)
    X_t, Y_t = pair.sample(1500, random_state=2)
    T = pair.ot_map(X_t)
    test_X, test_y = stack(X_t, Y_t)

    def report(name, flow, seconds=None):
        err = float(np.mean(np.linalg.norm(flow.transform(X_t) - T, axis=1) / np.linalg.norm(T - X_t, axis=1)))
        line = (f"{name}: map error {err:.3f}  Monge gap {flow.monge_gap(X_t[:1000]):.3f}  "
                f"score {flow.score(test_X, test_y):.4f}  cost {flow.transport_cost(X_t):.2f} "
                f"(W2^2 {pair.w2_squared:.2f})")
        print(line + ("" if seconds is None else f"  {seconds:.0f} s"), flush=True)

    base = OTFlowTransformer(init="linear", init_steps=150, batch_size=512, max_iter=0, random_state=0)
    base.fit(*stack(X_p, X_q))
    report("initial flow (linear)", base)
    for gamma in gammas:
        start = time.perf_counter()
        flow = copy.deepcopy(base).set_params(
            warm_start=True, max_iter=2, refine_epochs=5, gamma=gamma, refine_learning_rate=2e-4,
            validation_fraction=0.0,
        )
        flow.fit(*stack(X_p, X_q))
        report(f"refined, gamma {gamma}", flow, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
