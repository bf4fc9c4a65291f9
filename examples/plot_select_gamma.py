"""
Choosing gamma without labels
=============================

``gamma`` weighs the length of the paths against the match of the two
distributions during the refinement of the flow: too small and the paths
keep the detours of the initial flow, too large and the flow stops short of
the target. ``OTFlowTransformer.score`` measures, on held-out rows, the
match of both push-forwards (energy distances) and how far the map is from
optimal (the squared asymmetry of its Jacobian), and does not depend on ``gamma``,
so ``GridSearchCV`` can pick it. Domain labels (which sample a
row comes from) are all it needs.

Between two Gaussians the squared Wasserstein-2 distance is known, so we
can also see what the chosen flow's transport cost should be.
"""

import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair

pair = make_gaussian_pair(n_features=2, shift=2.0, random_state=0)
X_p, X_q = pair.sample(800, random_state=1)
X, y = stack(X_p, X_q)

# %%
# The search
# ----------
# The initial flow here pairs rows at random (``init="linear"``), which gives
# curved, too long paths; the refinement then has something to correct. The
# flow kept is the last one (``validation_fraction=0``), so that the effect
# of ``gamma`` is not hidden by the choice of an earlier epoch. Besides the
# score, each fold records the transport cost of its held-out rows of P.
flow = OTFlowTransformer(
    init="linear", hidden_layer_sizes=(64, 64), init_steps=80, batch_size=256,
    max_iter=2, refine_epochs=3, classifier_epochs=5, classifier_hidden_layer_sizes=(64, 64),
    refine_learning_rate=1e-3, validation_fraction=0.0, random_state=0,
)
scoring = {
    "score": lambda est, X, y: est.score(X, y),
    "transport_cost": lambda est, X, y: est.transport_cost(X[y == 0]),
}
gammas = [0.001, 0.01, 0.1, 1.0]
search = GridSearchCV(
    flow, {"gamma": gammas}, cv=StratifiedKFold(3, shuffle=True, random_state=0),
    scoring=scoring, refit="score",
).fit(X, y)

results = search.cv_results_
initial = OTFlowTransformer(**{**flow.get_params(), "max_iter": 0}).fit(X, y)
print(f"exact W2^2: {pair.w2_squared:.3f}")
print(f"initial flow alone (no refinement): transport cost {initial.transport_cost(X_p):.3f}")
print(f"{'gamma':>8}{'held-out score':>16}{'transport cost':>16}")
for g, s, c in zip(gammas, results["mean_test_score"], results["mean_test_transport_cost"]):
    print(f"{g:>8}{s:>16.4f}{c:>16.3f}")
print(f"chosen gamma: {search.best_params_['gamma']}")
best = search.best_estimator_
print(f"chosen flow, refitted on all rows: transport cost {best.transport_cost(X_p):.3f}")

# %%
# Score and cost against gamma
# ----------------------------
# Error bars are the spread over the three folds. Large ``gamma`` shortens
# the paths below the exact W2², and the match (so the score) gets worse.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax1.errorbar(gammas, results["mean_test_score"], yerr=results["std_test_score"], fmt="o-")
ax1.axvline(search.best_params_["gamma"], color="0.6", linestyle=":", label="chosen")
ax1.set(xscale="log", xlabel="gamma", ylabel="held-out score (higher is better)")
ax1.legend()
ax2.errorbar(
    gammas, results["mean_test_transport_cost"], yerr=results["std_test_transport_cost"], fmt="o-",
    label="learned flow",
)
ax2.axhline(pair.w2_squared, color="k", linestyle="--", label="exact W2²")
ax2.axhline(initial.transport_cost(X_p), color="tab:red", linestyle=":", label="initial flow (all rows)")
ax2.set(xscale="log", xlabel="gamma", ylabel="transport cost on held-out rows of P")
ax2.legend()
plt.show()
