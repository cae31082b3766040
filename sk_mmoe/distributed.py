"""Run one ``distributed=True`` fit under Ray Train or Spark, and get the fitted estimator
back in the driver.

Both launchers start the worker processes and form the ``torch.distributed`` process group
(gloo on CPU, NCCL with ``use_gpu=True``); the estimator joins that group as it joins
torchrun's (see the README, "Data-parallel training"). ``X`` and ``y`` are sent to every
worker: each worker holds the full data and trains on its share of every global batch,
exactly as under torchrun, so the result does not depend on the number of workers.

Rank 0's fitted estimator travels back pickled (Ray's or Spark's cloudpickle), so custom
callbacks defined in a notebook travel too. It is an ordinary fitted estimator: no process
group or launcher object is kept, and its ``distributed`` parameter is the one you gave.

Optional extras: ``pip install "sk-mmoe[ray]"`` (Ray Train) or ``"sk-mmoe[spark]"``
(pyspark; Spark needs a Java runtime).
"""

import builtins
import os
import sys
import tempfile
import types
from pathlib import Path

from sklearn.base import clone

__all__ = ["fit_ray", "fit_spark"]

_MODEL_FILE = "model.pkl"


def _training_copy(estimator, use_gpu):
    """An unfitted copy of ``estimator`` that trains with ``distributed=True``."""
    model = clone(estimator).set_params(distributed=True)
    if use_gpu:
        # join() selects LOCAL_RANK's GPU for a bare "cuda".
        model.set_params(device="cuda")
    return model


def _as_given(model, estimator):
    """The fitted ``model`` with the caller's ``distributed`` setting. Its device stays the
    one it trained on (``"cuda"`` with ``use_gpu=True``): its weights live there."""
    return model.set_params(distributed=estimator.distributed)


def _require(module, extra, what):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise ImportError(
            f"{what} needs {module.split('.')[0]}, which is not installed: "
            f'pip install "sk-mmoe[{extra}]".'
        ) from exc


def fit_ray(estimator, X, y, *, num_workers=2, use_gpu=False, resources_per_worker=None,
            storage_path=None, **fit_params):
    """Fit ``estimator`` on ``num_workers`` Ray Train workers; return it fitted.

    Parameters
    ----------
    estimator : MMoERegressorClassifier
        Cloned (left unchanged); the copy trains with ``distributed=True``.
    X, y : as in ``fit``
        Sent to every worker.
    num_workers : int, default=2
        Processes (ranks) of Ray Train's ``TorchTrainer``.
    use_gpu : bool, default=False
        One GPU per worker and NCCL; the model trains on ``"cuda"``.
    resources_per_worker : dict, optional
        Ray resources of each worker, e.g. ``{"CPU": 4}``.
    storage_path : str, optional
        Where Ray Train keeps the run's files (on a cluster: storage every node reaches);
        by default a temporary folder removed afterwards.
    **fit_params
        Passed to ``fit`` on every worker (``sample_weight``, ``eval_set``).

    Returns
    -------
    MMoERegressorClassifier
        Rank 0's fitted estimator.
    """
    _require("ray.train.torch", "ray", "fit_ray")
    import ray.cloudpickle as cloudpickle
    from ray.train import Checkpoint, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    def train_loop(config):
        import ray.train

        model = config["model"].fit(config["X"], config["y"], **config["fit_params"])
        metrics = {"n_iter": model.n_iter_}
        if ray.train.get_context().get_world_rank() != 0:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            with open(Path(folder) / _MODEL_FILE, "wb") as file:
                _builtins_by_name(cloudpickle.CloudPickler)(file).dump(model)
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(folder))

    config = {"model": _training_copy(estimator, use_gpu), "X": X, "y": y, "fit_params": fit_params}
    with tempfile.TemporaryDirectory() as scratch:
        trainer = TorchTrainer(
            train_loop,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                         resources_per_worker=resources_per_worker),
            run_config=RunConfig(storage_path=storage_path or scratch, name="sk-mmoe-fit"),
        )
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            with open(Path(folder) / _MODEL_FILE, "rb") as file:
                model = cloudpickle.load(file)
    return _as_given(model, estimator)


def _builtins_by_name(pickler):
    """``pickler`` that stores builtin functions by name.

    Ray Train replaces ``builtins.print`` in its workers to collect their output, so the
    original ``print`` that skorch's log callbacks hold is no longer ``builtins.print``
    there, and pickle refuses it ("it's not the same object as builtins.print"). By name,
    it becomes the driver's ``print`` again on loading."""

    class Pickler(pickler):
        def reducer_override(self, obj):
            if (isinstance(obj, types.BuiltinFunctionType) and obj.__module__ == "builtins"
                    and getattr(builtins, obj.__name__, None) is not obj):
                return getattr, (builtins, obj.__name__)
            return super().reducer_override(obj)

    return Pickler


def fit_spark(estimator, X, y, *, num_processes=2, use_gpu=False, local_mode=True, **fit_params):
    """Fit ``estimator`` with Spark's ``TorchDistributor``; return it fitted.

    Parameters
    ----------
    estimator : MMoERegressorClassifier
        Cloned (left unchanged); the copy trains with ``distributed=True``.
    X, y : as in ``fit``
        Sent to every process.
    num_processes : int, default=2
        Processes (ranks).
    use_gpu : bool, default=False
        One GPU per process and NCCL; the model trains on ``"cuda"``.
    local_mode : bool, default=True
        Run the processes on the driver (``True``) or on the cluster's executors.
    **fit_params
        Passed to ``fit`` in every process (``sample_weight``, ``eval_set``).

    Returns
    -------
    MMoERegressorClassifier
        Rank 0's fitted estimator.
    """
    distributor_module = _require("pyspark.ml.torch.distributor", "spark", "fit_spark")

    distributor = distributor_module.TorchDistributor(
        num_processes=num_processes, local_mode=local_mode, use_gpu=use_gpu
    )
    model = distributor.run(_spark_train, _training_copy(estimator, use_gpu), X, y, fit_params)
    return _as_given(model, estimator)


def _spark_train(model, X, y, fit_params):
    """Each process's work under TorchDistributor; rank 0's return value reaches the
    driver."""
    model.fit(X, y, **fit_params)
    if int(os.environ.get("RANK", "0")) != 0:
        # TorchDistributor's script has every process write its return value to one
        # file, the last writer winning: the other ranks leave (successfully) before
        # writing, so that rank 0's model is the one the driver reads.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return model
