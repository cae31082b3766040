import numpy as np
import pandas as pd
import pytest
import torch

from sk_mmoe._tasks import MultiTaskLoss, TargetEncoder, TaskKindWarning, infer_task_kind


@pytest.mark.parametrize(
    "values, kind",
    [
        (pd.Series([True, False, True]), "binary"),
        (pd.Series(["a", "b", "a"]), "binary"),
        (pd.Series(["a", "b", "c"]), "multiclass"),
        (pd.Series(["a", "b", "c"], dtype="category"), "multiclass"),
        (pd.Series([0, 1, 1]), "binary"),
        (pd.Series([3, 1, 2]), "multiclass"),
        (pd.Series([0.0, 1.0, 1.0]), "binary"),
        (pd.Series([0.0, 1.0, np.nan]), "binary"),
        (pd.Series([0.5, 1.0, 2.0]), "regression"),
        # Whole-number floats are measurements (grams, years), not classes.
        (pd.Series([1200.0, 1350.0, 980.0]), "regression"),
        (pd.Series([0.0, 2.0, 1.0]), "regression"),
        (pd.Series(np.array([1.5, 2.5, 3.5], dtype=object)), "regression"),
        (pd.Series(np.array(["x", None, "y"], dtype=object)), "binary"),
        (pd.Series([1, 0, None], dtype="Int64"), "binary"),
    ],
)
def test_infer_task_kind(values, kind):
    assert infer_task_kind(values) == kind


def test_object_array_mixing_numbers_and_strings_keeps_numeric_columns():
    y = np.empty((4, 2), dtype=object)
    y[:, 0] = [1.5, 2.5, 0.1, 9.0]
    y[:, 1] = ["a", "b", "a", "c"]
    encoder = TargetEncoder().fit(y)
    assert [s.kind for s in encoder.specs_] == ["regression", "multiclass"]


def test_tasks_parameter_forms():
    y = pd.DataFrame({"a": [0, 1, 2, 1], "b": [0.0, 1.0, 0.0, 1.0]})
    assert [s.kind for s in TargetEncoder("regression").fit(y).specs_] == ["regression"] * 2
    assert [s.kind for s in TargetEncoder(["regression", "multiclass"]).fit(y).specs_] == [
        "regression",
        "multiclass",
    ]
    assert [s.kind for s in TargetEncoder({"b": "regression"}).fit(y).specs_] == [
        "multiclass",
        "regression",
    ]


def test_integer_column_with_many_classes_warns():
    y = pd.Series(np.arange(100), name="age")
    with pytest.warns(TaskKindWarning, match="'age': 'regression'"):
        TargetEncoder().fit(y)


def test_encode_standardises_regression_and_indexes_classes():
    y = pd.DataFrame({"r": [1.0, 3.0, np.nan, 5.0], "c": ["b", None, "a", "b"]})
    before = y.copy()
    encoder = TargetEncoder().fit(y)
    encoded = encoder.transform(y)
    np.testing.assert_allclose(encoded[[0, 1, 3], 0], np.array([-1, 0, 1]) * np.sqrt(1.5), rtol=1e-6)
    assert np.isnan(encoded[2, 0]) and np.isnan(encoded[1, 1])
    assert encoded[[0, 2, 3], 1].tolist() == [1.0, 0.0, 1.0]
    assert list(encoder.specs_[1].classes) == ["a", "b"]
    pd.testing.assert_frame_equal(y, before)


def test_decode_maps_back_to_the_label_space():
    y = pd.DataFrame({"r": [10.0, 20.0, 30.0], "b": [True, False, True], "m": ["x", "y", "z"]})
    encoder = TargetEncoder().fit(y)
    outputs = np.zeros((2, 3, 3), dtype=np.float32)
    outputs[:, 0, 0] = [1.0, -1.0]  # standardised
    outputs[:, 1, 0] = [2.0, -2.0]  # logits
    outputs[:, 2] = [[0, 5, 0], [0, 0, 5]]
    r, b, m = encoder.decode(outputs)
    np.testing.assert_allclose(r, 20.0 + np.array([1.0, -1.0]) * np.std([10.0, 20.0, 30.0]), rtol=1e-6)
    assert b.tolist() == [True, False]
    assert m.tolist() == ["y", "z"]
    probas = encoder.probabilities(outputs)
    assert probas[0] is None
    np.testing.assert_allclose(probas[1][:, 1], 1 / (1 + np.exp([-2.0, 2.0])), rtol=1e-6)
    np.testing.assert_allclose(probas[2].sum(1), 1.0)


def test_decode_restores_categorical_dtype():
    dtype = pd.CategoricalDtype(["low", "mid", "high"], ordered=True)
    y = pd.DataFrame({"level": pd.Series(["low", "high", "mid"], dtype=dtype)})
    encoder = TargetEncoder().fit(y)
    outputs = np.zeros((1, 1, 3), dtype=np.float32)
    outputs[0, 0, 0] = 5
    frame = encoder.assemble(encoder.decode(outputs))
    assert frame["level"].dtype == dtype


def test_labels_of_different_types_do_not_collide():
    y = pd.Series(np.array([1, "1", True, 1], dtype=object))
    encoder = TargetEncoder("multiclass")
    with pytest.raises(ValueError, match="mixes label types"):
        encoder.fit(y)


def test_loss_masks_missing_labels():
    loss = MultiTaskLoss(["regression", "binary", "multiclass"], [1, 1, 3], [1.0, 1.0, 1.0])
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
    loss = MultiTaskLoss(["regression", "binary"], [1, 1], [1.0, 1.0])
    outputs = torch.randn(3, 2, 1, requires_grad=True)
    targets = torch.tensor([[np.nan, 1.0], [np.nan, 0.0], [np.nan, 1.0]])
    per_task = loss.per_task(outputs, targets)
    assert per_task[0].item() == 0.0
    total = loss(outputs, targets)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(outputs.grad).all()
    assert (outputs.grad[:, 0] == 0).all()


def test_loss_weights_samples_and_tasks():
    loss = MultiTaskLoss(["regression", "regression"], [1, 1], [2.0, 0.5])
    outputs = torch.zeros(2, 2, 1)
    targets = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    weights = torch.tensor([3.0, 1.0])
    per_task = loss.per_task(outputs, targets, weights)
    torch.testing.assert_close(per_task, torch.tensor([(3 * 1 + 9) / 4, (3 * 4 + 16) / 4]))
    torch.testing.assert_close(loss(outputs, targets, weights), 2.0 * per_task[0] + 0.5 * per_task[1])
