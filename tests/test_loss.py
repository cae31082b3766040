import pickle

import numpy as np
import pandas as pd
import torch

import sk_mmoe._tasks
from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._loss import MultiTaskLoss
from sk_mmoe.tasks import Binary, Multiclass, Regression


def _fitted(*tasks):
    """Tasks fitted on small columns: multiclass on 3 classes."""
    columns = {Multiclass: [0, 1, 2], Binary: [0, 1]}
    return [task.fit(t, pd.Series(columns.get(type(task), [0.0, 1.0]))) for t, task in enumerate(tasks)]


def test_loss_masks_missing_labels():
    loss = MultiTaskLoss(_fitted(Regression(), Binary(), Multiclass()), [1.0, 1.0, 1.0])
    outputs = torch.randn(4, 3, 3)
    targets = torch.tensor(
        [[0.5, 1.0, 2.0], [np.nan, 0.0, np.nan], [1.0, np.nan, 0.0], [np.nan, np.nan, np.nan]]
    )
    per_task = loss.per_task(outputs, targets)
    expected_regression = ((outputs[[0, 2], 0, 0] - targets[[0, 2], 0]) ** 2).mean()
    expected_binary = torch.nn.functional.binary_cross_entropy_with_logits(
        outputs[[0, 1], 1, 0], targets[[0, 1], 1]
    )
    expected_multiclass = torch.nn.functional.cross_entropy(
        outputs[[0, 2], 2], targets[[0, 2], 2].long()
    )
    torch.testing.assert_close(
        per_task, torch.stack([expected_regression, expected_binary, expected_multiclass])
    )


def test_a_batch_without_labels_for_a_task_adds_zero():
    loss = MultiTaskLoss(_fitted(Regression(), Binary()), [1.0, 1.0])
    outputs = torch.randn(3, 2, 1, requires_grad=True)
    targets = torch.tensor([[np.nan, 1.0], [np.nan, 0.0], [np.nan, 1.0]])
    per_task = loss.per_task(outputs, targets)
    assert per_task[0].item() == 0.0
    total = loss(outputs, targets)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(outputs.grad).all()
    assert (outputs.grad[:, 0] == 0).all()


def test_loss_weights_samples_and_tasks():
    loss = MultiTaskLoss(_fitted(Regression(), Regression()), [2.0, 0.5])
    outputs = torch.zeros(2, 2, 1)
    targets = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    weights = torch.tensor([3.0, 1.0])
    per_task = loss.per_task(outputs, targets, weights)
    torch.testing.assert_close(per_task, torch.tensor([(3 * 1 + 9) / 4, (3 * 4 + 16) / 4]))
    torch.testing.assert_close(loss(outputs, targets, weights), 2.0 * per_task[0] + 0.5 * per_task[1])


def test_pickles_naming_the_loss_in_its_former_module_load(monkeypatch):
    # Models pickled before the loss had its own module name it sk_mmoe._tasks.MultiTaskLoss.
    X = np.random.RandomState(0).normal(size=(40, 3))
    model = MMoERegressorClassifier(n_experts=2, expert_layer_sizes=(4,), max_epochs=1,
                                    random_state=0).fit(X, X[:, 0] > 0)
    monkeypatch.setattr(MultiTaskLoss, "__module__", sk_mmoe._tasks.__name__)
    old_pickle = pickle.dumps(model)
    monkeypatch.undo()
    assert b"sk_mmoe._tasks" in old_pickle and b"sk_mmoe._loss" not in old_pickle
    restored = pickle.loads(old_pickle)
    assert type(restored.criterion_) is MultiTaskLoss
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
