import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from sk_mmoe import MMoERegressorClassifier, TaskKindWarning


def test_mixed_tasks_fit_predict_and_score(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    assert model.task_names_ == ["amount", "churn", "segment"]
    assert model.task_types_ == ["regression", "binary", "multiclass"]
    assert model.classes_[0] is None
    assert list(model.classes_[1]) == ["no", "yes"]
    assert list(model.classes_[2]) == [0, 1, 2]
    assert model.n_features_in_ == 6

    pred = model.predict(X)
    assert isinstance(pred, pd.DataFrame)
    assert list(pred.columns) == ["amount", "churn", "segment"]
    assert set(pred["churn"]) <= {"no", "yes"} and set(pred["segment"]) <= {0, 1, 2}
    # Regression predictions come back on the original scale (around 50, not 0).
    assert abs(pred["amount"].mean() - y["amount"].mean()) < 1.0
    assert model.score(X, y) > 0.85

    scores = [
        1 - ((y["amount"] - pred["amount"]) ** 2).sum() / ((y["amount"] - y["amount"].mean()) ** 2).sum(),
        (pred["churn"] == y["churn"]).mean(),
        (pred["segment"] == y["segment"]).mean(),
    ]
    assert model.score(X, y) == pytest.approx(np.mean(scores))


def test_predict_keeps_the_index_of_a_dataframe_X(mixed_data, small_params):
    X, y = mixed_data
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)], index=np.arange(1000, 1400))
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    pred = model.predict(X.iloc[10:20])
    assert list(pred.index) == list(range(1010, 1020))
    assert list(model.feature_names_in_) == list(X.columns)


def test_output_forms_follow_y(mixed_data, small_params):
    X, y = mixed_data
    params = dict(small_params, max_epochs=2)
    # Stacking turns the integer labels of "segment" into floats, which read as a
    # quantity; the warning names the override, which keeps them classes.
    stacked = y[["amount", "segment"]].to_numpy()
    with pytest.warns(TaskKindWarning, match=r"Target column 1 .*tasks=\{1: 'multiclass'\}"):
        guessed = MMoERegressorClassifier(**params).fit(X, stacked)
    assert guessed.task_types_ == ["regression", "regression"]
    two_d = MMoERegressorClassifier(**params, tasks={1: "multiclass"}).fit(X, stacked)
    pred = two_d.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (400, 2)
    assert two_d.task_names_ == [0, 1]
    assert two_d.task_types_ == ["regression", "multiclass"]
    assert set(np.unique(pred[:, 1])) <= {0.0, 1.0, 2.0}

    one_d = MMoERegressorClassifier(**params).fit(X, y["churn"].to_numpy())
    pred = one_d.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (400,)
    proba = one_d.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.shape == (400, 2)

    series = MMoERegressorClassifier(**params).fit(X, y["segment"])
    pred = series.predict(X)
    assert isinstance(pred, pd.Series) and pred.name == "segment"


def test_mixed_2d_object_array_round_trips_label_types(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    y = np.empty((100, 2), dtype=object)
    y[:, 0] = X[:, 0] * 2.0
    y[:, 1] = np.where(X[:, 1] > 0, "up", "down")
    pred = MMoERegressorClassifier(**dict(small_params, max_epochs=2)).fit(X, y).predict(X)
    assert pred.dtype == object and isinstance(pred[0, 0], float) and pred[0, 1] in ("up", "down")


def test_predict_proba_is_a_list_per_task(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    proba = model.predict_proba(X)
    assert proba[0] is None
    assert proba[1].shape == (400, 2) and proba[2].shape == (400, 3)
    for p in proba[1:]:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    # Probabilities agree with the predicted labels.
    pred = model.predict(X)
    assert (model.classes_[2][proba[2].argmax(1)] == pred["segment"].to_numpy()).all()


def test_predict_proba_is_absent_for_regression_only(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3))
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=2)).fit(X, X[:, :2] * 1.5)
    assert model.task_types_ == ["regression", "regression"]
    assert not hasattr(model, "predict_proba")


def test_missing_labels_are_ignored_in_training_and_scoring(mixed_data, small_params):
    X, y = mixed_data
    y = y.astype({"segment": "float64"})
    y.loc[::3, "amount"] = np.nan
    y.loc[1::3, "churn"] = None
    y.loc[2::5, "segment"] = np.nan
    before = y.copy()
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    pd.testing.assert_frame_equal(y, before)
    assert np.isfinite(model.history[:, "train_loss"]).all()
    from sk_mmoe import task_scores

    scores = task_scores(model, X, y)
    pred = model.predict(X)
    labelled = y["churn"].notna()
    assert scores["churn"] == pytest.approx((pred["churn"][labelled] == y["churn"][labelled]).mean())
    assert scores["amount"] > 0.9


def test_sample_weight_changes_what_is_learned(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2))
    # Two groups of identical rows with opposite labels: the weights decide the answer.
    X[150:] = X[:150]
    y = np.r_[np.zeros(150, dtype=int), np.ones(150, dtype=int)]
    favour_ones = np.r_[np.full(150, 0.05), np.ones(150)]
    model = MMoERegressorClassifier(**small_params).fit(X, y, sample_weight=favour_ones)
    assert model.predict(X).mean() > 0.9
    model.fit(X, y, sample_weight=favour_ones[::-1])
    assert model.predict(X).mean() < 0.1


def test_zero_task_weight_leaves_a_task_untrained(mixed_data, small_params):
    X, y = mixed_data
    trained = MMoERegressorClassifier(**small_params).fit(X, y)
    untrained = MMoERegressorClassifier(**small_params, task_weights={"amount": 0.0}).fit(X, y)
    from sk_mmoe import task_scores

    assert task_scores(trained, X, y)["amount"] > 0.9
    assert task_scores(untrained, X, y)["amount"] < 0.5
    assert task_scores(untrained, X, y)["churn"] > 0.85


def test_same_random_state_gives_identical_predictions(mixed_data, small_params):
    X, y = mixed_data
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = MMoERegressorClassifier(**small_params).fit(X, y).predict(X)
    after = torch.rand(3)
    b = MMoERegressorClassifier(**small_params).fit(X, y).predict(X)
    pd.testing.assert_frame_equal(a, b)
    # torch's global random stream is left as the caller had it.
    torch.testing.assert_close(before, after)
    c = MMoERegressorClassifier(**dict(small_params, random_state=1)).fit(X, y).predict(X)
    assert not np.allclose(a["amount"], c["amount"])


def test_pickle_and_joblib_round_trips(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=3)).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(restored.predict(X), model.predict(X))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    for p, q in zip(restored.predict_proba(X)[1:], model.predict_proba(X)[1:]):
        np.testing.assert_array_equal(p, q)


def test_clone_and_set_params_take_effect_on_next_fit(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=2)).fit(X, y)
    copy = clone(model)
    assert copy.get_params(deep=False) == model.get_params(deep=False)
    assert not hasattr(copy, "module_") or not copy.initialized_

    model.set_params(n_experts=5, architecture="omoe")
    assert model.module_.n_experts == 3  # the fitted network is unchanged ...
    model.fit(X, y)
    assert model.module_.n_experts == 5  # ... until the next fit
    assert model.gate_weights(X[:4]).shape == (4, 3, 5)


def test_routed_optimizer_parameters(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=1), optimizer__weight_decay=0.5)
    assert model.get_params()["optimizer__weight_decay"] == 0.5
    model.fit(X, y)
    assert model.optimizer_.param_groups[0]["weight_decay"] == 0.5
    assert clone(model).get_params()["optimizer__weight_decay"] == 0.5
    assert "optimizer__weight_decay=0.5" in repr(model)


def test_gate_weights(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    weights = model.gate_weights(X)
    assert weights.shape == (400, 3, 3)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(weights, model.gate_weights(X))  # no dropout at evaluation
    bottom = MMoERegressorClassifier(**dict(small_params, architecture="shared_bottom")).fit(X, y)
    np.testing.assert_array_equal(bottom.gate_weights(X[:5]), np.ones((5, 3, 1)))


@pytest.mark.parametrize("architecture", ["mmoe", "omoe", "shared_bottom"])
def test_every_architecture_learns(mixed_data, small_params, architecture):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, architecture=architecture)).fit(X, y)
    assert model.score(X, y) > 0.8


def test_partial_fit_continues_training(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=2))
    model.partial_fit(X, y)
    first_loss = model.history[-1, "train_loss"]
    weights = [p.detach().clone() for p in model.module_.parameters()]
    model.partial_fit(X, y)
    assert model.n_iter_ == 4 and len(model.history) == 4
    assert model.history[-1, "train_loss"] < first_loss
    # The second call started from the first call's weights, not from a new network.
    assert any(not torch.equal(a, b) for a, b in zip(weights, model.module_.parameters()))
    with pytest.raises(ValueError, match="not seen at the first fit"):
        bad = y.copy()
        bad.loc[0, "churn"] = "maybe"
        model.partial_fit(X, bad)


def test_fit_restarts_from_scratch(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=2)).fit(X, y)
    model.fit(X, y)
    assert model.n_iter_ == 2 and len(model.history) == 2


def test_early_stopping_holds_out_rows_and_restores_the_best_epoch(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 20))
    y = rng.normal(size=300)  # pure noise: the validation loss stops improving early
    model = MMoERegressorClassifier(
        **dict(small_params, max_epochs=200, lr=0.02),
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
    ).fit(X, y)
    valid = model.history[:, "valid_loss"]
    assert model.n_iter_ < 200
    best = int(np.argmin(valid))
    assert model.n_iter_ == best + 1 + 5
    # 20% of the rows validate: 240 training rows in batches of 64 is 4 batches.
    assert model.history[-1, "train_batch_count"] == 4
    assert model.history[-1, "valid_batch_count"] == 1


def test_no_hold_out_without_early_stopping(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=3, early_stopping=False)).fit(X, y)
    assert model.history[-1, "train_batch_count"] == 7  # all 400 rows in batches of 64
    assert "valid_loss" not in model.history[-1]


def test_verbose_prints_a_line_per_epoch(mixed_data, small_params, capsys):
    X, y = mixed_data
    MMoERegressorClassifier(**dict(small_params, max_epochs=3)).fit(X, y)
    assert capsys.readouterr().out == ""
    MMoERegressorClassifier(**dict(small_params, max_epochs=3), verbose=1).fit(X, y)
    assert capsys.readouterr().out.count("\n") >= 3


def test_sparse_features_are_accepted(mixed_data, small_params):
    import scipy.sparse as sp

    X, y = mixed_data
    X[np.abs(X) < 1] = 0
    params = dict(small_params, max_epochs=2, numeric_embedding=None)
    dense = MMoERegressorClassifier(**params).fit(X, y).predict(X)
    sparse = MMoERegressorClassifier(**params).fit(sp.csr_matrix(X), y)
    pd.testing.assert_frame_equal(sparse.predict(sp.csr_matrix(X)), dense)


def test_user_callbacks_and_their_routed_parameters(small_params):
    from skorch.callbacks import LRScheduler

    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    halve = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    model = MMoERegressorClassifier(
        **dict(small_params, max_epochs=3, lr=0.01), callbacks=[("schedule", halve)]
    ).fit(X, X[:, :2])
    assert model.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**3)
    model.set_params(callbacks__schedule__gamma=0.1).fit(X, X[:, :2])
    assert model.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 * 0.1**3)
    assert "MMoERegressorClassifier" in model._repr_html_()


def test_object_column_of_booleans_with_missing_labels(small_params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = pd.DataFrame({"flag": pd.Series(X[:, 0] > 0, dtype=object)})
    y.loc[:9, "flag"] = None
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    assert model.classes_[0].dtype == bool
    assert model.predict(X)["flag"].dtype == bool
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("architecture", ["cgc", "ple"])
def test_cgc_and_ple_fit_and_name_their_experts(architecture):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    y = pd.DataFrame({"value": X[:, 0], "flag": X[:, 1] > 0})
    model = MMoERegressorClassifier(architecture=architecture, n_experts=2, n_task_experts=2,
                                    n_levels=2, max_epochs=2, random_state=0).fit(X, y)
    assert model.expert_labels_ == ["value", "value", "flag", "flag", "shared", "shared"]
    weights = model.gate_weights(X)
    assert weights.shape == (80, 2, 6)
    assert (weights[:, 0, 2:4] == 0).all() and (weights[:, 1, 0:2] == 0).all()
    assert len(model.history_[-1]["gate_utilization"][0]) == 6
    assert model.predict(X).shape == (80, 2)


def test_ple_with_every_remedy_pickles_and_predicts_the_same():
    X = np.random.RandomState(0).normal(size=(60, 3))
    model = MMoERegressorClassifier(architecture="ple", n_experts=2, gate_balance=0.1,
                                    gate_dropout_mode="scale", gate_temperature=2.0,
                                    task_weights="uncertainty", max_epochs=2, random_state=0)
    model.fit(X, X[:, :2])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict(X), model.predict(X))
    np.testing.assert_allclose(restored.task_weights_, model.task_weights_)
