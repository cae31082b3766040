"""Gate remedies: the two gate dropout modes, temperature and the balancing loss."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._gates import dropped_gate_weights, gate_softmax, importance_loss
from sk_mmoe._network import MMoENetwork


def _dominant_logit_gradient(mode, dropped):
    """d(mixture)/d(logit of expert 0) for one row, expert 0 dominant, outputs 1, 2, 3."""
    logits = torch.tensor([[[2.0, 0.0, 0.0]]], requires_grad=True)
    values = torch.tensor([1.0, 2.0, 3.0])
    weights = dropped_gate_weights(logits, torch.tensor([[dropped]]), 0.5, mode)
    (weights[0, 0] * values).sum().backward()
    return logits.grad[0, 0, 0].item()


def test_renormalize_gives_a_dropped_dominant_expert_no_gradient():
    assert _dominant_logit_gradient("renormalize", [True, False, False]) == 0.0


def test_scale_pushes_a_dropped_dominant_expert_down_through_the_others():
    softmax = torch.softmax(torch.tensor([2.0, 0.0, 0.0]), 0)
    # Only experts 1 and 2 contribute: d/dz0 of sum_e>0 v_e s_e / (1 - p) = -s0 sum s_e v_e / (1 - p).
    expected = -softmax[0] * (2 * softmax[1] + 3 * softmax[2]) / 0.5
    got = _dominant_logit_gradient("scale", [True, False, False])
    assert got == pytest.approx(expected.item(), rel=1e-6)
    assert got < 0  # the better experts were kept: the dominant logit goes down


def test_both_modes_agree_when_nothing_is_dropped_up_to_the_scale():
    kept = [False, False, False]
    renormalized = _dominant_logit_gradient("renormalize", kept)
    assert _dominant_logit_gradient("scale", kept) == pytest.approx(renormalized / 0.5)


def test_scale_mode_is_inverted_dropout_on_the_softmax():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 5).expand(40000, 2, 5)
    weights = gate_softmax(logits, dropout=0.2, mode="scale", training=True)
    exact = torch.softmax(logits[:1], -1)
    kept = weights > 0
    assert abs((~kept).float().mean().item() - 0.2) < 0.01
    torch.testing.assert_close(weights[kept], (exact.expand_as(weights) / 0.8)[kept])
    torch.testing.assert_close(weights.mean(0, keepdim=True), exact, atol=0.01, rtol=0)
    assert weights.sum(-1).std() > 0.1  # not renormalised


def test_temperature_divides_the_logits():
    logits = torch.tensor([[[1.0, 2.0, 4.0]]])
    torch.testing.assert_close(gate_softmax(logits, temperature=2.0),
                               torch.softmax(logits / 2.0, -1))
    net = MMoENetwork(3, [1], n_experts=3, gate_temperature=4.0)
    cold = MMoENetwork(3, [1], n_experts=3, gate_temperature=1.0)
    cold.load_state_dict(net.state_dict())
    net.eval(), cold.eval()
    x = torch.randn(50, 3)
    assert net.gate_weights(x).max(-1).values.mean() < cold.gate_weights(x).max(-1).values.mean()


def test_importance_loss_is_the_squared_cv_of_summed_gate_weights():
    weights = torch.tensor([[[0.7, 0.2, 0.1]], [[0.5, 0.3, 0.2]]])  # (batch 2, 1 gate, 3)
    importance = torch.tensor([1.2, 0.5, 0.3])
    expected = importance.var(correction=0) / importance.mean() ** 2
    torch.testing.assert_close(importance_loss([weights]), expected)
    uniform = torch.full((6, 2, 4), 0.25)
    # The mean over all three gates: two uniform ones (0) and the one above.
    assert importance_loss([uniform, weights]).item() == pytest.approx(expected.item() / 3)


def _balance_gradients(gate_balance):
    torch.manual_seed(1)
    net = MMoENetwork(4, [1, 1], n_experts=4, gate_dropout=0.0, gate_balance=gate_balance)
    net.train()
    x, y = torch.randn(64, 4), torch.randn(64, 2)
    out = net(x)[:, :, 0]
    loss = ((out - y) ** 2).mean() + net.__dict__.pop("auxiliary_loss", 0.0)
    loss.backward()
    return net, net.levels[0].gates.layers[0].weight.grad.clone()


def test_balance_loss_changes_the_gate_gradients():
    plain_net, plain = _balance_gradients(0.0)
    assert not hasattr(plain_net, "auxiliary_loss")  # nothing left behind at 0
    _, balanced = _balance_gradients(1.0)
    assert not torch.allclose(plain, balanced)


def test_balance_loss_is_zero_for_uniform_gates():
    net = MMoENetwork(4, [1, 1], n_experts=4, gate_dropout=0.0, gate_balance=5.0)
    with torch.no_grad():
        for layer in net.levels[0].gates.layers:
            layer.weight.zero_()
            layer.bias.zero_()
    net.train()
    net(torch.randn(32, 4))
    assert net.auxiliary_loss.item() == 0.0


def test_balance_loss_covers_every_ple_gate():
    torch.manual_seed(2)
    net = MMoENetwork(4, [1, 1], n_experts=2, n_task_experts=1, n_levels=2,
                      gate_dropout=0.0, gate_balance=1.0, architecture="ple")
    net.train()
    x = torch.randn(32, 4)
    net(x)
    _, _, gates = net._extract(x)
    torch.testing.assert_close(net.auxiliary_loss, importance_loss(gates))
    assert len(gates) == 3


def test_balance_loss_is_in_history_and_in_the_training_loss():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    y = np.c_[X[:, 0], X[:, 1]]
    common = dict(n_experts=4, max_epochs=3, batch_size=40, early_stopping=False,
                  random_state=0)
    balanced = MMoERegressorClassifier(gate_balance=0.5, **common).fit(X, y)
    plain = MMoERegressorClassifier(**common).fit(X, y)
    values = balanced.history_[:, "gate_balance_loss"]
    assert len(values) == 3 and all(v > 0 for v in values)
    batches = [b["gate_balance_loss"] for b in balanced.history_[0, "batches"]]
    assert len(batches) == 3 and values[0] == pytest.approx(np.mean(batches))
    assert "gate_balance_loss" not in plain.history_[-1]
    assert not hasattr(balanced.module_, "auxiliary_loss")  # consumed by every step
    # Identical first batch, so the first training loss differs by the balancing term.
    first = balanced.history_[0, "batches"][0]
    assert first["train_loss"] == pytest.approx(
        plain.history_[0, "batches"][0]["train_loss"] + first["gate_balance_loss"], rel=1e-5)


@pytest.mark.parametrize("mode", ["renormalize", "scale"])
def test_estimator_passes_the_gate_parameters_on(mode):
    X = np.random.RandomState(0).normal(size=(60, 3))
    model = MMoERegressorClassifier(n_experts=3, gate_dropout_mode=mode, gate_temperature=2.5,
                                    gate_balance=0.1, max_epochs=1).fit(X, X[:, :2])
    net = model.module_
    assert (net.gate_dropout_mode, net.gate_temperature, net.gate_balance) == (mode, 2.5, 0.1)


@pytest.mark.parametrize("param, value", [
    ("gate_dropout_mode", "mask"),
    ("gate_temperature", 0.0),
    ("gate_temperature", -1.0),
    ("gate_balance", -0.1),
    ("n_task_experts", 0),
    ("n_levels", 0),
    ("task_weights", "learned"),
])
def test_bad_gate_and_family_parameters_are_named(param, value):
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        MMoERegressorClassifier(**{param: value}, max_epochs=1).fit(X, X)
