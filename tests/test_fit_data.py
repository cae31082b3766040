"""Weights of the training rows: per-row and per-task sample weights, and class weights."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score, roc_auc_score

from sk_mmoe import MMoERegressorClassifier

SMALL = dict(n_experts=2, expert_layer_sizes=(16,), tower_layer_sizes=(8,), max_epochs=4,
             early_stopping=False, random_state=0)


def _data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    y = pd.DataFrame({"r": X[:, 0] + 0.1 * rng.normal(size=n), "b": X[:, 1] > 0.8,
                      "c": np.array(["x", "y", "z"])[rng.randint(3, size=n)]})
    return X, y


def test_a_zero_weight_for_a_task_equals_a_missing_label():
    X, y = _data()
    # (Classes: a regression column's scaling is computed on its labelled rows, so
    # hiding its labels changes the scaling, not only the loss.)
    weights = np.ones((len(y), 3))
    weights[::3, 1] = 0.0
    weights[1::4, 2] = 0.0
    masked = y.astype({"b": object})
    masked.loc[masked.index[::3], "b"] = None
    masked.loc[masked.index[1::4], "c"] = None
    weighted = MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=weights)
    missing = MMoERegressorClassifier(**SMALL).fit(X, masked)
    pd.testing.assert_frame_equal(weighted.predict(X), missing.predict(X))


def test_per_task_weights_equal_to_row_weights_give_the_same_model():
    X, y = _data()
    rows = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    by_row = MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=rows)
    by_task = MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=np.tile(rows[:, None], 3))
    np.testing.assert_allclose(by_row.predict(X)["r"], by_task.predict(X)["r"], rtol=1e-5)


def test_class_weights_equal_the_matching_sample_weights():
    X, y = _data()
    model = MMoERegressorClassifier(**SMALL, class_weight={"b": {True: 3.0}, "c": "balanced"})
    counts = y["c"].value_counts()
    expected = np.ones((len(y), 3))
    expected[:, 1] = np.where(y["b"], 3.0, 1.0)
    expected[:, 2] = len(y) / (3 * y["c"].map(counts).to_numpy())
    explicit = MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=expected)
    pd.testing.assert_frame_equal(model.fit(X, y).predict(X), explicit.predict(X))
    # "balanced" applies to every classification task; row weights multiply in.
    both = MMoERegressorClassifier(**SMALL, class_weight="balanced").fit(X, y, sample_weight=np.full(len(y), 2.0))
    b_counts = y["b"].value_counts()
    expected[:, 1] = len(y) / (2 * y["b"].map(b_counts).to_numpy())
    explicit = MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=2.0 * expected)
    pd.testing.assert_frame_equal(both.predict(X), explicit.predict(X))


def test_balanced_class_weight_raises_minority_recall():
    recalls, aucs = {}, {}
    for weight in (None, "balanced"):
        recall, auc = [], []
        for seed in range(3):
            rng = np.random.RandomState(seed)
            X = rng.normal(size=(3000, 5))
            rare = X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=3000) > 2.3  # ~5% positives
            model = MMoERegressorClassifier(
                n_experts=2, expert_layer_sizes=(16,), tower_layer_sizes=(8,), max_epochs=30,
                random_state=seed, class_weight=weight,
            ).fit(X[:2000], rare[:2000])
            recall.append(recall_score(rare[2000:], model.predict(X[2000:])))
            auc.append(roc_auc_score(rare[2000:], model.predict_proba(X[2000:])[:, 1]))
        recalls[weight], aucs[weight] = np.mean(recall), np.mean(auc)
    assert recalls["balanced"] > recalls[None] + 0.2
    assert abs(aucs["balanced"] - aucs[None]) < 0.02


def test_single_classification_task_takes_scikit_learns_class_weight_form():
    X, y = _data()
    one = MMoERegressorClassifier(**SMALL, class_weight={True: 3.0}).fit(X, y[["r", "b"]])
    per_task = MMoERegressorClassifier(**SMALL, class_weight={"b": {True: 3.0}}).fit(X, y[["r", "b"]])
    pd.testing.assert_frame_equal(one.predict(X), per_task.predict(X))


@pytest.mark.parametrize(
    "class_weight, message",
    [
        ({"x": 2.0}, r"gives weights per class, which needs exactly one classification task; this model has 2"),
        ({"nope": "balanced"}, r"class_weight names unknown task 'nope'; the tasks are \['r', 'b', 'c'\]"),
        ({"r": "balanced"}, r"names task 'r', a regression task without classes"),
        ({"c": {"w": 2.0}}, r"names class 'w', which is not among its classes \['x', 'y', 'z'\]"),
        ({"c": {"x": -1.0}}, r"class 'x': weights must be finite and non-negative; got -1.0"),
        ({"c": "weighted"}, r"class_weight for task 'c' must be 'balanced' or a dict"),
    ],
)
def test_bad_class_weights_say_what_is_allowed(class_weight, message):
    X, y = _data()
    with pytest.raises(ValueError, match=message):
        MMoERegressorClassifier(**SMALL, class_weight=class_weight).fit(X, y)


def test_per_task_weights_of_the_wrong_shape_are_refused():
    X, y = _data()
    with pytest.raises(ValueError, match=r"sample_weight has shape \(200, 2\); a weight per row and task needs shape \(200, 3\)"):
        MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=np.ones((200, 2)))
    with pytest.raises(ValueError, match="finite and non-negative"):
        MMoERegressorClassifier(**SMALL).fit(X, y, sample_weight=-np.ones((200, 3)))


def test_callers_weights_are_not_changed():
    X, y = _data()
    weights = np.ones((200, 3))
    before = weights.copy()
    MMoERegressorClassifier(**SMALL, class_weight="balanced").fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(weights, before)


def test_only_the_estimator_writes_its_fitted_attributes():
    # As in scikit-learn: encoders return what they learned and the estimator's own
    # methods store it (load_model, which builds a model from a file, aside).
    import ast
    from pathlib import Path

    import sk_mmoe

    writers = []
    for path in Path(sk_mmoe.__file__).parent.rglob("*.py"):
        if path.name in ("_estimator.py", "_net_hooks.py", "_persistence.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id in ("estimator", "model", "net")
                        and target.attr.endswith("_")):
                    writers.append(f"{path.name}:{node.lineno} {target.value.id}.{target.attr}")
    assert writers == []
