"""Warnings point at the caller's line, not at skorch's or scikit-learn's internals."""

import warnings

import numpy as np
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mmoe import MMoERegressorClassifier, TaskKindWarning
from sk_mmoe.diagnostics import GatePolarizationWarning

TINY = dict(n_experts=4, expert_layer_sizes=(8,), tower_layer_sizes=(4,), max_epochs=1, random_state=0)


def caught(category, action):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        action()
    return [w for w in records if issubclass(w.category, category)]


def test_task_kind_warning_points_at_the_callers_line():
    X = np.random.RandomState(0).normal(size=(90, 2))
    years = np.arange(90) % 30  # 30 distinct integers: multiclass, with a warning
    records = caught(TaskKindWarning, lambda: make_pipeline(
        StandardScaler(), MMoERegressorClassifier(**TINY)).fit(X, years))
    assert len(records) == 1
    assert records[0].filename == __file__


def test_polarization_warning_from_a_callback_points_at_the_callers_line():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    model = MMoERegressorClassifier(**TINY).fit(X, X[:, 0])
    head = model.module_.levels[-1].gates.layers[-1]
    with torch.no_grad():  # every gate on expert 0, frozen there
        head.weight.zero_()
        head.bias.fill_(-20.0)
        head.bias[:, 0] = 20.0
    model.module_.levels[-1].gates.requires_grad_(False)
    records = caught(GatePolarizationWarning, lambda: model.partial_fit(X, X[:, 0]))
    assert len(records) == 1
    assert records[0].filename == __file__


def test_convergence_warning_points_at_the_callers_line():
    from sklearn.exceptions import ConvergenceWarning

    X = np.random.RandomState(0).normal(size=(200, 3))
    # 12 epochs at a small learning rate: the training loss is still falling at the end.
    # Behind a Pipeline, a fixed stacklevel lands in scikit-learn's pipeline.py.
    model = make_pipeline(StandardScaler(), MMoERegressorClassifier(
        **dict(TINY, max_epochs=12, lr=1e-3), early_stopping=False))
    records = caught(ConvergenceWarning, lambda: model.fit(X, X[:, 0]))
    assert len(records) == 1
    assert records[0].filename == __file__


def test_a_warning_inside_a_grid_search_points_at_the_callers_line():
    from sklearn.model_selection import GridSearchCV

    X = np.random.RandomState(0).normal(size=(90, 2))
    years = np.arange(90) % 30
    search = GridSearchCV(MMoERegressorClassifier(**TINY), {"n_experts": [2]}, cv=2)
    records = caught(TaskKindWarning, lambda: search.fit(X, years))
    assert records and all(w.filename == __file__ for w in records)
