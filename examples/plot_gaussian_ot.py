"""
Gaussian optimal transport against the closed form
==================================================

Between two Gaussians the optimal transport map is affine and known in closed
form, so we can see how close the learned flow gets: the relative error of the
map, the W2² estimate against the exact value, and the inversion error.
"""

import numpy as np

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair

pair = make_gaussian_pair(n_features=2, random_state=0)
X_p, X_q = pair.sample(3000, random_state=1)
X_test, _ = pair.sample(1000, random_state=2)

flow = OTFlowTransformer(init_epochs=30, max_iter=0, random_state=0).fit(*stack(X_p, X_q))

T_hat, T_star = flow.transform(X_test), pair.ot_map(X_test)
error = np.mean(np.linalg.norm(T_hat - T_star, axis=1) / np.linalg.norm(T_star - X_test, axis=1))
print(f"map error (relative to the true displacement): {error:.3f}")
print(f"W2^2: learned {flow.transport_cost(X_test):.3f}, exact {pair.w2_squared:.3f}")
back = flow.inverse_transform(T_hat)
print(f"inversion error: {np.abs(back - X_test).max():.2e}")

# %%
# The learned paths against the straight OT paths x -> (1 - t) x + t T*(x).
try:
    import matplotlib.pyplot as plt
except ImportError:  # matplotlib is optional
    plt = None

if plt is not None:
    times = np.linspace(0, 1, 9)
    path = flow.interpolate(X_test[:60], times)
    fig, ax = plt.subplots(figsize=(5, 5))
    for i in range(path.shape[1]):
        ax.plot(path[:, i, 0], path[:, i, 1], color="tab:blue", lw=0.8)
        ax.plot([X_test[i, 0], T_star[i, 0]], [X_test[i, 1], T_star[i, 1]], "k--", lw=0.5)
    ax.set_title("learned paths (blue) and exact OT paths (dashed)")
    plt.show()
