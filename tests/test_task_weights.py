"""Learned task weights (Kendall et al. 2018) and the fitted ``task_weights_``."""

import numpy as np
import pytest
import torch

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._loss import MultiTaskLoss
from sk_mmoe.tasks import Regression
from sk_mmoe._task_weights import UncertaintyWeights


def test_uncertainty_loss_follows_kendall_et_al():
    weighting = UncertaintyWeights([0.5, 1.0, 1.0])
    with torch.no_grad():
        weighting.log_variance.copy_(torch.tensor([0.4, -0.3, 1.0]))
    losses = torch.tensor([2.0, 0.7, 1.1])
    s = weighting.log_variance.detach()
    expected = (0.5 * torch.exp(-s[0]) * 2.0 + 0.5 * s[0]
                + torch.exp(-s[1]) * 0.7 + 0.5 * s[1]
                + torch.exp(-s[2]) * 1.1 + 0.5 * s[2])
    torch.testing.assert_close(weighting(losses), expected)
    torch.testing.assert_close(weighting.weights(),
                               torch.tensor([0.5, 1.0, 1.0]) * torch.exp(-s))


def test_log_variance_optimum_weighs_a_task_by_half_its_inverse_loss():
    weighting = UncertaintyWeights([0.5, 1.0])
    losses = torch.tensor([4.0, 0.25])
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.5)
    for _ in range(300):
        optimizer.zero_grad()
        weighting(losses).backward()
        optimizer.step()
    torch.testing.assert_close(weighting.weights(), 1 / (2 * losses), rtol=1e-3, atol=1e-4)


def test_a_task_without_labels_in_the_batch_leaves_its_log_variance_alone():
    loss = MultiTaskLoss([Regression(), Regression()], "uncertainty")
    outputs = torch.zeros(4, 2, 1, requires_grad=True)
    targets = torch.tensor([[2.0, np.nan]] * 4)
    per_task = loss.per_task(outputs, targets)
    loss.combine(per_task, labelled=~torch.isnan(targets).all(dim=0)).backward()
    grad = loss.uncertainty.log_variance.grad
    assert grad[0] != 0 and grad[1] == 0


def test_fixed_weights_are_reported_after_fit():
    X = np.random.RandomState(0).normal(size=(60, 3))
    model = MMoERegressorClassifier(task_weights=[2.0, 0.5], max_epochs=1).fit(X, X[:, :2])
    assert model.task_weights_.tolist() == [2.0, 0.5]
    assert MMoERegressorClassifier(max_epochs=1).fit(X, X[:, :2]).task_weights_.tolist() == [
        1.0, 1.0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_uncertainty_weights_are_trained_and_downweigh_the_noisy_task():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 4))
    clean = X[:, 0] + 0.05 * rng.normal(size=400)
    noisy = X[:, 1] + 3.0 * rng.normal(size=400)  # R² about 0.1: a large standardised MSE
    model = MMoERegressorClassifier(task_weights="uncertainty", n_experts=3, max_epochs=40,
                                    lr=1e-2, batch_size=100, early_stopping=False,
                                    random_state=0)
    model.fit(X, np.c_[clean, noisy])
    log_variance = model.criterion_.uncertainty.log_variance
    trained = {id(p) for group in model.optimizer_.param_groups for p in group["params"]}
    assert id(log_variance) in trained
    weights = model.task_weights_
    assert weights.shape == (2,)
    torch.testing.assert_close(torch.as_tensor(weights, dtype=torch.float32),
                               0.5 * torch.exp(-log_variance.detach()))
    assert weights[0] > 2 * weights[1]  # the clean task's loss is far smaller
    assert weights[0] > 0.5  # it started at 1/2 and its weight grew


def test_uncertainty_changes_the_fit():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 3))
    y = np.c_[X[:, 0], X[:, 1] > 0]
    common = dict(n_experts=3, max_epochs=3, random_state=0)
    fixed = MMoERegressorClassifier(**common).fit(X, y)
    learned = MMoERegressorClassifier(task_weights="uncertainty", **common).fit(X, y)
    assert learned.history_[0, "train_loss"] != pytest.approx(fixed.history_[0, "train_loss"])


def test_save_and_load_keep_learned_weights_and_expert_labels(tmp_path):
    from sk_mmoe import load_model, save_model

    X = np.random.RandomState(0).normal(size=(80, 3))
    model = MMoERegressorClassifier(task_weights="uncertainty", architecture="cgc",
                                    n_experts=2, max_epochs=5, lr=5e-2, early_stopping=False,
                                    random_state=0).fit(X, X[:, :2])
    assert not np.allclose(model.task_weights_, [0.5, 0.5])  # learned something
    save_model(model, tmp_path / "model.skmmoe")
    restored = load_model(tmp_path / "model.skmmoe")
    np.testing.assert_allclose(restored.task_weights_, model.task_weights_)
    assert restored.expert_labels_ == model.expert_labels_ == [0, 1, "shared", "shared"]
    np.testing.assert_allclose(restored.predict(X), model.predict(X))
