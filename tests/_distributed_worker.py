"""One rank of the distributed tests (tests/test_distributed.py), started by torchrun or
by the test itself with the launcher's environment variables.

    python tests/_distributed_worker.py CASES_JSON OUT_DIR

For each case it fits ``distributed=True`` on the data of :func:`make_data` and writes
``OUT_DIR/<case>-rank<r>.npz`` with what the test compares; the test fits the same case
in one process (``distributed=False``) with :func:`make_model`.
"""

import contextlib
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse
import torch

from sk_mmoe import MMoERegressorClassifier, ParquetSource, load_model, save_model
from sk_mmoe import _embeddings
from skorch.callbacks import Callback


def case_data(case, rank=0):
    """``make_data`` for a case: ``case["data_seeds"][rank]`` seeds it, and with
    ``case["sparse"]`` the numeric columns become a CSR matrix; with ``case["parquet"]``
    a ParquetSource of that file (written by the test) instead, its targets columns."""
    if case.get("parquet"):
        return ParquetSource(case["parquet"], targets=["value", "flag", "level"]), None, None
    X, y, sample_weight = make_data(case["n_rows"], seed=case.get("data_seeds", [0, 0])[rank])
    if case.get("sparse"):
        X = scipy.sparse.csr_matrix(X[["a", "b", "c"]].fillna(0.0).clip(lower=0.0).to_numpy())
    return X, y, sample_weight


def make_data(n_rows, seed=0):
    """A table with a category column, NaN, three task kinds, missing labels, weights."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({
        "a": rng.normal(size=n_rows),
        "b": rng.normal(size=n_rows),
        "c": rng.exponential(size=n_rows),
        "colour": pd.Categorical(rng.choice(["red", "green", "blue", "grey"], n_rows)),
    })
    X.loc[rng.rand(n_rows) < 0.1, "b"] = np.nan
    signal = X["a"].to_numpy() + X["colour"].cat.codes.to_numpy() * 0.5
    y = pd.DataFrame({
        "value": signal + 0.3 * rng.normal(size=n_rows),
        "flag": (signal + rng.normal(size=n_rows) > 0.5).astype(float),
        "level": np.digitize(X["c"].to_numpy(), [0.5, 1.5]).astype(float),
    })
    y.loc[rng.rand(n_rows) < 0.2, "flag"] = np.nan
    y.loc[rng.rand(n_rows) < 0.1, "value"] = np.nan
    sample_weight = rng.uniform(0.5, 2.0, size=n_rows)
    return X, y, sample_weight


VALID_METRICS = ("valid_value_r2", "valid_flag_accuracy", "valid_level_accuracy")


def make_model(case, distributed):
    params = dict(n_experts=4, expert_layer_sizes=(16,), tower_layer_sizes=(8,),
                  gate_dropout=0.0, max_epochs=40, n_iter_no_change=3, random_state=0,
                  tasks=["regression", "binary", "multiclass"])
    params.update(case.get("params", {}))
    return MMoERegressorClassifier(distributed=distributed, **params)


def train(model, case, X, y, sample_weight):
    """``fit``, then ``partial_fit`` for ``case["partial_fit_epochs"]`` more epochs."""
    sample_weight = sample_weight if case.get("weighted") else None
    model.fit(X, y, sample_weight=sample_weight)
    if case.get("partial_fit_epochs"):
        model.set_params(max_epochs=case["partial_fit_epochs"])
        model.partial_fit(X, y, sample_weight=sample_weight)


@contextlib.contextmanager
def table_rule(case):
    """With ``case["sparse_table_rows"]``, categorical tables from that many rows train
    with sparse gradients (the rule's threshold is 50,000 rows otherwise)."""
    saved = _embeddings.MIN_SPARSE_TABLE_ROWS
    _embeddings.MIN_SPARSE_TABLE_ROWS = case.get("sparse_table_rows", saved)
    try:
        yield
    finally:
        _embeddings.MIN_SPARSE_TABLE_ROWS = saved


def fit_case(case, distributed):
    """The case's model trained on its data, and the data."""
    X, y, sample_weight = case_data(case)
    model = make_model(case, distributed)
    with table_rule(case):
        train(model, case, X, y, sample_weight)
    return model, X


def flat_parameters(model):
    tensors = [p.detach().reshape(-1) for p in model.module_.parameters()]
    tensors += [p.detach().reshape(-1) for p in model.criterion_.parameters()]
    return torch.cat(tensors).numpy()


def summary(model, X):
    """What the test compares between fits."""
    history = model.history_
    return {
        "parameters": flat_parameters(model),
        "predictions": model.predict(X).to_numpy(dtype=float),
        "train_loss": np.array(history[:, "train_loss"]),
        "valid_loss": np.array([e.get("valid_loss", np.nan) for e in history]),
        "gate_balance_loss": np.array([e.get("gate_balance_loss", np.nan) for e in history]),
        "gate_entropy": np.array(history[:, "gate_entropy"]),
        # The per-task validation metrics (valid_<task>_<metric>), one column each.
        "valid_metrics": np.array([[epoch.get(key, np.nan) for key in VALID_METRICS]
                                   for epoch in history]),
        "n_iter": model.n_iter_,
        "batch_counts": np.array(history[:, "train_batch_count"]),
        "task_weights": model.task_weights_,
    }


class StopAtEpoch(Callback):
    """At the start of an epoch, this rank dies (as a kill would: ``how="die"``) or stops
    answering (as a stuck rank would: ``how="hang"``)."""

    def __init__(self, epoch, how):
        self.epoch = epoch
        self.how = how

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) < self.epoch:
            return
        if self.how == "die":
            os._exit(17)
        time.sleep(3600)


def main(cases, out_dir):
    out_dir = Path(out_dir)
    rank = int(os.environ["RANK"])
    torch.set_num_threads(1)
    for case in cases:
        model = make_model(case, distributed=True)
        if case.get("stop_rank") == rank:
            model.set_params(callbacks=[StopAtEpoch(case["at_epoch"], case["how"])])
        X, y, sample_weight = case_data(case, rank)
        started = time.time()
        try:
            with table_rule(case):
                train(model, case, X, y, sample_weight)
        except Exception as exc:  # the test reads what each rank saw
            (out_dir / f"{case['name']}-rank{rank}.error").write_text(
                f"{type(exc).__name__}\n{time.time() - started:.1f}\n{exc}"
            )
            continue
        result = summary(model, X)
        # After fit: an ordinary estimator that pickles and saves, with no group in it.
        restored = pickle.loads(pickle.dumps(model))
        result["pickled_predictions"] = restored.predict(X).to_numpy(dtype=float)
        path = out_dir / f"{case['name']}-rank{rank}.skmmoe"
        save_model(model, path)
        with table_rule(case):
            result["loaded_predictions"] = load_model(path).predict(X).to_numpy(dtype=float)
        result["sparse_table"] = np.array("sparse_optimizer_" in vars(model))
        result["kept_attributes"] = np.array(
            [name for name in vars(model) if "distributed_run" in name or "ddp" in name.lower()]
            + [name for name in vars(model.module_) if name == "importance_reduce"],
            dtype=str,
        )
        result["seconds"] = time.time() - started
        np.savez(out_dir / f"{case['name']}-rank{rank}.npz", **result)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), sys.argv[2])
