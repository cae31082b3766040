"""distributed=True: 2 gloo ranks on CPU against a 1-process fit, and the failures that must
end a job with a clear error instead of a hang.

The tests marked ``distributed`` start processes (torchrun, or ranks with the launcher's
environment variables) and run in their own CI step (``make test-distributed``), never
under pytest-xdist; every process has a subprocess timeout and every fit a
``distributed_timeout``, so a synchronisation bug fails instead of hanging.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sk_mmoe import DistributedTrainingError, MMoERegressorClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _distributed_worker import fit_case, make_data, summary  # noqa: E402

WORKER = Path(__file__).parent / "_distributed_worker.py"
REPO = Path(__file__).parent.parent
# Ample for ~40 s of work on two busy cores; a hang is cut here.
PROCESS_TIMEOUT = 300

EQUALITY_CASES = [
    # The list: categorical column, NaN, missing labels, the default (PLE)
    # embedding, gate_balance > 0 and early stopping; with sample weights and a last
    # global batch that splits unevenly (900 training rows, batch 64).
    {"name": "default", "n_rows": 1001, "weighted": True,
     "params": {"gate_balance": 0.1, "batch_size": 64}},
    # Learned task weights (criterion parameters outside DDP), PLE, periodic embedding.
    {"name": "uncertainty", "n_rows": 931,
     "params": {"architecture": "ple", "task_weights": "uncertainty", "gate_balance": 0.05,
                "batch_size": 32, "numeric_embedding": "periodic", "max_epochs": 8}},
    # 901 rows, batch 50: the last global batch has one row, so rank 1 gets none; then
    # partial_fit continues the distributed training.
    {"name": "empty_share", "n_rows": 901, "weighted": True, "partial_fit_epochs": 2,
     "params": {"architecture": "cgc", "batch_size": 50, "early_stopping": False,
                "max_epochs": 3, "gate_balance": 0.1}},
    # Epochs of a fixed number of steps (steps_per_epoch) continue across epochs.
    {"name": "steps", "n_rows": 600,
     "params": {"batch_size": 64, "steps_per_epoch": 4, "max_epochs": 12,
                "early_stopping": False}},
    # The categorical table with sparse gradients and its own SparseAdam step (the rule
    # gives it to tables from 50,000 rows; here to every table): DDP all-reduces the
    # sparse gradient (gloo).
    {"name": "sparse_table", "n_rows": 600, "sparse_table_rows": 1,
     "params": {"batch_size": 64, "max_epochs": 4, "early_stopping": False}},
    # A sparse X (CSR rows sliced per rank).
    {"name": "sparse", "n_rows": 500, "sparse": True,
     "params": {"batch_size": 64, "max_epochs": 4, "early_stopping": False,
                "n_iter_no_change": 10}},
]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _torchrun(cases, out_dir):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(WORKER), json.dumps(cases), str(out_dir)]
    return subprocess.run(command, env=_environment(), capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT)


def _start_ranks(case, out_dir, ranks=(0, 1), world=2):
    """Ranks started as a launcher would (environment variables), without torchrun's agent,
    which would itself stop the other ranks when one dies."""
    port = _free_port()
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps([case]), str(out_dir)],
            env=_environment(RANK=rank, LOCAL_RANK=rank, WORLD_SIZE=world,
                             MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in ranks
    ]


def _wait(processes, for_ranks):
    """Return codes of ``for_ranks``, once they end; every process is killed afterwards."""
    try:
        return [processes[r].wait(timeout=PROCESS_TIMEOUT) for r in for_ranks]
    finally:
        for process in processes:
            process.kill()


def _error(out_dir, name, rank):
    """(exception type, seconds into fit, message) written by a rank whose fit raised."""
    path = Path(out_dir) / f"{name}-rank{rank}.error"
    assert path.exists(), f"rank {rank} of case {name!r} did not fail"
    kind, seconds, message = path.read_text().split("\n", 2)
    return kind, float(seconds), message


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("two_ranks")
    done = _torchrun(EQUALITY_CASES, out_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {
        case["name"]: [dict(np.load(out_dir / f"{case['name']}-rank{r}.npz")) for r in (0, 1)]
        for case in EQUALITY_CASES
    }, done.stderr


@pytest.mark.distributed
@pytest.mark.parametrize("case", EQUALITY_CASES, ids=[c["name"] for c in EQUALITY_CASES])
def test_two_ranks_equal_one_process_with_the_same_global_batch(case, two_rank_results):
    torch.set_num_threads(1)
    rank0, rank1 = two_rank_results[0][case["name"]]
    model, X = fit_case(case, distributed=False)
    single = summary(model, X)

    # The ranks hold the same model, bit for bit, and stopped at the same epoch.
    np.testing.assert_array_equal(rank0["parameters"], rank1["parameters"])
    np.testing.assert_array_equal(rank0["predictions"], rank1["predictions"])
    assert int(rank0["n_iter"]) == int(rank1["n_iter"]) == single["n_iter"]
    # ... the one-process model, to float rounding.
    np.testing.assert_allclose(rank0["parameters"], single["parameters"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(rank0["predictions"], single["predictions"], rtol=0, atol=1e-5)
    for key in ("train_loss", "valid_loss", "valid_metrics", "gate_balance_loss", "gate_entropy"):
        np.testing.assert_allclose(rank0[key], single[key], rtol=1e-5, atol=1e-7, err_msg=key)
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    np.testing.assert_allclose(rank0["task_weights"], single["task_weights"], rtol=1e-5)

    # A control: half the batch gives a clearly different model, so the equality above
    # is not the test being blind.
    half = dict(case, params=dict(case["params"], batch_size=case["params"]["batch_size"] // 2))
    control = summary(*fit_case(half, distributed=False))
    assert np.abs(control["parameters"] - single["parameters"]).max() > 1e-2

    # An ordinary estimator afterwards: pickled and saved copies predict the same, and
    # nothing of the process group or the DDP wrapper is kept.
    np.testing.assert_array_equal(rank0["pickled_predictions"], rank0["predictions"])
    np.testing.assert_array_equal(rank0["loaded_predictions"], rank0["predictions"])
    assert rank0["kept_attributes"].size == 0
    assert bool(rank0["sparse_table"]) == ("sparse_table_rows" in case)


@pytest.mark.distributed
def test_two_ranks_train_on_equal_slices_of_a_source(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import pandas as pd

    X, y, _ = make_data(1_003)
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pandas(pd.concat([X, y], axis=1)), path, row_group_size=100)
    case = {"name": "source", "n_rows": 1_003, "parquet": str(path),
            "params": {"batch_size": 64, "max_epochs": 3, "early_stopping": False}}
    done = _torchrun([case], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rank0, rank1 = [dict(np.load(tmp_path / f"source-rank{r}.npz")) for r in (0, 1)]
    # Same model on both ranks, the same steps: 1,003 // 64 = 15 global batches a pass,
    # each rank 32 rows of each from its own slice of the permuted row groups.
    np.testing.assert_array_equal(rank0["parameters"], rank1["parameters"])
    assert list(rank0["batch_counts"]) == list(rank1["batch_counts"]) == [15, 15, 15]
    np.testing.assert_array_equal(rank0["train_loss"], rank1["train_loss"])
    # As good a fit as one process on the same source and global batch.
    single = summary(*fit_case(case, distributed=False))
    assert single["batch_counts"].tolist() == [16, 16, 16]
    assert abs(rank0["train_loss"][-1] - single["train_loss"][-1]) < 0.1 * single["train_loss"][-1]
    np.testing.assert_array_equal(rank0["loaded_predictions"], rank0["predictions"])


@pytest.mark.distributed
def test_early_stopping_balance_loss_and_metrics_are_exercised(two_rank_results):
    rank0, _ = two_rank_results[0]["default"]
    assert int(rank0["n_iter"]) < 40  # stopped early, on both ranks alike (above)
    assert np.all(rank0["gate_balance_loss"] > 0)
    # Validation (101 rows, batches of 64 split over 2 ranks) gave every task's metric.
    assert np.isfinite(rank0["valid_metrics"]).all()


@pytest.mark.distributed
def test_only_rank_zero_warns(two_rank_results):
    # The cases end at max_epochs still improving: each warns once for the job, from
    # rank 0, not once per rank (both ranks reach the same, identical message).
    stderr = two_rank_results[1]
    warned = [line for line in stderr.splitlines() if "ConvergenceWarning: Training stopped" in line]
    assert warned and len(set(warned)) == len(warned), stderr[-3000:]
    assert "Grad strides" not in stderr


@pytest.mark.distributed
def test_ranks_with_different_data_fail_with_a_clear_error(tmp_path):
    case = {"name": "different", "n_rows": 300, "data_seeds": [0, 1],
            "params": {"max_epochs": 2, "distributed_timeout": 60}}
    done = _torchrun([case], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        kind, _, message = _error(tmp_path, "different", rank)
        assert kind == "DistributedTrainingError"
        assert "differ across ranks" in message and "same full X" in message


@pytest.mark.distributed
def test_a_killed_rank_ends_the_others_with_a_clear_error(tmp_path):
    case = {"name": "killed", "n_rows": 2000, "stop_rank": 1, "at_epoch": 2, "how": "die",
            "params": {"max_epochs": 50, "early_stopping": False, "distributed_timeout": 60}}
    codes = _wait(_start_ranks(case, tmp_path), for_ranks=(0, 1))
    assert codes[1] == 17  # the worker's "killed" exit
    kind, seconds, message = _error(tmp_path, "killed", 0)
    assert kind == "DistributedTrainingError"
    assert "rank 0 of 2" in message and "another rank stopped" in message
    assert seconds < 60  # the closed connection is seen at once, not at the timeout


@pytest.mark.distributed
def test_a_stuck_rank_ends_the_others_at_the_timeout(tmp_path):
    case = {"name": "stuck", "n_rows": 2000, "stop_rank": 1, "at_epoch": 2, "how": "hang",
            "params": {"max_epochs": 50, "early_stopping": False, "distributed_timeout": 5}}
    _wait(_start_ranks(case, tmp_path), for_ranks=(0,))
    kind, seconds, message = _error(tmp_path, "stuck", 0)
    assert kind == "DistributedTrainingError"
    assert "distributed_timeout=5" in message
    assert seconds < 60


@pytest.mark.distributed
def test_a_group_that_never_forms_fails_within_the_timeout(tmp_path):
    case = {"name": "alone", "n_rows": 100, "params": {"distributed_timeout": 3}}
    started = time.time()
    _wait(_start_ranks(case, tmp_path, ranks=(0,), world=2), for_ranks=(0,))
    kind, _, message = _error(tmp_path, "alone", 0)
    assert kind == "DistributedTrainingError"
    assert "could not form the gloo process group" in message and "Rank 0 of 2" in message
    assert time.time() - started < 60


# -- no processes started: these run in the main suite ----------------------------------


def test_without_a_process_group_fit_says_how_to_start_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    X = np.random.RandomState(0).normal(size=(40, 3))
    model = MMoERegressorClassifier(distributed=True, max_epochs=1)
    with pytest.raises(DistributedTrainingError, match="RANK, WORLD_SIZE, MASTER_ADDR") as info:
        model.fit(X, X[:, 0])
    assert "torchrun" in str(info.value) and "distributed=False" in str(info.value)
    assert not hasattr(model, "n_iter_")


@pytest.mark.parametrize("params, message", [
    ({"distributed": "yes"}, "'distributed' parameter"),
    ({"distributed_timeout": 0}, "'distributed_timeout' parameter"),
])
def test_invalid_distributed_parameters_are_named(params, message):
    X = np.random.RandomState(0).normal(size=(40, 3))
    with pytest.raises(InvalidParameterError, match=message):
        MMoERegressorClassifier(max_epochs=1, **params).fit(X, X[:, 0])
