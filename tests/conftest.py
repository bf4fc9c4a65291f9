import pytest
import torch

from skqflow import OTFlowTransformer, stack
from skqflow.datasets import make_gaussian_pair

# The one tiny configuration of the test suite: small enough for sklearn's generic checks
# (well under a second a fit), with one refinement round so that every fitted attribute
# (``classifiers_`` included) exists. Build estimators with ``tiny_flow(**overrides)``.
FAST = dict(
    hidden_layer_sizes=(16, 16),
    classifier_hidden_layer_sizes=(16,),
    n_time_steps=2,
    n_substeps=1,
    init_steps=20,
    max_iter=1,
    refine_epochs=1,
    classifier_epochs=1,
    classifier_inner_epochs=1,
    batch_size=64,
    random_state=0,
)


def tiny_flow(**overrides):
    """An unfitted OTFlowTransformer with the tiny configuration ``FAST`` and ``overrides``."""
    return OTFlowTransformer(**{**FAST, **overrides})


@pytest.fixture(scope="session")
def gaussian_2d():
    pair = make_gaussian_pair(2, random_state=3)
    X_p, X_q = pair.sample(600, random_state=4)
    return pair, X_p, X_q


@pytest.fixture(scope="session")
def fitted_small(gaussian_2d):
    """A quickly trained flow (not accurate; for invariants that hold for any flow)."""
    _, X_p, X_q = gaussian_2d
    X, y = stack(X_p, X_q)
    return tiny_flow(init_steps=100, hidden_layer_sizes=(32, 32), n_time_steps=4, n_substeps=2).fit(X, y)


def fast_ratio(**overrides):
    """Parameters of a density-ratio (or MI) estimator small enough for generic checks."""
    params = dict(
        flow=tiny_flow(), hidden_layer_sizes=(16,), n_epochs=2, batch_size=64,
        random_state=0,
    )
    return {**params, **overrides}


def count_calls(monkeypatch, owner, name):
    """Replace ``owner.name`` by a wrapper that counts its calls; returns the counter dict."""
    calls = {"n": 0}
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread for the test (restored afterwards).

    Small models run as fast on one thread, and one thread avoids the large
    slowdown of torch's threads spinning on cores that other jobs keep busy.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)
