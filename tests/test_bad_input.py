"""Every kind of bad input gets a clear error that names what is wrong."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

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
    with pytest.raises(ValueError, match=r"task 'churn': 'ordinal' is not a task kind; allowed are the names \['absolute_error', 'binary',"):
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
    # Features are standardised inside the model, so only a runaway optimizer can
    # overflow now: steps of 1e25 blow the weights, and the outputs, up at once.
    with pytest.raises(NonFiniteLossError, match=r"in epoch 1 for task\(s\) 'amount' \(regression\)"):
        MMoERegressorClassifier(**dict(small_params, lr=1e25)).fit(X, y)


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW])
def test_learning_rate_that_overflows_the_optimizer_step(mixed_data, small_params, optimizer):
    # lr=1e38 is a finite float32, but Adam's step lr / (1 - beta1) is not.
    X, y = mixed_data
    # Adam's per-tensor loop overflows inside the step (fused Adam, the default, turns
    # the same step into non-finite weights: the loss check below reports it).
    looped = dict(small_params, lr=1e38, optimizer=optimizer, optimizer__foreach=False)
    with pytest.raises(NonFiniteLossError, match=r"optimizer step overflowed in epoch 1 with lr=1e\+38"):
        MMoERegressorClassifier(**looped).fit(X, y)
    fused = MMoERegressorClassifier(**dict(small_params, lr=1e38, optimizer=optimizer))
    with pytest.raises(NonFiniteLossError, match=r"in epoch 1 .*Lower lr"):
        fused.fit(X, y)


def test_failed_fit_leaves_no_usable_model(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    with pytest.raises(NonFiniteLossError):
        model.set_params(lr=1e25).fit(X, y)
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


# -- issue 11: silent wrong results ---------------------------------------------------


def test_integer_labels_with_a_missing_value_are_predicted_as_labels(mixed_data, small_params):
    X, y = mixed_data
    y = y.copy()
    y.loc[0, "segment"] = np.nan  # pandas makes the int column float64
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=2)).fit(X, y)
    assert model.task_types_ == ["regression", "binary", "multiclass"]
    assert set(model.predict(X)["segment"]) <= {0.0, 1.0, 2.0}
    assert model.predict_proba(X)[2].shape == (400, 3)


@pytest.mark.parametrize("magnitude", [1e160, 1e-170])
def test_regression_targets_of_extreme_magnitude_predict_finite_values(mixed_data, small_params, magnitude):
    X, y = mixed_data
    target = (y["amount"] - 50.0) * magnitude
    model = MMoERegressorClassifier(**small_params).fit(X, target)
    pred = model.predict(X)
    assert np.isfinite(pred).all()
    # It learned, which it cannot with a scale of 1 (or inf); scikit-learn's r2 itself
    # overflows at this magnitude, so compare in units of the magnitude.
    assert r2_score(target / magnitude, pred / magnitude) > 0.8


# -- issue 11: errors that name the parameter or column --------------------------------


def test_score_with_y_of_the_wrong_length(fitted, mixed_data):
    X, y = mixed_data
    with pytest.raises(ValueError, match="inconsistent numbers of samples: X has 400 rows but y has 10"):
        fitted.score(X, y.iloc[:10])


def test_score_with_sample_weight_of_the_wrong_length(fitted, mixed_data):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: X has 400 rows but sample_weight has shape \(5,\)"):
        fitted.score(X, y, sample_weight=np.ones(5))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_frame_x_without_columns(mixed_data, small_params, method):
    _, y = mixed_data
    X = pd.DataFrame(index=range(len(y)))
    with pytest.raises(ValueError, match=r"X has 0 columns \(shape=\(400, 0\)\) while a minimum of 1"):
        getattr(MMoERegressorClassifier(**small_params), method)(X, y)
    with pytest.raises(ValueError, match="0 feature"):
        MMoERegressorClassifier(**small_params).fit(np.empty((len(y), 0)), y)


def test_frame_y_without_columns(mixed_data, small_params):
    X, y = mixed_data
    with pytest.raises(ValueError, match="y has 0 columns; at least one target column"):
        MMoERegressorClassifier(**small_params).fit(X, y[[]])


def test_object_column_mixing_true_with_numbers_at_first_fit(mixed_data, small_params):
    X, y = mixed_data
    y = y.assign(flag=pd.Series([True, 1, 0, False] * 100, dtype=object))
    with pytest.raises(ValueError, match=r"'flag' mixes label types \['bool', 'int'\]"):
        MMoERegressorClassifier(**small_params).fit(X, y)


@pytest.mark.parametrize("weights", [["a", 1, 1], {"churn": "high"}, [None, 1, 1]])
def test_task_weights_that_are_not_numbers(mixed_data, small_params, weights):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"task_weights must hold numbers.*got"):
        MMoERegressorClassifier(**small_params, task_weights=weights).fit(X, y)


@pytest.mark.parametrize("callbacks", [[1], [("log", "print")], ["EarlyStopping"]])
def test_callbacks_that_are_not_callbacks(mixed_data, small_params, callbacks):
    X, y = mixed_data
    with pytest.raises(ValueError, match=r"callbacks\[0\] must be a skorch Callback.*got"):
        MMoERegressorClassifier(**small_params, callbacks=callbacks).fit(X, y)


@pytest.mark.parametrize("prefix", ["iterator_train", "iterator_valid"])
@pytest.mark.parametrize("size", [0, -2, 2.5])
def test_routed_batch_size_obeys_batch_sizes_rule(mixed_data, small_params, prefix, size):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params, **{f"{prefix}__batch_size": size})
    with pytest.raises(ValueError, match=rf"'{prefix}__batch_size' parameter .* Got {size} instead"):
        model.fit(X, y)


def test_routed_batch_size_that_is_valid_is_used(mixed_data, small_params):
    X, y = mixed_data
    params = dict(small_params, max_epochs=1, early_stopping=False)
    model = MMoERegressorClassifier(**params, iterator_train__batch_size=100)
    assert len(model.fit(X, y).history_[-1, "batches"]) == 4


def test_optimizer_that_returns_no_optimizer(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params, optimizer=lambda params, lr: 3)
    with pytest.raises(TypeError, match=r"optimizer must be a torch.optim.Optimizer .*returned 3 \(int\)"):
        model.fit(X, y)


def test_optimizer_that_cannot_be_built_names_its_arguments(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params, optimizer__betas_typo=0.5)
    with pytest.raises(TypeError, match=r"optimizer=<class 'torch.optim.adam.Adam'> could not be built .*optimizer__betas_typo.*betas_typo"):
        model.fit(X, y)


def test_setting_the_optimizer_of_a_fitted_model(fitted, mixed_data):
    X, y = mixed_data
    fitted.set_params(optimizer=torch.optim.SGD)  # skorch failed here on a fitted net
    assert isinstance(fitted.fit(X, y).optimizer_, torch.optim.SGD)


def test_labels_in_messages_print_as_python_values(fitted, mixed_data):
    X, y = mixed_data
    bad = y.copy()
    bad.loc[0, "churn"] = "maybe"
    with pytest.raises(ValueError, match=r"\['maybe'\] not seen at the first fit; known classes are \['no', 'yes'\]\."):
        fitted.partial_fit(X, bad)
    bad = y.copy()
    bad.loc[0, "segment"] = 7
    with pytest.raises(ValueError, match=r"\[7\] not seen at the first fit; known classes are \[0, 1, 2\]\."):
        fitted.partial_fit(X, bad)
    one_class = y.assign(segment=np.int64(4))
    with pytest.raises(ValueError, match=r"has 1 class \(4\)"):
        MMoERegressorClassifier(max_epochs=1).fit(X, one_class)


def test_epoch_count_matches_history_after_a_failed_partial_fit(fitted, mixed_data):
    X, y = mixed_data
    with pytest.raises(NonFiniteLossError):
        fitted.partial_fit(X * 1e30, y)
    assert fitted.n_iter_ == len(fitted.history_) == 3
    assert fitted.predict(X).shape == (400, 3)  # a fitted model stays usable


@pytest.mark.parametrize("rows", [0, -5, 1.5, True])
def test_gate_utilization_needs_a_positive_number_of_rows(mixed_data, small_params, rows):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params, callbacks__gate_utilization__max_rows=rows)
    with pytest.raises(ValueError, match=rf"callbacks__gate_utilization__max_rows\) must be an integer >= 1; got {rows}"):
        model.fit(X, y)


@pytest.mark.parametrize("as_frame", [False, True])
def test_bytes_labels_are_refused_before_training(small_params, as_frame):
    # scikit-learn's metrics refuse bytes; without this check the fit failed in the
    # middle of training, in the first epoch's validation accuracy.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] > 0, b"yes", b"no")
    if as_frame:
        y = pd.DataFrame({"answer": y.astype(object)})
    name = "'answer'" if as_frame else "0"
    with pytest.raises(ValueError, match=rf"Task {name} holds bytes labels \(e.g. b'(yes|no)'\).*Decode them to str"):
        MMoERegressorClassifier(**small_params).fit(X, y)
