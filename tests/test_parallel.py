"""Model selection across processes: thread limits in joblib workers, and dask.distributed."""

import os

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from sklearn.model_selection import GridSearchCV, cross_validate

from sk_mmoe import MMoERegressorClassifier


class RecordThreads(Callback):
    """Writes the number of torch threads a fit ran with into the history."""

    def on_epoch_end(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


def test_each_joblib_worker_fit_uses_its_share_of_the_cores(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(
        **dict(small_params, max_epochs=1), callbacks=[("threads", RecordThreads())]
    )
    result = cross_validate(model, X, y, cv=2, n_jobs=2, return_estimator=True)
    # joblib's process workers cap OpenMP threads at cpu_count // n_jobs.
    for fitted in result["estimator"]:
        assert fitted.history[-1, "torch_threads"] <= max(1, os.cpu_count() // 2)


def test_grid_search_on_a_dask_cluster(mixed_data, small_params):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_backend

    X, y = mixed_data
    grid = GridSearchCV(
        MMoERegressorClassifier(**dict(small_params, max_epochs=3)),
        param_grid={"n_experts": [1, 3], "gate_dropout": [0.0, 0.2]},
        cv=2,
    )
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        with parallel_backend("dask"):
            grid.fit(X, y)
        # The fits ran in the worker processes, not here.
        assert len(client.scheduler_info()["workers"]) == 2
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.module_.n_experts == grid.best_params_["n_experts"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_a_cuda_device(mixed_data, small_params):
    X, y = mixed_data
    gpu = MMoERegressorClassifier(**small_params, device="cuda").fit(X, y)
    assert next(gpu.module_.parameters()).is_cuda
    assert gpu.score(X, y) > 0.85
    assert gpu.gate_weights(X).shape == (400, 3, 3)
    # Reproducible on the device too.
    again = MMoERegressorClassifier(**small_params, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.predict_proba(X)[1], again.predict_proba(X)[1], rtol=1e-5)
