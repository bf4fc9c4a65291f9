"""
Gaussian optimal transport against the closed form
==================================================

Between two Gaussians the optimal transport map is affine and known in closed
form, so we can see how close the learned flow gets: the relative error of the
map, the W2² estimate against the exact value, and the inversion error. Two
baselines frame the numbers: the identity (no transport at all) and the
Gaussian plug-in, the closed-form map with means and covariances estimated
from the same samples, which knows what the flow does not: that the data are
Gaussian.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.linalg import sqrtm

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair
from skqflow.plotting import plot_history, plot_trajectories

pair = make_gaussian_pair(n_features=2, random_state=0)
X_p, X_q = pair.sample(3000, random_state=1)
X_test, _ = pair.sample(1000, random_state=2)

# %%
# The initial flow alone (``max_iter=0``): flow matching between rows paired
# by an optimal assignment inside each group of 512 rows (two batches of 256;
# ``coupling_batch_size="auto"`` takes a quarter of the sample, at most eight
# batches).
flow = OTFlowTransformer(init_steps=360, batch_size=256, max_iter=0, random_state=0)
flow.fit(*stack(X_p, X_q))

T_hat, T_star = flow.transform(X_test), pair.ot_map(X_test)

# %%
# The Gaussian plug-in: ``T(x) = m_q + A (x - m_p)`` with
# ``A = S_p^{-1/2} (S_p^{1/2} S_q S_p^{1/2})^{1/2} S_p^{-1/2}``, from the
# sample means and covariances.
R = sqrtm(np.cov(X_p.T)).real
R_inv = np.linalg.inv(R)
A = R_inv @ sqrtm(R @ np.cov(X_q.T) @ R).real @ R_inv
T_plug_in = X_q.mean(0) + (X_test - X_p.mean(0)) @ A


def map_error(T):
    """Mean distance to the exact image, relative to the exact displacement."""
    return np.mean(np.linalg.norm(T - T_star, axis=1) / np.linalg.norm(T_star - X_test, axis=1))


print(f"map error (relative to the true displacement): {map_error(T_hat):.3f}")
print(f"map error of the Gaussian plug-in: {map_error(T_plug_in):.3f}; of the identity: {map_error(X_test):.3f}")
plug_in_cost = np.mean(np.sum((T_plug_in - X_test) ** 2, axis=1))
print(f"W2^2: learned {flow.transport_cost(X_test):.3f}, plug-in {plug_in_cost:.3f}, exact {pair.w2_squared:.3f}")
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
