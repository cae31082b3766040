"""Metadata routing: sample_weight reaches the estimator and the task scorers through
Pipeline, GridSearchCV and cross_validate when requested, and nothing changes without it."""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mmoe import MMoERegressorClassifier, make_task_scorer, task_scores

pytestmark = pytest.mark.filterwarnings("ignore::sk_mmoe.diagnostics.GatePolarizationWarning")

PARAMS = dict(n_experts=2, expert_layer_sizes=(8,), tower_layer_sizes=(), max_epochs=4,
              batch_size=32, lr=0.02, early_stopping=False, random_state=0)


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    y = pd.DataFrame({"value": X[:, 0] + 0.3 * rng.normal(size=120), "flag": X[:, 1] > 0})
    # Weights far from uniform, so a fit or a score that ignores them differs.
    weight = np.where(X[:, 2] > 0, 5.0, 0.1)
    return X, y, weight


def test_requests_are_declared(routing):
    model = MMoERegressorClassifier().set_fit_request(sample_weight=True)
    model.set_score_request(sample_weight="w").set_partial_fit_request(sample_weight=True)
    # skorch's NeuralNet is a metadata router (of its callbacks); its own requests are
    # the "$self_request" entry.
    requests = model.get_metadata_routing()._serialize()["$self_request"]
    assert requests["fit"] == {"sample_weight": True, "eval_set": None}
    assert requests["score"] == {"sample_weight": "w"}
    # partial_fit has no `classes` argument (skorch's has): it is not a request.
    assert requests["partial_fit"] == {"sample_weight": True}


def test_cross_validate_routes_weights_to_fit_and_scorer(routing, data):
    X, y, weight = data
    model = MMoERegressorClassifier(**PARAMS).set_fit_request(sample_weight=True)
    pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), model)
    scorer = make_task_scorer("value", "r2").set_score_request(sample_weight=True)
    result = cross_validate(pipe, X, y, params={"sample_weight": weight},
                            scoring={"r2": scorer}, cv=KFold(2))
    expected, unweighted_fit = [], []
    for train, test in KFold(2).split(X):
        scaler = StandardScaler().fit(X[train])
        fitted = MMoERegressorClassifier(**PARAMS).fit(
            scaler.transform(X[train]), y.iloc[train], sample_weight=weight[train]
        )
        X_test = scaler.transform(X[test])
        expected.append(task_scores(fitted, X_test, y.iloc[test],
                                    sample_weight=weight[test])["value"])
        plain = MMoERegressorClassifier(**PARAMS).fit(scaler.transform(X[train]), y.iloc[train])
        unweighted_fit.append(task_scores(plain, X_test, y.iloc[test],
                                          sample_weight=weight[test])["value"])
    np.testing.assert_allclose(result["test_r2"], expected, rtol=1e-6)
    assert not np.allclose(result["test_r2"], unweighted_fit, rtol=1e-3)


def test_grid_search_routes_weights_to_the_refit(routing, data):
    X, y, weight = data
    model = MMoERegressorClassifier(**PARAMS).set_fit_request(sample_weight=True)
    model.set_score_request(sample_weight=True)
    search = GridSearchCV(model, {"n_experts": [2]}, cv=2).fit(X, y, sample_weight=weight)
    direct = MMoERegressorClassifier(**PARAMS).fit(X, y, sample_weight=weight)
    plain = MMoERegressorClassifier(**PARAMS).fit(X, y)
    pd.testing.assert_frame_equal(search.best_estimator_.predict(X), direct.predict(X))
    assert not np.allclose(plain.predict(X)["value"], direct.predict(X)["value"], rtol=1e-3)


def test_unrequested_weights_are_refused_under_routing(routing, data):
    X, y, weight = data
    model = MMoERegressorClassifier(**PARAMS)
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        cross_validate(model, X, y, params={"sample_weight": weight}, cv=KFold(2))
    scorer = make_task_scorer("value")  # requests nothing
    model.set_fit_request(sample_weight=True)
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        cross_validate(model, X, y, params={"sample_weight": weight},
                       scoring={"r2": scorer}, cv=KFold(2))


def test_without_routing_weights_still_reach_fit(data):
    X, y, weight = data
    with pytest.raises(RuntimeError, match="metadata routing"):
        MMoERegressorClassifier().set_fit_request(sample_weight=True)
    with pytest.raises(RuntimeError, match="metadata routing"):
        make_task_scorer("value").set_score_request(sample_weight=True)
    search = GridSearchCV(MMoERegressorClassifier(**PARAMS), {"n_experts": [2]}, cv=2)
    search.fit(X, y, sample_weight=weight)
    direct = MMoERegressorClassifier(**PARAMS).fit(X, y, sample_weight=weight)
    pd.testing.assert_frame_equal(search.best_estimator_.predict(X), direct.predict(X))


def test_per_task_weights_are_routed_row_by_row(routing, data):
    # A weight per row and task, (n_samples, n_tasks): cross_validate splits its rows
    # with X's, so each fold's fit gets the rows of its training part.
    X, y, weight = data
    per_task = np.column_stack([weight, weight[::-1]])
    model = MMoERegressorClassifier(**PARAMS).set_fit_request(sample_weight=True)
    model.set_score_request(sample_weight=False)  # score takes one weight per row
    result = cross_validate(model, X, y, params={"sample_weight": per_task}, cv=KFold(2),
                            return_estimator=True)
    for (train, _), fitted in zip(KFold(2).split(X), result["estimator"]):
        direct = MMoERegressorClassifier(**PARAMS).fit(X[train], y.iloc[train],
                                                      sample_weight=per_task[train])
        pd.testing.assert_frame_equal(fitted.predict(X), direct.predict(X))
    plain = MMoERegressorClassifier(**PARAMS).fit(X[train], y.iloc[train], sample_weight=weight[train])
    assert not np.allclose(plain.predict(X)["value"], direct.predict(X)["value"], rtol=1e-3)
