"""fit_ray and fit_spark: the same 2-rank fit under Ray Train and Spark's TorchDistributor,
handed back to the driver.

Marked ``launchers`` (each takes a minute or two, mostly the launcher's start-up) and
skipped when the optional extra is not installed; ``make test-launchers`` installs both
extras and runs them. The fitted model must equal a one-process fit with the same global
batch (as the torchrun tests check), and come back as an ordinary estimator.
"""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from sk_mmoe import MMoERegressorClassifier

PARAMS = dict(n_experts=2, expert_layer_sizes=(16,), tower_layer_sizes=(8,), batch_size=64,
              max_epochs=4, early_stopping=False, gate_dropout=0.0, random_state=0)


def _data(n=400):
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    y = pd.DataFrame({"amount": X["a"] * 2 + 0.1 * rng.normal(size=n),
                      "label": np.where(X["b"] > 0, "yes", "no")})
    return X, y


def _check_same_as_one_process(model, X, y):
    reference = MMoERegressorClassifier(**PARAMS).fit(X, y)
    assert model.distributed is False and model.n_iter_ == reference.n_iter_
    for (name, mine), theirs in zip(model.module_.state_dict().items(),
                                    reference.module_.state_dict().values()):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5, msg=name)
    pd.testing.assert_frame_equal(model.predict(X), reference.predict(X))


@pytest.mark.launchers
def test_fit_ray_returns_the_two_rank_fit(tmp_path):
    pytest.importorskip("ray.train.torch")
    import ray

    from sk_mmoe.distributed import fit_ray

    X, y = _data()
    estimator = MMoERegressorClassifier(**PARAMS)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        model = fit_ray(estimator, X, y, num_workers=2, resources_per_worker={"CPU": 1},
                        storage_path=str(tmp_path))
    finally:
        ray.shutdown()
    assert not hasattr(estimator, "n_iter_")  # the caller's estimator is left unfitted
    _check_same_as_one_process(model, X, y)


@pytest.mark.launchers
def test_fit_spark_returns_the_two_rank_fit():
    pytest.importorskip("pyspark.ml.torch.distributor")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime")
    from pyspark.sql import SparkSession

    from sk_mmoe.distributed import fit_spark

    X, y = _data()
    spark = SparkSession.builder.master("local[2]").appName("sk-mmoe-test").getOrCreate()
    try:
        model = fit_spark(MMoERegressorClassifier(**PARAMS), X, y, num_processes=2)
    finally:
        spark.stop()
    _check_same_as_one_process(model, X, y)


def test_a_missing_extra_names_what_to_install(monkeypatch):
    import builtins

    from sk_mmoe import distributed

    real_import = builtins.__import__

    def without_ray(name, *args, **kwargs):
        if name.startswith("ray"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_ray)
    with pytest.raises(ImportError, match=r'fit_ray needs ray.*pip install "sk-mmoe\[ray\]"'):
        distributed.fit_ray(MMoERegressorClassifier(), np.zeros((4, 1)), np.zeros(4))
