"""What set_params changes between training calls, and warm_start."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._params import STRUCTURAL_PARAMS


@pytest.fixture
def continued(mixed_data, small_params):
    X, y = mixed_data
    return MMoERegressorClassifier(**dict(small_params, max_epochs=2)).partial_fit(X, y)


def test_training_parameters_apply_to_the_next_partial_fit(continued, mixed_data):
    X, y = mixed_data
    continued.set_params(lr=0.05, max_epochs=3, optimizer__weight_decay=0.25, batch_size=100)
    continued.partial_fit(X, y)
    group = continued.optimizer_.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 0.25
    assert continued.n_iter_ == 5 and len(continued.history_) == 5
    assert len(continued.history_[-1, "batches"]) == 4  # 400 rows in batches of 100


@pytest.mark.parametrize(
    "change",
    [
        {"n_experts": 5},
        {"task_weights": "uncertainty"},
        {"numeric_embedding": "periodic"},
        {"n_task_experts": 2},
        {"expert_layer_sizes": (4, 4)},
        {"gate_layer_sizes": (4,)},
        {"tower_layer_sizes": ()},
        {"architecture": "omoe"},
        {"tasks": {"segment": "regression"}},
    ],
)
def test_structural_changes_are_refused_by_partial_fit(continued, mixed_data, change):
    X, y = mixed_data
    (name, value), = change.items()
    before = [p.detach().clone() for p in continued.module_.parameters()]
    continued.set_params(**change)
    with pytest.raises(ValueError, match=rf"partial_fit .*changed {name} \(.* -> .*\).*Call fit"):
        continued.partial_fit(X, y)
    assert all(torch.equal(a, b) for a, b in zip(before, continued.module_.parameters()))
    assert continued.n_iter_ == 2
    continued.fit(X, y)  # fit builds a new network with the new value
    assert continued.n_iter_ == 2


def test_training_settings_of_the_network_and_loss_apply_in_place(continued, mixed_data):
    X, y = mixed_data
    before = [p.detach().clone() for p in continued.module_.parameters()]
    continued.set_params(gate_dropout=0.4, gate_dropout_mode="scale", gate_temperature=2.5,
                         gate_balance=0.3, task_weights=[1.0, 2.0, 0.5])
    continued.partial_fit(X, y)
    module = continued.module_
    assert (module.gate_dropout, module.gate_dropout_mode) == (0.4, "scale")
    assert (module.gate_temperature, module.gate_balance) == (2.5, 0.3)
    np.testing.assert_array_equal(continued.task_weights_, [1.0, 2.0, 0.5])
    assert continued.n_iter_ == 4
    # gate_balance > 0 is in the training loss from now on, and the weights trained on.
    assert "gate_balance_loss" in continued.history_[-1, "batches"][0]
    assert not all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
    # The same settings given to a new network at fit are the ones now in use.
    fresh = clone(continued).fit(X, y)
    assert (fresh.module_.gate_temperature, fresh.module_.gate_dropout_mode) == (2.5, "scale")


def test_refused_task_weights_leave_the_model_as_it_was(continued, mixed_data):
    X, y = mixed_data
    continued.set_params(gate_temperature=2.0, task_weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="task_weights must be finite, non-negative"):
        continued.partial_fit(X, y)
    assert continued.module_.gate_temperature == 1.0
    np.testing.assert_array_equal(continued.criterion_.task_weights.numpy(), [1.0, 1.0, 1.0])


def test_setting_a_structural_parameter_back_or_to_an_equal_value_is_fine(continued, mixed_data):
    X, y = mixed_data
    continued.set_params(n_experts=7).set_params(n_experts=3, expert_layer_sizes=[16])
    continued.partial_fit(X, y)
    assert continued.n_iter_ == 4


def test_every_structural_parameter_is_a_constructor_parameter():
    # A name that is no parameter would silently never be checked.
    assert STRUCTURAL_PARAMS <= set(MMoERegressorClassifier().get_params())


def test_a_new_optimizer_class_rebuilds_the_optimizer(continued, mixed_data):
    X, y = mixed_data
    continued.set_params(optimizer=torch.optim.SGD, lr=0.003)
    continued.partial_fit(X, y)
    assert isinstance(continued.optimizer_, torch.optim.SGD)
    assert continued.optimizer_.param_groups[0]["lr"] == 0.003
    # The rebuilt optimizer trains the same network, whose parameters it holds.
    held = {id(p) for group in continued.optimizer_.param_groups for p in group["params"]}
    assert held == {id(p) for p in continued.module_.parameters()}


def test_early_stopping_switched_on_between_calls_takes_effect(continued, mixed_data):
    X, y = mixed_data
    continued.set_params(early_stopping=True, n_iter_no_change=1, max_epochs=30)
    continued.partial_fit(X, y)
    assert "early_stopping" in dict(continued.callbacks_)
    assert "valid_loss" in continued.history_[-1]
    assert continued.n_iter_ < 32


def test_parameters_are_validated_at_every_partial_fit(continued, mixed_data):
    X, y = mixed_data
    continued.set_params(lr=-1.0)
    with pytest.raises(ValueError, match="'lr' parameter"):
        continued.partial_fit(X, y)


def test_warm_start_is_a_parameter_that_survives_clone():
    model = MMoERegressorClassifier(warm_start=True)
    assert model.get_params()["warm_start"] is True
    assert clone(model).get_params()["warm_start"] is True
    assert "warm_start=True" in repr(model)


def test_warm_start_fit_continues_the_fitted_network(mixed_data, small_params):
    X, y = mixed_data
    params = dict(small_params, max_epochs=2, early_stopping=False)
    warm = MMoERegressorClassifier(**params, warm_start=True).fit(X, y)
    weights = [p.detach().clone() for p in warm.module_.parameters()]
    module = warm.module_
    warm.fit(X, y)
    assert warm.module_ is module and warm.n_iter_ == 4 and len(warm.history_) == 4
    assert any(not torch.equal(a, b) for a, b in zip(weights, warm.module_.parameters()))
    # It trains exactly as partial_fit does from the same start.
    stepwise = MMoERegressorClassifier(**params).fit(X, y).partial_fit(X, y)
    np.testing.assert_allclose(
        stepwise.predict(X)["amount"], warm.predict(X)["amount"], rtol=1e-5
    )
    cold = MMoERegressorClassifier(**params, warm_start=False).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 2


def test_warm_start_refuses_new_tasks_and_structural_changes(mixed_data, small_params):
    X, y = mixed_data
    warm = MMoERegressorClassifier(**dict(small_params, max_epochs=1), warm_start=True)
    warm.fit(X, y)
    with pytest.raises(ValueError, match=r"column\(s\) \['extra'\] that are not tasks.*warm_start=False"):
        warm.fit(X, y.assign(extra=1.0))
    warm.set_params(n_experts=4)
    with pytest.raises(ValueError, match=r"fit with warm_start=True .*changed n_experts \(3 -> 4\)"):
        warm.fit(X, y)
    warm.set_params(warm_start=False).fit(X, y)
    assert warm.module_.n_experts == 4


def test_partial_fit_refuses_a_new_target_column(continued, mixed_data):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"y has column\(s\) \['extra'\] that are not tasks of the fitted model"):
        continued.partial_fit(X, y.assign(extra=np.arange(400.0)))
    assert continued.task_names_ == ["amount", "churn", "segment"]


def test_partial_fit_refuses_an_extra_column_of_an_array(mixed_data, small_params):
    # Already refused before issue 11 (the probe); kept so it stays so.
    X, y = mixed_data
    y = y.assign(churn=(y["churn"] == "yes").astype(float)).to_numpy()
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=1)).partial_fit(X, y)
    with pytest.raises(ValueError, match=r"y has 4 column\(s\) but the model was fitted on 3 task\(s\)"):
        model.partial_fit(X, np.column_stack([y, np.zeros(400)]))


def test_warm_start_fit_with_an_eval_set_stops_on_it(mixed_data, small_params):
    X, y = mixed_data
    params = dict(small_params, max_epochs=2, early_stopping=True, n_iter_no_change=1)
    warm = MMoERegressorClassifier(**params, warm_start=True)
    warm.fit(X[:300], y.iloc[:300], eval_set=(X[300:], y.iloc[300:]))
    n_first = warm.n_iter_
    warm.set_params(max_epochs=20).fit(X[:300], y.iloc[:300], eval_set=(X[300:], y.iloc[300:]))
    assert "valid_loss" in warm.history_[-1]
    assert n_first < warm.n_iter_ < n_first + 20  # stopped early on the eval set


def test_partial_fit_after_an_early_stopped_fit_trains_on_every_row(mixed_data, small_params):
    # early_stopping="auto" held rows out at fit; partial_fit holds none out unless
    # early_stopping=True (its documented rule), so the stopper is dropped for the call.
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=3, early_stopping="auto"))
    model.fit(X, y)
    assert "valid_loss" in model.history_[-1]
    model.partial_fit(X, y)
    assert "valid_loss" not in model.history_[-1]
    assert "early_stopping" not in dict(model.callbacks_)
    assert sum(b["train_batch_size"] for b in model.history_[-1, "batches"]) == 400
