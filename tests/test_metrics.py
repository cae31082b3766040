import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mmoe import MMoERegressorClassifier, make_task_scorer, task_scores


@pytest.fixture
def fitted(mixed_data, small_params):
    X, y = mixed_data
    return MMoERegressorClassifier(**small_params).fit(X, y)


def test_default_metrics_are_r2_and_accuracy(fitted, mixed_data):
    X, y = mixed_data
    pred = fitted.predict(X)
    scores = task_scores(fitted, X, y)
    assert scores == pytest.approx(
        {
            "amount": skm.r2_score(y["amount"], pred["amount"]),
            "churn": skm.accuracy_score(y["churn"], pred["churn"]),
            "segment": skm.accuracy_score(y["segment"], pred["segment"]),
        }
    )


def test_chosen_metrics_match_scikit_learn(fitted, mixed_data):
    X, y = mixed_data
    proba = fitted.predict_proba(X)
    pred = fitted.predict(X)
    scores = task_scores(
        fitted,
        X,
        y,
        metric={"amount": "mean_absolute_error", "churn": "roc_auc", "segment": "log_loss"},
    )
    assert scores["amount"] == pytest.approx(skm.mean_absolute_error(y["amount"], pred["amount"]))
    assert scores["churn"] == pytest.approx(skm.roc_auc_score(y["churn"] == "yes", proba[1][:, 1]))
    assert scores["segment"] == pytest.approx(skm.log_loss(y["segment"], proba[2]))
    multiclass_auc = task_scores(fitted, X, y, metric={"segment": "roc_auc"})["segment"]
    assert multiclass_auc == pytest.approx(skm.roc_auc_score(y["segment"], proba[2], multi_class="ovr"))


def test_sample_weight_and_missing_labels(fitted, mixed_data):
    X, y = mixed_data
    y = y.copy()
    y.loc[:49, "churn"] = None
    weights = np.linspace(0.1, 3, 400)
    pred = fitted.predict(X)
    score = task_scores(fitted, X, y, sample_weight=weights, tasks=["churn"])
    expected = skm.accuracy_score(y["churn"][50:], pred["churn"][50:], sample_weight=weights[50:])
    assert score == {"churn": pytest.approx(expected)}


def test_metric_that_does_not_apply_is_refused(fitted, mixed_data):
    X, y = mixed_data
    with pytest.raises(ValueError, match="'roc_auc' does not apply to task 'amount', a regression task"):
        task_scores(fitted, X, y, metric="roc_auc")
    with pytest.raises(ValueError, match="metric 'auc' for task 'churn' is unknown"):
        task_scores(fitted, X, y, metric={"churn": "auc"})
    with pytest.raises(ValueError, match=r"tasks \['income'\] are not fitted tasks"):
        task_scores(fitted, X, y, tasks=["income"])


def test_scorers_follow_greater_is_better(fitted, mixed_data):
    X, y = mixed_data
    loss = task_scores(fitted, X, y, metric={"segment": "log_loss"})["segment"]
    assert make_task_scorer("segment", "log_loss")(fitted, X, y) == pytest.approx(-loss)
    assert make_task_scorer("segment", "neg_log_loss")(fitted, X, y) == pytest.approx(-loss)
    auc = task_scores(fitted, X, y, metric={"churn": "roc_auc"})["churn"]
    assert make_task_scorer("churn", "roc_auc")(fitted, X, y) == pytest.approx(auc)
    assert make_task_scorer("amount")(fitted, X, y) == pytest.approx(task_scores(fitted, X, y)["amount"])
    with pytest.raises(ValueError, match="metric 'neg_roc_auc' is unknown"):
        make_task_scorer("churn", "neg_roc_auc")
    with pytest.raises(ValueError, match=r"tasks \['income'\] are not fitted tasks"):
        make_task_scorer("income", "roc_auc")(fitted, X, y)


def test_scores_through_a_pipeline(mixed_data, small_params):
    X, y = mixed_data
    pipe = make_pipeline(StandardScaler(), MMoERegressorClassifier(**small_params)).fit(X * 10, y)
    scores = task_scores(pipe, X * 10, y, metric={"churn": "roc_auc"})
    assert scores["churn"] > 0.9
    assert make_task_scorer("churn", "roc_auc")(pipe, X * 10, y) == pytest.approx(scores["churn"])


def test_single_task_scores(mixed_data, small_params):
    X, y = mixed_data
    model = MMoERegressorClassifier(**small_params).fit(X, y["churn"].to_numpy())
    scores = task_scores(model, X, y["churn"].to_numpy(), metric="roc_auc")
    assert list(scores) == [0] and scores[0] > 0.9


def test_not_a_multitask_model():
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(TypeError, match="need a fitted MMoERegressorClassifier"):
        task_scores(model, np.zeros((3, 1)), np.zeros(3))


@pytest.mark.parametrize("kind, labels", [("binary", ["no", "yes"]), ("multiclass", [3, 7, 11])])
@pytest.mark.parametrize("weighted", [False, True])
def test_validation_accuracy_from_class_indices_equals_scikit_learn(kind, labels, weighted):
    # Early stopping scores the epoch's accuracy from class indices (no decoding): it must
    # be accuracy_score on the decoded labels, with weights and missing labels.
    from sk_mmoe._early_stopping import score_outputs
    from sk_mmoe.tasks import get_task

    rng = np.random.RandomState(0)
    n = 400
    column = pd.Series(rng.choice(labels, size=n))
    task = get_task(kind).fit("t", column)
    encoded = task.encode(column).astype(float)
    encoded[rng.rand(n) < 0.2] = np.nan
    raw = rng.normal(size=(n, task.n_outputs))
    weight = rng.uniform(0.1, 3.0, size=n) if weighted else None
    keep = ~np.isnan(encoded)
    predicted = task.decode(task.predict_raw(torch.as_tensor(raw)).numpy())
    expected = skm.accuracy_score(task.decode_targets(encoded[keep]), predicted[keep],
                                  sample_weight=None if weight is None else weight[keep])
    assert score_outputs(task, "accuracy", raw, encoded, weight) == pytest.approx(expected, abs=1e-12)
