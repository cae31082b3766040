"""Training policy: defaults that converge, early stopping, validation sets, warnings."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._early_stopping import (
    EARLY_STOPPING_MIN_ROWS,
    stratification_labels,
    uses_early_stopping,
    validation_split,
)
from sk_mmoe._training import resolve_batch_size
from sk_mmoe.tasks import Binary, Regression


def test_auto_batch_size_gives_small_data_enough_steps():
    assert resolve_batch_size("auto", 150) == 16
    assert resolve_batch_size("auto", 2_000) == 64
    assert resolve_batch_size("auto", 10_000) == 256
    # Large tables: fewer, larger steps (issue 19), at a proportionally raised rate.
    assert resolve_batch_size("auto", 16_384) == 512
    assert resolve_batch_size("auto", 1_000_000) == 1024
    assert resolve_batch_size(-1, 37) == 37
    assert resolve_batch_size(100, 37) == 100


def test_large_auto_batches_raise_the_learning_rate_and_chosen_ones_do_not():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(16_384, 3)).astype(np.float32)
    y = X[:, 0]
    params = dict(expert_layer_sizes=(4,), n_experts=2, max_epochs=1, early_stopping=False, lr=1e-3)
    model = MMoERegressorClassifier(**params).fit(X, y)
    assert model.history_[-1, "train_batch_count"] == 16_384 // 512
    assert model.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3 * 2**0.5)
    assert model.optimizer_.param_groups[0]["fused"]
    chosen = MMoERegressorClassifier(**params, batch_size=512).fit(X, y)
    assert chosen.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3)
    small = MMoERegressorClassifier(**params).fit(X[:5_000], y[:5_000])
    assert small.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_auto_early_stopping_switches_on_with_rows_or_a_validation_set():
    assert not uses_early_stopping("auto", EARLY_STOPPING_MIN_ROWS - 1, has_eval_set=False)
    assert uses_early_stopping("auto", EARLY_STOPPING_MIN_ROWS, has_eval_set=False)
    assert EARLY_STOPPING_MIN_ROWS == 100
    assert uses_early_stopping("auto", 10, has_eval_set=True)
    assert not uses_early_stopping(False, 10**6, has_eval_set=True)


def test_validation_split_is_stratified_and_keeps_missing_labels_as_a_stratum():
    y = np.full((1000, 2), np.nan, dtype=np.float32)
    y[:, 0] = np.random.RandomState(0).normal(size=1000)  # regression: not used
    y[:900, 1] = np.r_[np.zeros(850), np.ones(50)]  # 5% positives, 10% missing
    strata = stratification_labels(y, [Regression(), Binary()])
    train, valid = validation_split(1000, 0.1, strata, seed=0)
    assert len(valid) == 100 and len(np.intersect1d(train, valid)) == 0
    assert (strata[valid] == 1).sum() == 5
    assert (strata[valid] == -1).sum() == 10
    assert stratification_labels(y[:, :1], [Regression()]) is None


def test_a_single_member_class_falls_back_to_a_random_split():
    strata = np.r_[np.zeros(99), 1].astype(int)
    train, valid = validation_split(100, 0.2, strata, seed=0)
    assert len(train) == 80 and len(valid) == 20


def test_linear_three_class_problem_reaches_high_accuracy_at_defaults():
    # ~150 rows, separable by a linear model: the defaults must not underfit it.
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MMoERegressorClassifier(random_state=0).fit(X_train, y_train)
    assert model.score(X_test, y_test) >= 0.95


def test_early_stopping_by_default_on_larger_data_restores_the_best_epoch(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(EARLY_STOPPING_MIN_ROWS, 5))
    y = X[:, 0] + rng.normal(size=len(X))  # noisy: the network can overfit
    params = dict(small_params, max_epochs=60, lr=0.03)
    del params["batch_size"]
    model = MMoERegressorClassifier(**params).fit(X, y)
    history = model.history_
    assert "valid_loss" in history[-1]
    n_train = len(X) - len(X) // 10  # 10% held out
    # The batch size follows the rows given to fit, before the hold-out.
    assert history[-1, "train_batch_count"] == -(-n_train // resolve_batch_size("auto", len(X)))
    best = int(np.argmin(history[:, "valid_loss"]))
    assert len(history) < 60
    assert history[best, "valid_loss_best"]


def test_eval_set_replaces_the_hold_out(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=5))
    model.fit(X[:300], y[:300], eval_set=(X[300:], y[300:]))
    assert model.history_[-1, "train_batch_count"] == -(-300 // 64)  # every training row
    assert model.history_[-1, "valid_batch_count"] == -(-100 // 64)  # the eval_set rows
    with pytest.raises(ValueError, match=r"eval_set must be a tuple \(X_val, y_val\)"):
        model.fit(X, y, eval_set=X)
    with pytest.raises(ValueError, match="eval_set: X_val has 100 rows but y_val has 99"):
        model.fit(X[:300], y[:300], eval_set=(X[300:], y[301:]))
    with pytest.raises(ValueError, match="not seen at the first fit"):
        model.fit(X[:300], y[:300], eval_set=(X[300:], y[300:].assign(churn="maybe")))


def test_eval_set_without_early_stopping_only_records_the_validation_loss(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=4, early_stopping=False))
    model.fit(X[:300], y[:300], eval_set=(X[300:], y[300:]))
    assert len(model.history_) == 4 and "valid_loss" not in model.history_[-1]


def test_convergence_warning_when_max_epochs_cut_training_short(mixed_data, small_params):
    X, y = mixed_data
    with pytest.warns(ConvergenceWarning, match="max_epochs=12.*still improving.*Increase max_epochs"):
        MMoERegressorClassifier(**dict(small_params, max_epochs=12, lr=1e-3)).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="validation loss"):
        MMoERegressorClassifier(**dict(small_params, max_epochs=12, lr=1e-3)).fit(
            X[:300], y[:300], eval_set=(X[300:], y[300:])
        )


@pytest.mark.parametrize("max_epochs", [2, 5, 10])
def test_convergence_warning_also_when_max_epochs_is_within_the_patience(
    mixed_data, small_params, max_epochs
):
    # max_epochs <= n_iter_no_change (10): the rule compares the epochs after the first
    # with the first, with and without early stopping.
    X, y = mixed_data
    params = dict(small_params, max_epochs=max_epochs, lr=1e-3)
    with pytest.warns(ConvergenceWarning, match=rf"max_epochs={max_epochs} .*still improving"):
        MMoERegressorClassifier(**params, early_stopping=False).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="validation loss was still improving"):
        MMoERegressorClassifier(**params).fit(X[:300], y[:300], eval_set=(X[300:], y[300:]))


def test_convergence_warning_after_a_single_epoch(mixed_data, small_params):
    X, y = mixed_data
    with pytest.warns(ConvergenceWarning, match="max_epochs=1 after a single epoch"):
        MMoERegressorClassifier(**dict(small_params, max_epochs=1)).fit(X, y)


def test_no_convergence_warning_within_the_patience_when_the_loss_stalled(mixed_data, small_params):
    # At lr=0 nothing changes: a short run that stopped improving is not cut short.
    X, y = mixed_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        MMoERegressorClassifier(**dict(small_params, max_epochs=3, lr=1e-12, gate_dropout=0.0,
                                       early_stopping=False)).fit(X, y)


def test_no_convergence_warning_once_training_has_stalled(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = pd.Series(np.where(X[:, 0] > 0, "a", "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # Early stopping ends it before max_epochs: nothing to warn about.
        MMoERegressorClassifier(**dict(small_params, max_epochs=500, early_stopping=True)).fit(X, y)


def _decay(model):
    group = model.optimizer_.param_groups[0]
    return group["weight_decay"], group.get("decoupled_weight_decay", False)


def test_small_fits_train_the_default_adam_with_decoupled_weight_decay():
    from sk_mmoe._training import SMALL_TABLE_ROWS, SMALL_TABLE_WEIGHT_DECAY

    rng = np.random.RandomState(0)
    X = rng.normal(size=(SMALL_TABLE_ROWS, 3)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "a", "b")
    params = dict(n_experts=2, expert_layer_sizes=(4,), max_epochs=1, random_state=0)
    below = MMoERegressorClassifier(**params).fit(X[:-1], y[:-1])
    assert _decay(below) == (SMALL_TABLE_WEIGHT_DECAY, True) == (2.0, True)
    # The rows fit is given count, hold-out included: 999 decays, 1,000 does not.
    assert _decay(MMoERegressorClassifier(**params).fit(X, y)) == (0, False)
    # A choice of the caller's wins: their decay, or another optimizer.
    chosen = MMoERegressorClassifier(**params, optimizer__weight_decay=0.0).fit(X[:150], y[:150])
    assert _decay(chosen) == (0.0, False)
    other = MMoERegressorClassifier(**params, optimizer=torch.optim.AdamW).fit(X[:150], y[:150])
    assert _decay(other) == (0.01, True)  # AdamW's own default
    sgd = MMoERegressorClassifier(**params, optimizer=torch.optim.SGD).fit(X[:150], y[:150])
    assert sgd.optimizer_.param_groups[0]["weight_decay"] == 0


def test_small_table_decay_is_adamw_at_decay_2_and_reproducible():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(150, 4)).astype(np.float32)
    y = np.argmax(X[:, :3] + rng.gumbel(size=(150, 3)), axis=1).astype(str)
    weight = rng.uniform(0.5, 2.0, size=150)
    params = dict(n_experts=2, expert_layer_sizes=(8,), max_epochs=15, random_state=3)
    default = MMoERegressorClassifier(**params).fit(X, y, sample_weight=weight)
    # Exactly the candidate chosen on validation rows (benchmarks/tiny.py "adamw_2").
    adamw = MMoERegressorClassifier(
        **params, optimizer=torch.optim.AdamW, optimizer__weight_decay=2.0
    ).fit(X, y, sample_weight=weight)
    assert np.array_equal(default.predict_proba(X), adamw.predict_proba(X))
    again = MMoERegressorClassifier(**params).fit(X, y, sample_weight=weight)
    assert np.array_equal(default.predict_proba(X), again.predict_proba(X))
    plain = MMoERegressorClassifier(**params, optimizer__weight_decay=0.0).fit(X, y, sample_weight=weight)
    assert not np.array_equal(default.predict_proba(X), plain.predict_proba(X))


def test_partial_fit_never_decays_and_continuing_keeps_the_fits_optimizer():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = np.c_[X[:, 0], np.where(X[:, 1] > 0, 1.0, np.nan)]  # a missing label per row or so
    params = dict(n_experts=2, expert_layer_sizes=(4,), max_epochs=2, random_state=0)
    # partial_fit's rows per call say nothing about the table's size.
    streamed = MMoERegressorClassifier(**params).partial_fit(X[:100], y[:100])
    assert _decay(streamed) == (0, False)
    assert _decay(streamed.partial_fit(X[100:], y[100:])) == (0, False)
    fitted = MMoERegressorClassifier(**params, warm_start=True).fit(X, y)
    assert _decay(fitted) == (2.0, True)
    assert _decay(fitted.fit(X[:50], y[:50])) == (2.0, True)  # warm start continues it
    assert _decay(fitted.partial_fit(X, y)) == (2.0, True)
    # An eval_set does not change the table's size: the rule still applies.
    with_eval = MMoERegressorClassifier(**params).fit(X[:150], y[:150], eval_set=(X[150:], y[150:]))
    assert _decay(with_eval) == (2.0, True)


def test_learned_task_weights_are_not_decayed():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3)).astype(np.float32)
    params = dict(n_experts=2, expert_layer_sizes=(4,), max_epochs=1, random_state=0)
    model = MMoERegressorClassifier(**params, task_weights="uncertainty").fit(X, X[:, :2])
    assert _decay(model) == (0, False)
