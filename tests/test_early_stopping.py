"""Early stopping on the metric that matters: per-task validation metrics in history_,
``scoring``, and task scorers as skorch callbacks."""

import numpy as np
import pandas as pd
import pytest
from skorch.callbacks import EpochScoring

from sk_mmoe import MMoERegressorClassifier, make_task_scorer

SMALL = dict(n_experts=2, expert_layer_sizes=(16,), tower_layer_sizes=(8,), random_state=0)


def _data(n=400):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 4))
    y = pd.DataFrame({
        "churned": X[:, 0] + 0.5 * rng.normal(size=n) > 0.5,
        "spend": np.exp(0.5 * X[:, 1]) + 0.1 * rng.normal(size=n),
    })
    return X, y


def test_each_tasks_validation_metric_is_recorded_every_epoch():
    X, y = _data()
    model = MMoERegressorClassifier(**SMALL, max_epochs=4, early_stopping=True).fit(X, y)
    for epoch in model.history_:
        assert 0 <= epoch["valid_churned_accuracy"] <= 1
        assert np.isfinite(epoch["valid_spend_r2"])
    assert "valid_score" not in model.history_[-1]


def test_scoring_a_task_metric_stops_on_it_and_restores_its_best_epoch():
    X, y = _data()
    model = MMoERegressorClassifier(
        **SMALL, max_epochs=40, n_iter_no_change=3, early_stopping=True,
        scoring=make_task_scorer("churned", "roc_auc"),
    ).fit(X, y)
    history = model.history_
    scores = history[:, "valid_score"]
    assert scores == history[:, "valid_churned_roc_auc"]
    best = int(np.argmax(scores))
    assert len(history) == best + 1 + 3  # stopped 3 epochs after the best score
    assert len(history) < 40


def test_several_metrics_with_weights_combine_with_losses_negated():
    X, y = _data()
    model = MMoERegressorClassifier(
        **SMALL, max_epochs=3, early_stopping=True,
        scoring={"churned": ("log_loss", 2.0), "spend": "r2"},
    ).fit(X, y)
    last = model.history_[-1]
    expected = (2.0 * -last["valid_churned_log_loss"] + last["valid_spend_r2"]) / 3.0
    assert last["valid_score"] == pytest.approx(expected)


def test_task_scorer_works_as_a_skorch_callback():
    X, y = _data()
    model = MMoERegressorClassifier(
        **SMALL, max_epochs=3, early_stopping=True,
        callbacks=[("auc", EpochScoring(make_task_scorer("churned", "roc_auc"),
                                        lower_is_better=False, name="auc"))],
    ).fit(X, y)
    assert all(0.5 < auc <= 1 for auc in model.history_[:, "auc"])
    # The callback scores the same validation rows and outputs as the recorded metric.
    scored = MMoERegressorClassifier(
        **SMALL, max_epochs=3, early_stopping=True, scoring=make_task_scorer("churned", "roc_auc"),
        callbacks=[("auc", EpochScoring(make_task_scorer("churned", "roc_auc"),
                                        lower_is_better=False, name="auc"))],
    ).fit(X, y)
    np.testing.assert_allclose(scored.history_[:, "auc"], scored.history_[:, "valid_score"], rtol=1e-6)


@pytest.mark.parametrize(
    "scoring, message",
    [
        (make_task_scorer("nope", "roc_auc"), r"task 'nope' is not a fitted task; the fitted tasks are \['churned', 'spend'\]"),
        (make_task_scorer("spend", "roc_auc"), r"metric 'roc_auc' does not apply to task 'spend', a regression task"),
        ({"churned": ("roc_auc", -1)}, r"scoring\['churned'\]: the weight must be a positive number; got -1"),
        ({}, r"scoring must be 'loss', a task scorer"),
    ],
)
def test_bad_scoring_is_refused_before_training(scoring, message):
    X, y = _data()
    model = MMoERegressorClassifier(**SMALL, max_epochs=2, early_stopping=True, scoring=scoring)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert not hasattr(model, "n_iter_")


def test_scoring_can_change_between_partial_fit_calls():
    X, y = _data()
    model = MMoERegressorClassifier(**SMALL, max_epochs=2, early_stopping=True).fit(X, y)
    model.set_params(scoring=make_task_scorer("spend", "mean_absolute_error"))
    model.partial_fit(X, y)
    assert model.history_[-1, "valid_score"] == pytest.approx(-model.history_[-1, "valid_spend_mean_absolute_error"])
