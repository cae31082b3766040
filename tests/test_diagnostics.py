import warnings

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._data import TensorBatchDataset
from sk_mmoe.diagnostics import (
    GatePolarizationWarning,
    GateUtilization,
    dead_experts,
    expert_utilization,
    normalized_entropy,
    polarization_warning_message,
    polarized_row_share,
    polarized_tasks,
)


def test_normalized_entropy():
    u = np.array([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(normalized_entropy(u), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(normalized_entropy(np.ones((2, 1))), [1.0, 1.0])


def test_polarized_row_share_and_tasks_and_dead_experts():
    weights = np.zeros((4, 2, 3))
    weights[:, 0] = [[0.95, 0.05, 0], [0.95, 0.05, 0], [0.05, 0.95, 0], [0.5, 0.5, 0]]
    weights[:, 1] = [[0.3, 0.3, 0.4]] * 4
    np.testing.assert_allclose(polarized_row_share(weights), [0.75, 0.0])
    utilization = weights.mean(axis=0)
    assert polarized_tasks(utilization) == []  # rows disagree: no single expert dominates
    assert dead_experts(utilization) == []
    collapsed = np.array([[0.995, 0.0, 0.005], [0.96, 0.005, 0.035]])
    assert polarized_tasks(collapsed) == [0, 1]
    assert dead_experts(collapsed) == [1]


def test_warning_message_names_tasks_and_experts():
    collapsed = np.array([[0.995, 0.0, 0.005], [0.3, 0.005, 0.695]])
    message = polarization_warning_message(["income", "married"], collapsed, 0.0)
    assert "'income' puts 100% of its weight on expert 0" in message
    assert "expert(s) [1]" in message and "Set gate_balance (e.g. 0.1)" in message
    assert "did not cost accuracy" in message and "(n_experts=2) may do as well" in message
    assert "Standardise" not in message  # the model standardises numeric columns itself
    assert "'married'" not in message
    with_balance = polarization_warning_message(["a", "b"], collapsed, 0.1)
    assert "gate_balance" not in with_balance and with_balance.endswith("may do as well.")
    assert polarization_warning_message(["a"], np.array([[0.95, 0.05]]), 0.1) == (
        "Gate polarization: the gate of task 'a' puts 95% of its weight on expert 0."
    )
    # One dead expert of three alone is only recorded; two of three is worth a warning.
    assert polarization_warning_message(["a"], np.array([[0.5, 0.495, 0.005]]), 0.1) is None
    one_of_three = np.array([[0.85, 0.005, 0.145], [0.8, 0.0, 0.2]])
    assert polarization_warning_message(["a", "b"], one_of_three, 0.1) is None
    assert polarization_warning_message(["a"], np.array([[0.5, 0.49, 0.005, 0.005]]), 0.1) is None
    many_dead = polarization_warning_message(["a"], np.array([[0.6, 0.39, 0.005, 0.003, 0.002]]), 0.1)
    assert many_dead.endswith("Fewer experts (n_experts=2) may do as well.")
    assert "expert(s) [2, 3, 4]" in many_dead and "Standardise" not in many_dead
    assert polarization_warning_message(["a"], np.array([[0.5, 0.5]]), 0.0) is None
    assert polarization_warning_message(["a"], np.array([[1.0]]), 0.0) is None


def polarize(model, expert=0):
    """Make every gate of a fitted model put (almost) all weight on one expert."""
    head = model.module_.levels[-1].gates.layers[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-20.0)
        head.bias[:, expert] = 20.0


def test_a_polarized_gate_is_measured_and_warned_about(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=2, n_experts=4)).fit(X, y)
    polarize(model, expert=2)
    utilization = expert_utilization(model, X)
    assert utilization.shape == (3, 4)
    np.testing.assert_allclose(utilization[:, 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(normalized_entropy(utilization), 0.0, atol=1e-6)
    np.testing.assert_allclose(polarized_row_share(model.gate_weights(X)), 1.0)
    assert dead_experts(utilization) == [0, 1, 3]

    # Training further with gates this collapsed (and a frozen gate) keeps them collapsed.
    model.module_.levels[-1].gates.requires_grad_(False)
    with pytest.warns(GatePolarizationWarning, match=r"'amount' puts 100% of its weight on expert 2.*\[0, 1, 3\]"):
        model.partial_fit(X, y)
    last = model.history[-1]
    assert last["dead_experts"] == [0, 1, 3]
    assert np.allclose(last["gate_polarized_rows"], 1.0)


def test_history_records_gate_diagnostics_every_epoch(mixed_data, small_params):
    X, y = mixed_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", GatePolarizationWarning)
        model = MMoERegressorClassifier(**dict(small_params, max_epochs=4, early_stopping=False, numeric_embedding=None)).fit(X, y)
    assert len(model.history[:, "gate_utilization"]) == 4
    utilization = np.array(model.history[-1, "gate_utilization"])
    assert utilization.shape == (3, 3)
    # Recorded on the training rows (no validation split), so it matches a recomputation.
    np.testing.assert_allclose(utilization, expert_utilization(model, X), atol=1e-5)
    entropy = model.history[:, "gate_entropy"]
    assert np.array(entropy).shape == (4, 3)


def test_diagnostics_use_the_validation_rows_with_early_stopping(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(
        **dict(small_params, max_epochs=2), early_stopping=True, n_iter_no_change=50
    ).fit(X, y)
    callback = dict(model.callbacks_)["gate_utilization"]
    assert isinstance(callback, GateUtilization)
    assert len(model.history[-1, "gate_utilization"]) == 3


def test_row_cap_spreads_over_the_data():
    callback = GateUtilization(max_rows=5)

    rows = callback._rows(TensorBatchDataset(torch.arange(100.0).unsqueeze(1)), None)
    assert rows[:, 0].tolist() == [0.0, 24.0, 49.0, 74.0, 99.0]


def test_utilization_through_a_pipeline(mixed_data, small_params):
    X, y = mixed_data
    pipe = make_pipeline(StandardScaler(), MMoERegressorClassifier(**dict(small_params, max_epochs=2)))
    pipe.fit(X * 100, y)
    np.testing.assert_allclose(
        expert_utilization(pipe, X * 100), pipe[-1].gate_weights(pipe[0].transform(X * 100)).mean(0)
    )


def test_the_callback_can_be_switched_off(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=1), callbacks__gate_utilization=None)
    model.fit(X, y)
    assert "gate_utilization" not in model.history[-1]
