"""A GridSearchCV over gamma on a dask cluster (joblib's dask backend), as on a real cluster."""

import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skqflow import stack
from skqflow.datasets import make_gaussian_pair

from .conftest import tiny_flow

distributed = pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")


@pytest.mark.skipif(sys.platform == "win32", reason="local worker processes")
def test_grid_search_over_gamma_runs_on_a_dask_cluster():
    X, y = stack(*make_gaussian_pair(2, random_state=0).sample(300, random_state=1))
    # the paper's setting, where gamma acts; no held-out selection, so the refined flow is kept
    template = tiny_flow(init="linear", refine_learning_rate=1e-3, refine_epochs=2, validation_fraction=0.0)
    grid = {"gamma": [0.0, 0.5]}
    local = GridSearchCV(template, grid, cv=3).fit(X, y)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            remote = GridSearchCV(template, grid, cv=3, n_jobs=-1).fit(X, y)
        threads = client.run(lambda: __import__("torch").get_num_threads())
    assert len(tasks.data) >= 6  # 2 candidates x 3 folds ran on the workers
    assert set(threads.values()) == {1}  # one torch thread a worker: no oversubscription
    # the same seeds give the same fits wherever they run
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"],
                               rtol=1e-5)
    assert np.all(np.isfinite(remote.cv_results_["mean_test_score"]))
    assert len(set(remote.cv_results_["mean_test_score"])) == 2  # gamma reaches the refinement
