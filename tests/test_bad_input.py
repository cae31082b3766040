"""Every kind of bad input gets a clear error that names what is wrong."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from sk_mmoe import MMoERegressorClassifier, NonFiniteLossError


@pytest.fixture
def fitted(mixed_data, small_params):
    X, y = mixed_data
    return MMoERegressorClassifier(**dict(small_params, max_epochs=2)).fit(X, y)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "gate_weights"])
def test_use_before_fit(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(MMoERegressorClassifier(), method)(np.zeros((2, 3)))


def test_score_before_fit(mixed_data):
    X, y = mixed_data
    with pytest.raises(NotFittedError):
        MMoERegressorClassifier().score(X, y)


def test_wrong_number_of_features_at_predict(fitted):
    with pytest.raises(ValueError, match="X has 5 features, but MMoERegressorClassifier is expecting 6"):
        fitted.predict(np.zeros((3, 5)))


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_features(mixed_data, small_params, bad):
    X, y = mixed_data
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="Input X contains infinity"):
        MMoERegressorClassifier(**small_params).fit(X, y)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    with pytest.raises(ValueError, match="Input X contains infinity in column 'f2'"):
        MMoERegressorClassifier(**small_params).fit(frame, y)


def test_rows_of_X_and_y_differ(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match="X has 400 rows but y has 399"):
        MMoERegressorClassifier(**small_params).fit(X, y.iloc[:-1])


def test_missing_y(mixed_data):
    X, _ = mixed_data
    with pytest.raises(ValueError, match="requires y to be passed"):
        MMoERegressorClassifier().fit(X, None)


def test_regression_on_strings(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"'churn' is set to 'regression'.*non-numeric.*'binary' or 'multiclass'"):
        MMoERegressorClassifier(**small_params, tasks={"churn": "regression"}).fit(X, y)


def test_binary_on_three_classes(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match="'segment' is set to 'binary' but has 3 classes"):
        MMoERegressorClassifier(**small_params, tasks={"segment": "binary"}).fit(X, y)


def test_unknown_kind(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match="'churn' has kind 'ordinal'; allowed kinds"):
        MMoERegressorClassifier(**small_params, tasks={"churn": "ordinal"}).fit(X, y)


def test_unknown_task_name_in_tasks(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"tasks names unknown task\(s\) \['income'\]"):
        MMoERegressorClassifier(**small_params, tasks={"income": "binary"}).fit(X, y)


def test_tasks_list_of_wrong_length(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match="tasks has 2 entries but y has 3 columns"):
        MMoERegressorClassifier(**small_params, tasks=["regression", "binary"]).fit(X, y)


def test_unknown_task_name_in_task_weights(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"task_weights names unknown task\(s\) \['income'\]"):
        MMoERegressorClassifier(**small_params, task_weights={"income": 2.0}).fit(X, y)


@pytest.mark.parametrize("weights", [[1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 2.0]])
def test_invalid_task_weights(mixed_data, small_params, weights):
    X, y = mixed_data
    with pytest.raises(ValueError, match="task_weights"):
        MMoERegressorClassifier(**small_params, task_weights=weights).fit(X, y)


def test_classification_task_with_one_class(mixed_data, small_params):
    X, y = mixed_data
    y = y.assign(churn="yes")
    with pytest.raises(ValueError, match=r"'churn' \(binary\) has 1 class \('yes'\).*at least 2"):
        MMoERegressorClassifier(**small_params).fit(X, y)


def test_task_without_any_label(mixed_data, small_params):
    X, y = mixed_data
    y = y.assign(amount=np.nan)
    with pytest.raises(ValueError, match="'amount' has no labels at all"):
        MMoERegressorClassifier(**small_params).fit(X, y)


@pytest.mark.parametrize(
    "param, value, allowed",
    [
        ("gate_dropout", 1.0, r"in the range \[0.0, 1.0\)"),
        ("gate_dropout", -0.1, r"in the range \[0.0, 1.0\)"),
        ("n_experts", 0, r"in the range \[1, inf\)"),
        ("architecture", "moe", "must be a str among"),
        ("validation_fraction", 1.0, r"in the range \(0.0, 1.0\)"),
        ("lr", 0.0, r"in the range \(0.0, inf\)"),
        ("max_epochs", 0, r"in the range \[1, inf\)"),
        ("expert_layer_sizes", (), "at least one layer size"),
        ("tower_layer_sizes", (8, 0), "positive integers"),
    ],
)
def test_invalid_parameters_name_the_parameter(mixed_data, param, value, allowed):
    X, y = mixed_data
    model = MMoERegressorClassifier(**{param: value})  # construction never validates
    with pytest.raises(ValueError, match=rf"{param}.*{allowed}.*|{param} must"):
        model.fit(X, y)


def test_routing_network_parameters_is_refused(mixed_data):
    X, y = mixed_data
    with pytest.raises(ValueError, match="module__n_experts"):
        MMoERegressorClassifier(module__n_experts=3).fit(X, y)


def test_non_finite_loss_stops_training_and_names_epoch_and_task(mixed_data, small_params):
    X, y = mixed_data
    huge = X * 1e30  # finite in float32, but squares overflow in the first epoch
    with pytest.raises(NonFiniteLossError, match=r"in epoch 1 for task\(s\) 'amount' \(regression\)"):
        MMoERegressorClassifier(**small_params).fit(huge, y)


def test_failed_fit_leaves_no_usable_model(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    with pytest.raises(NonFiniteLossError):
        model.fit(X * 1e30, y)
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_unseen_labels_in_score_count_as_wrong(fitted, mixed_data):
    X, y = mixed_data
    y = y.copy()
    pred = fitted.predict(X)
    y.loc[:99, "churn"] = "unknown"
    from sk_mmoe import task_scores

    scores = task_scores(fitted, X, y)
    expected = (pred["churn"][100:] == y["churn"][100:]).sum() / 400
    assert scores["churn"] == pytest.approx(expected)
    assert np.isfinite(fitted.score(X, y))
    with pytest.warns(UserWarning, match="100 row.*not seen at fit.*left out of 'roc_auc'"):
        auc = task_scores(fitted, X, y, metric={"churn": "roc_auc"})["churn"]
    assert 0 <= auc <= 1


def test_score_with_missing_task_column(fitted, mixed_data):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"missing the task column\(s\) \['segment'\]"):
        fitted.score(X, y.drop(columns="segment"))


def test_callers_data_is_never_modified(mixed_data, small_params):
    X, y = mixed_data
    y = y.astype({"amount": "float64"})
    y.loc[::4, "amount"] = np.nan
    X32 = X.astype(np.float32)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    weights = np.linspace(0.5, 2.0, 400)
    copies = [X.copy(), y.copy(), X32.copy(), frame.copy(), weights.copy()]
    model = MMoERegressorClassifier(**small_params)
    for features in (X, X32, frame):
        model.fit(features, y, sample_weight=weights)
        model.partial_fit(features, y)
        model.predict(features)
        model.predict_proba(features)
        model.score(features, y)
    np.testing.assert_array_equal(X, copies[0])
    pd.testing.assert_frame_equal(y, copies[1])
    np.testing.assert_array_equal(X32, copies[2])
    pd.testing.assert_frame_equal(frame, copies[3])
    np.testing.assert_array_equal(weights, copies[4])


def test_negative_sample_weight(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        MMoERegressorClassifier(**small_params).fit(X, y, sample_weight=-np.ones(400))
