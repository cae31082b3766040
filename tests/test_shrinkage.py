"""Shrinking quantity outputs toward the training mean on the validation rows
(``shrink_quantities``, ``output_shrinkage_``)."""

import numpy as np
import pandas as pd
import pytest
import torch

from sk_mmoe import MMoERegressorClassifier, load_model, save_model
from sk_mmoe._loss import MultiTaskLoss
from sk_mmoe._shrinkage import SHRINKAGE_GRID, scale_task_outputs, validation_shrinkage
from sk_mmoe.tasks import get_task

SMALL = dict(n_experts=2, expert_layer_sizes=(16,), tower_layer_sizes=(8,), random_state=0)


def _signal_and_noise(n=1200, seed=0):
    """A regression task the features predict, one they do not (pure noise), and classes."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 5))
    y = pd.DataFrame({
        "signal": 2.0 * X[:, 0] + 0.2 * rng.normal(size=n),
        "noise": rng.normal(size=n) * 3.0 + 10.0,
        "label": np.where(X[:, 1] > 0, "a", "b"),
    })
    return X, y


def _fitted_tasks(y):
    return [get_task(kind).fit(name, y[name]) for name, kind in
            zip(y.columns, ("regression", "regression", "binary"))]


def test_the_factor_minimises_squared_error_and_leaves_classes_alone():
    rng = np.random.RandomState(0)
    n = 5000
    truth = rng.normal(size=n)
    y = pd.DataFrame({"a": truth + 0.1 * rng.normal(size=n), "b": rng.normal(size=n),
                      "c": np.where(truth > 0, "x", "y")})
    criterion = MultiTaskLoss(_fitted_tasks(y), [1.0, 1.0, 1.0])
    encoded = np.column_stack([t.encode(y[t.name_]) if not t.is_classifier
                               else (y[t.name_] == "y").to_numpy(np.float32)
                               for t in criterion.tasks])
    raw = torch.zeros(n, 3, 1)
    # Task a: twice the right answer, so half of it is best. Task b: noise, best at 0.
    raw[:, 0, 0] = 2 * torch.from_numpy(encoded[:, 0])
    raw[:, 1, 0] = torch.from_numpy(rng.normal(size=n).astype(np.float32))
    raw[:, 2, 0] = 5.0 * torch.from_numpy(rng.normal(size=n).astype(np.float32))
    # In two batches, as the estimator passes them.
    target = torch.from_numpy(encoded)
    factors = validation_shrinkage([(raw[:3000], target[:3000]), (raw[3000:], target[3000:])], criterion)
    assert factors[0] == pytest.approx(0.5, abs=0.02)
    assert factors[1] == pytest.approx(0.0, abs=0.05)
    assert factors[2] == 1.0
    assert set(factors) <= set(SHRINKAGE_GRID) | {1.0}


def test_scaling_the_output_layer_scales_each_tasks_output():
    X, y = _signal_and_noise(300)
    model = MMoERegressorClassifier(**SMALL, max_epochs=2, early_stopping=False).fit(X, y)
    before = model._raw_outputs(X)
    scale_task_outputs(model.module_, [0.5, 0.0, 1.0])
    after = model._raw_outputs(X)
    np.testing.assert_allclose(after[:, 0], 0.5 * before[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after[:, 1], 0.0, atol=1e-7)
    np.testing.assert_allclose(after[:, 2], before[:, 2], rtol=1e-6)


def _overfitting_noise(n=1600, seed=0, n_features=20):
    """A smooth task that keeps early stopping going, and pure noise that a wide network
    with many features overfits meanwhile."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    y = pd.DataFrame({
        "signal": np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.normal(size=n),
        "noise": rng.normal(size=n) * 3.0 + 10.0,
    })
    return X, y


def test_a_task_without_signal_falls_back_toward_its_mean_and_one_with_signal_does_not():
    X, y = _overfitting_noise()
    train, test = slice(0, 600), slice(600, None)
    # Without the small tables' weight decay, which at lr 0.01 (a share 0.02 of the weights
    # a step) would keep the network from overfitting anything, signal included.
    params = dict(n_experts=2, expert_layer_sizes=(64,), tower_layer_sizes=(32,), lr=0.01,
                  batch_size=32, n_iter_no_change=20, random_state=0, optimizer__weight_decay=0.0)
    shrunk = MMoERegressorClassifier(**params).fit(X[train], y[train])
    kept = MMoERegressorClassifier(**params, shrink_quantities=False).fit(X[train], y[train])
    signal, noise = shrunk.output_shrinkage_
    assert noise < 0.6 and signal > 0.9
    np.testing.assert_array_equal(kept.output_shrinkage_, [1.0, 1.0])

    def mse(model, task):
        return float(np.mean((model.predict(X[test])[task].to_numpy() - y[task].to_numpy()[test]) ** 2))

    mean_error = float(np.mean((y["noise"][train].mean() - y["noise"].to_numpy()[test]) ** 2))
    # The overfitted noise predictions are worse than the training mean; shrunk, they are not.
    assert mse(kept, "noise") > 1.1 * mean_error
    assert mse(shrunk, "noise") <= 1.01 * mean_error
    assert mse(shrunk, "signal") <= 1.02 * mse(kept, "signal")


def test_nothing_changes_without_validation_rows():
    X, y = _signal_and_noise(400)
    params = dict(SMALL, max_epochs=5, early_stopping=False)
    on = MMoERegressorClassifier(**params).fit(X, y)
    off = MMoERegressorClassifier(**params, shrink_quantities=False).fit(X, y)
    np.testing.assert_array_equal(on.output_shrinkage_, np.ones(3))
    pd.testing.assert_frame_equal(on.predict(X), off.predict(X))


def test_an_eval_set_chooses_the_factors(tmp_path):
    X, y = _signal_and_noise()
    model = MMoERegressorClassifier(**SMALL, max_epochs=30).fit(
        X[:800], y[:800], eval_set=(X[800:1000], y[800:1000]))
    assert model.output_shrinkage_[1] < 0.5
    # The factors are part of the saved model, and the saved weights already hold them.
    save_model(model, tmp_path / "m.skmmoe")
    loaded = load_model(tmp_path / "m.skmmoe")
    np.testing.assert_array_equal(loaded.output_shrinkage_, model.output_shrinkage_)
    pd.testing.assert_frame_equal(loaded.predict(X[1000:]), model.predict(X[1000:]))
