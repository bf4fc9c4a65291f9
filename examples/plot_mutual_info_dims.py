"""
Mutual information as the dimension grows
=========================================

``X`` and ``y`` each have ``d / 2`` Gaussian coordinates, coordinate ``i``
of ``X`` correlated with coordinate ``i`` of ``y`` only, with the correlation
chosen so that the mutual information is exactly ``d / 4`` nats.
:class:`~skqflow.MutualInformationEstimator` given a ``flow`` (which selects
``method="flow"``, the paper's estimator; without one the default is the
faster and more accurate copula estimator of the user guide) estimates it as
minus the mean log ratio between the product of the marginals (``y``
shuffled across rows) and the joint distribution, the ratio being
accumulated along a flow between the two. We run it for ``d`` = 2, 4 and 8, next to the same estimator with a
single classifier in place of the chain (``n_intervals=1``), and compare
both with the truth.
"""

import matplotlib.pyplot as plt
import numpy as np

from skqflow import MutualInformationEstimator, OTFlowTransformer
from skqflow.datasets import make_mutual_info_pair
from skqflow.plotting import plot_history

# %%
# Estimates
# ---------
# Each estimator gets 2500 rows; nets, epoch counts and the number of
# intervals of the chain are kept small so that all the fits take well
# under a minute. ``mutual_info_std_`` is the standard error over rows (it
# leaves out the error of the fitted ratio itself), and ``score`` gives the
# estimate on new rows.
dims = [2, 4, 8]
settings = dict(hidden_layer_sizes=(128, 128), n_epochs=30, random_state=0)
rows = []
for d in dims:
    pair = make_mutual_info_pair(n_features=d)
    X, y = pair.sample(2500, random_state=d)
    X_new, y_new = pair.sample(2000, random_state=100 + d)
    flow = OTFlowTransformer(hidden_layer_sizes=(128, 128), init_steps=300, batch_size=256, max_iter=0)
    chain = MutualInformationEstimator(flow=flow, n_intervals=4, **settings).fit(X, y)
    single = MutualInformationEstimator(flow=flow, n_intervals=1, **settings).fit(X, y)
    rows.append(
        dict(d=d, truth=pair.mutual_info, chain=chain.mutual_info_, std=chain.mutual_info_std_,
             held_out=chain.score(X_new, y_new), single=single.mutual_info_, estimator=chain)
    )

print(f"{'d':>3}{'true MI':>9}{'flow chain':>12}{'std err':>9}{'held-out':>10}{'single clf':>12}")
for r in rows:
    print(
        f"{r['d']:>3}{r['truth']:>9.3f}{r['chain']:>12.3f}{r['std']:>9.3f}"
        f"{r['held_out']:>10.3f}{r['single']:>12.3f}"
    )
for r in rows:
    print(
        f"d = {r['d']}: relative error {(r['chain'] - r['truth']) / r['truth']:+.1%} (flow chain), "
        f"{(r['single'] - r['truth']) / r['truth']:+.1%} (single classifier)"
    )

# %%
# With data this small and nets this short, both estimators are a few
# percent to a few tens of percent off; the benchmarks of the project use
# more rows, larger nets and two shuffles of ``y`` (``n_permutations=2``).
#
# Estimate against truth
# ----------------------
# Points on the dashed line are exact. Error bars are two standard errors
# over rows.
truth = np.array([r["truth"] for r in rows])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax1.plot([0, truth.max() * 1.2], [0, truth.max() * 1.2], "k--", lw=1, label="exact")
ax1.errorbar(
    truth, [r["chain"] for r in rows], yerr=[2 * r["std"] for r in rows], fmt="o", label="flow chain"
)
ax1.plot(truth, [r["held_out"] for r in rows], "s", mfc="none", label="flow chain, new rows")
ax1.plot(truth, [r["single"] for r in rows], "^", label="single classifier")
for r in rows:
    ax1.annotate(f"d = {r['d']}", (r["truth"], r["chain"]), textcoords="offset points", xytext=(6, -12))
ax1.set(xlabel="true mutual information (nats)", ylabel="estimate (nats)")
ax1.legend()

# %%
# The right panel shows the training curves of the chain for the largest
# ``d``: flow matching first, then the ratio net.
plot_history(rows[-1]["estimator"], ax=ax2)
ax2.set_title(f"training history, d = {dims[-1]}")
plt.show()
