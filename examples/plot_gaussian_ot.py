"""
Gaussian optimal transport against the closed form
==================================================

Between two Gaussians the optimal transport map is affine and known in closed
form, so we can see how close the learned flow gets: the relative error of the
map, the W2² estimate against the exact value, and the inversion error.
"""

import matplotlib.pyplot as plt
import numpy as np

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair
from skqflow.plotting import plot_history, plot_trajectories

pair = make_gaussian_pair(n_features=2, random_state=0)
X_p, X_q = pair.sample(3000, random_state=1)
X_test, _ = pair.sample(1000, random_state=2)

# %%
# The initial flow alone (``max_iter=0``): flow matching between rows paired
# by an exact assignment inside each batch of 256 rows.
flow = OTFlowTransformer(init_steps=360, batch_size=256, max_iter=0, random_state=0)
flow.fit(*stack(X_p, X_q))

T_hat, T_star = flow.transform(X_test), pair.ot_map(X_test)
error = np.mean(np.linalg.norm(T_hat - T_star, axis=1) / np.linalg.norm(T_star - X_test, axis=1))
print(f"map error (relative to the true displacement): {error:.3f}")
print(f"W2^2: learned {flow.transport_cost(X_test):.3f}, exact {pair.w2_squared:.3f}")
back = flow.inverse_transform(T_hat)
print(f"inversion error: {np.abs(back - X_test).max():.2e}")

# %%
# The learned paths against the straight OT paths x -> (1 - t) x + t T*(x)
# (dashed, ending at the exact image, marked by a cross), with the sample of
# Q in grey. Right: the flow-matching loss per epoch.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
n = 60
plot_trajectories(flow, X_test, n_lines=n, ax=ax1, target=X_q[:1000])
for x, tx in zip(X_test[:n], T_star[:n]):
    ax1.plot([x[0], tx[0]], [x[1], tx[1]], "k--", lw=0.5)
ax1.scatter(*T_star[:n].T, marker="x", s=12, c="k", zorder=4)
ax1.set_title("learned paths (coloured) and exact OT paths (dashed)")
plot_history(flow, ax=ax2)
plt.show()
