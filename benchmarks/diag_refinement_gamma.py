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

import copy
import sys
import time
import warnings

import numpy as np
import torch

warnings.simplefilter("ignore")
torch.set_num_threads(1)
from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair

d = int(sys.argv[1]); n = int(sys.argv[2])
pair = make_gaussian_pair(d, shift=1.5, random_state=0)
Xp, Xq = pair.sample(n, random_state=1)
Xt, Yt = pair.sample(1500, random_state=2)
T = pair.ot_map(Xt)
def rel(Y): return float(np.mean(np.linalg.norm(Y - T, axis=1) / np.linalg.norm(T - Xt, axis=1)))
tX, ty = stack(Xt, Yt)
base = OTFlowTransformer(init="linear", init_steps=150, batch_size=512, max_iter=0, random_state=0).fit(*stack(Xp, Xq))
print(f"linear init: err {rel(base.transform(Xt)):.3f} gap {base.monge_gap(Xt[:1000]):.3f} score {base.score(tX, ty):.4f} cost {base.transport_cost(Xt):.2f} (W2^2 {pair.w2_squared:.2f})", flush=True)
for gamma in [float(g) for g in sys.argv[3].split(",")]:
    t = time.time()
    f = copy.deepcopy(base).set_params(warm_start=True, max_iter=2, refine_epochs=5, gamma=gamma, refine_learning_rate=2e-4, validation_fraction=0.0)
    f.fit(*stack(Xp, Xq))
    print(f"gamma {gamma}: err {rel(f.transform(Xt)):.3f} gap {f.monge_gap(Xt[:1000]):.3f} score {f.score(tX, ty):.4f} cost {f.transport_cost(Xt):.2f} ({time.time()-t:.0f}s)", flush=True)
