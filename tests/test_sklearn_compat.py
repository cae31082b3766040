"""The scikit-learn contract: common checks, pipelines, model selection."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_mmoe import MMoERegressorClassifier, make_task_scorer

# Checks that cannot pass, each with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_; "
        "skorch's own machinery reads them before the first fit."
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the constructor's **kwargs carries skorch's routed parameters (optimizer__*, "
        "callbacks__*); the check passes the literal name 'kwargs' as a parameter, which "
        "is rejected with a TypeError like any other misspelt argument (n_expert=4)."
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "stochastic mini-batch training: repeating a row changes the batches and the "
        "number of optimizer steps, so weights and repetitions agree only in expectation."
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "stochastic mini-batch training, as for the dense case."
    ),
}


@parametrize_with_checks(
    [
        MMoERegressorClassifier(
            n_experts=2,
            expert_layer_sizes=(8,),
            tower_layer_sizes=(4,),
            max_epochs=5,
            random_state=0,
        )
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def census_like_frame(n=300, seed=0):
    """Numeric and categorical features with a regression and a binary target."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "age": rng.randint(18, 80, size=n).astype(float),
            "hours": rng.normal(40, 10, size=n),
            "sector": pd.Categorical(rng.choice(["private", "public", "self"], size=n)),
            "region": rng.choice(["north", "south"], size=n),
        }
    )
    y = pd.DataFrame(
        {
            "income": 1000 * (X["age"] / 10 + (X["sector"] == "self") * 3) + rng.normal(0, 300, n),
            "married": (X["age"] > 35) ^ (X["region"] == "south"),
        }
    )
    return X, y


def preprocessor(sparse_output=True, sparse_threshold=0.3):
    return ColumnTransformer(
        [
            ("num", StandardScaler(), make_column_selector(dtype_include="number")),
            (
                "cat",
                OneHotEncoder(sparse_output=sparse_output),
                make_column_selector(dtype_exclude="number"),
            ),
        ],
        sparse_threshold=sparse_threshold,
    )


def test_pipeline_with_scaler(mixed_data, small_params):
    X, y = mixed_data
    pipe = make_pipeline(StandardScaler(), MMoERegressorClassifier(**small_params))
    assert pipe.fit(X * 100 + 5, y).score(X * 100 + 5, y) > 0.85


@pytest.mark.parametrize("transform", ["sparse", "default", "pandas"])
def test_pipeline_with_column_transformer_and_one_hot(small_params, transform):
    X, y = census_like_frame()
    prep = {
        # A sparse one-hot block reaches the estimator as a sparse matrix.
        "sparse": preprocessor(sparse_threshold=1.0),
        "default": preprocessor(),
        # scikit-learn's pandas output needs a dense one-hot encoder.
        "pandas": preprocessor(sparse_output=False),
    }[transform]
    pipe = Pipeline([("prep", prep), ("model", MMoERegressorClassifier(**small_params))])
    if transform == "pandas":
        pipe.set_output(transform="pandas")
    pipe.fit(X, y)
    pred = pipe.predict(X)
    assert list(pred.columns) == ["income", "married"]
    assert pipe.score(X, y) > 0.8
    if transform == "pandas":
        names = pipe.named_steps["model"].feature_names_in_
        assert "cat__sector_self" in names
        assert list(pred.index) == list(X.index)


def test_grid_search_over_experts_and_gate_dropout(mixed_data, small_params):
    X, y = mixed_data
    grid = GridSearchCV(
        MMoERegressorClassifier(**dict(small_params, max_epochs=5)),
        param_grid={"n_experts": [1, 4], "gate_dropout": [0.0, 0.1]},
        cv=2,
        n_jobs=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.n_experts in (1, 4)
    assert grid.best_estimator_.module_.n_experts == grid.best_params_["n_experts"]


def test_grid_search_in_a_pipeline_with_task_scorers(small_params):
    X, y = census_like_frame()
    pipe = Pipeline(
        [("prep", preprocessor()), ("mmoe", MMoERegressorClassifier(**dict(small_params, max_epochs=5)))]
    )
    scoring = {
        "married_auc": make_task_scorer("married", "roc_auc"),
        "married_log_loss": make_task_scorer("married", "log_loss"),
        "income_r2": make_task_scorer("income", "r2"),
    }
    grid = GridSearchCV(
        pipe,
        param_grid={"mmoe__n_experts": [2, 3], "mmoe__gate_dropout": [0.0, 0.2]},
        scoring=scoring,
        refit="married_auc",
        cv=KFold(2, shuffle=True, random_state=0),
        n_jobs=2,
    ).fit(X, y)
    results = grid.cv_results_
    assert grid.best_index_ == int(np.argmax(results["mean_test_married_auc"]))
    assert (results["mean_test_married_log_loss"] < 0).all()  # negated: greater is better
    assert ((results["mean_test_married_auc"] > 0.5) & (results["mean_test_married_auc"] <= 1)).all()
    assert grid.best_estimator_.named_steps["mmoe"].n_experts == grid.best_params_["mmoe__n_experts"]


def test_cross_val_score(mixed_data, small_params):
    X, y = mixed_data
    scores = cross_val_score(MMoERegressorClassifier(**small_params), X, y, cv=3)
    assert scores.shape == (3,) and (scores > 0.7).all()
