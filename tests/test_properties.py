"""Property-based tests: random targets and features either fit and predict correctly or
fail with a clear error.

Each example draws a small ``y`` mixing float, int, str, bool, category and nullable
(Int64, boolean, string) columns with random missing masks, and an ``X`` that is an
array, a sparse matrix (random sparsity, NaN among its entries) or a DataFrame with
numeric, NaN, category, string and bool columns. Whatever happens, the caller's data is
unchanged; a fit either works (predictions shaped like ``y``, of the
label types seen, within the classes seen, never NaN) or raises ValueError/TypeError whose
message names the column or parameter at fault.

The example budget comes from the hypothesis profile (tests/conftest.py): "ci" by default,
``HYPOTHESIS_PROFILE=long`` for a longer search.
"""

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import event, given
from hypothesis import strategies as st

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._task_kinds import plain

TINY = dict(
    n_experts=2,
    expert_layer_sizes=(4,),
    tower_layer_sizes=(),
    max_epochs=1,
    batch_size=16,
    early_stopping=False,
    random_state=0,
)
Y_KINDS = ["float", "whole", "int", "str", "bool", "category", "Int64", "boolean", "string"]
X_KINDS = ["float", "float_nan", "int", "category", "string", "bool"]
# Mostly fittable columns; all-missing columns and single classes test the error path.
MISSING_SHARES = [0.0, 0.0, 0.0, 0.1, 0.3, 0.6, 0.95, 1.0]
N_LABELS = [1, 2, 2, 3, 3, 4]


def _column(kind, n, rng, missing, n_labels=None):
    """One column of ``kind`` with ``n`` rows, missing where ``missing`` is True, in
    pandas' own form: an int column with a missing value is float64, a bool one object."""
    n_labels = rng.choice(N_LABELS) if n_labels is None else n_labels
    if kind == "float":
        values = pd.Series(rng.normal(size=n) * 10.0 ** rng.choice([-200, -3, 0, 0, 3, 200]))
    elif kind == "whole":
        values = pd.Series(rng.randint(0, rng.choice([2, 3, 50, 2000]), size=n).astype(float))
    elif kind in ("int", "Int64"):
        values = pd.Series(rng.randint(0, n_labels, size=n))
    elif kind in ("str", "category", "string"):
        values = pd.Series(rng.choice(["a", "b", "c", "d"][:n_labels], size=n))
    else:  # bool, boolean
        values = pd.Series(rng.rand(n) < (0.5 if n_labels > 1 else rng.randint(2)))
    if missing.any():
        values = values.astype(object)
        values[missing] = None
        if kind in ("float", "whole", "int"):
            values = values.astype(float)
    if kind in ("category", "Int64", "boolean", "string"):
        return values.astype(kind)
    return values


@st.composite
def frames(draw, kinds, min_columns, max_columns, n_rows, allow_missing=True):
    """A DataFrame of ``n_rows`` rows with columns of kinds drawn from ``kinds``."""
    column_kinds = draw(st.lists(st.sampled_from(kinds), min_size=min_columns, max_size=max_columns))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    data = {}
    for i, kind in enumerate(column_kinds):
        share = draw(st.sampled_from(MISSING_SHARES)) if allow_missing else 0.0
        missing = rng.rand(n_rows) < share
        data[f"{kind}_{i}"] = _column(kind, n_rows, rng, missing)
    return pd.DataFrame(data)


@st.composite
def problems(draw):
    """``(X, y)``: y a DataFrame, a Series, or a 2-D (often object) array of the frame."""
    n_rows = draw(st.integers(8, 48))
    y = draw(frames(Y_KINDS, 1, 4, n_rows))
    layout = draw(st.sampled_from(["frame", "frame", "series", "array"]))
    if layout == "series":
        y = y.iloc[:, 0]
    elif layout == "array":
        y = y.to_numpy()
    form = draw(st.sampled_from(["frame", "frame", "array", "sparse"]))
    if form == "frame":
        return draw(frames(X_KINDS, 1, 4, n_rows)), y
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    X = rng.normal(size=(n_rows, draw(st.integers(1, 4))))
    if form == "sparse":
        # Random sparsity, sometimes with NaN among the stored entries.
        X[rng.rand(*X.shape) < draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))] = 0.0
        X[rng.rand(*X.shape) < draw(st.sampled_from([0.0, 0.0, 0.2]))] = np.nan
        X = sp.csr_matrix(X)
    return X, y


def _as_frame(y):
    if isinstance(y, pd.DataFrame):
        return y
    return y.to_frame() if isinstance(y, pd.Series) else pd.DataFrame(y)


def _assert_unchanged(before, after):
    if sp.issparse(before):
        assert after.format == before.format and after.dtype == before.dtype
        for name in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(after, name), getattr(before, name))
    elif isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(after, before)
    else:  # through pandas, which compares NaN, None and pd.NA in object arrays exactly
        assert after.dtype == before.dtype
        pd.testing.assert_frame_equal(pd.DataFrame(after), pd.DataFrame(before))


def _label_types(values):
    return {type(plain(v)) for v in values if not pd.isna(v)}


def _assert_names_the_culprit(error, X, y):
    message = str(error)
    names = list(_as_frame(y).columns) + (list(X.columns) if isinstance(X, pd.DataFrame) else [])
    named = any(repr(name) in message for name in names)
    assert named or message.startswith(("Input X", "X has", "y has")), (
        f"{type(error).__name__} names no column or parameter: {message}"
    )


def _assert_predictions_are_sound(model, X, y):
    pred = model.predict(X)
    assert type(pred) is type(y) and pred.shape == y.shape
    pred, y = _as_frame(pred), _as_frame(y)
    assert list(pred.columns) == list(y.columns)
    probas = model.predict_proba(X) if hasattr(model, "predict_proba") else [None] * y.shape[1]
    probas = probas if isinstance(probas, list) else [probas]
    for t, name in enumerate(y.columns):
        column, kind, classes = pred[name], model.task_types_[t], model.classes_[t]
        assert not column.isna().any(), f"NaN predicted for {name!r}"
        if kind == "regression":
            # float64, or Python floats in the object array of a mixed 2-D y
            assert _label_types(column) == {float}
            assert np.isfinite(column.to_numpy(dtype=float)).all()
            assert probas[t] is None
            continue
        seen = y[name][y[name].notna()]
        assert set(column.map(plain)) <= set(plain(c) for c in classes) <= set(seen.map(plain))
        assert _label_types(column) <= _label_types(seen)
        if isinstance(y[name].dtype, pd.CategoricalDtype):
            assert column.dtype == y[name].dtype
        assert probas[t].shape == (len(y), len(classes))
        np.testing.assert_allclose(probas[t].sum(axis=1), 1.0, rtol=1e-5)


@st.composite
def sample_weights(draw, n_rows):
    form = draw(st.sampled_from([None, None, "positive", "with_zeros"]))
    if form is None:
        return None
    weights = np.random.RandomState(draw(st.integers(0, 2**31 - 1))).uniform(0.1, 3, n_rows)
    if form == "with_zeros":
        weights[::2] = 0.0
    return weights


@given(problems(), st.data())
def test_fit_and_predict_work_or_fail_clearly(problem, data):
    X, y = problem
    weights = data.draw(sample_weights(len(y)))
    X_before, y_before, weights_before = copy.deepcopy(X), copy.deepcopy(y), copy.deepcopy(weights)
    model = MMoERegressorClassifier(**TINY)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # task-kind, convergence and gate warnings
            model.fit(X, y, sample_weight=weights)
            _assert_predictions_are_sound(model, X, y)
        event("fitted")
    except (ValueError, TypeError) as error:
        event("refused: " + re.sub(r"'[^']*'|\(.*?\)|\d+", "_", str(error))[:60])
        _assert_names_the_culprit(error, X, y)
    finally:
        _assert_unchanged(X_before, X)
        _assert_unchanged(y_before, y)
        if weights is not None:
            np.testing.assert_array_equal(weights, weights_before)


@given(problems(), st.integers(0, 2**31 - 1))
def test_partial_fit_on_a_second_batch_works_or_fails_clearly(problem, seed):
    X, y = problem
    model = MMoERegressorClassifier(**TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.partial_fit(X, y)
        except (ValueError, TypeError) as error:
            _assert_names_the_culprit(error, X, y)
            return
        # A second batch: the same rows in another order, so every label is known.
        order = np.random.RandomState(seed).permutation(len(y))
        X_second = X.iloc[order] if isinstance(X, pd.DataFrame) else X[order]
        y_second = y[order] if isinstance(y, np.ndarray) else y.iloc[order]
        model.partial_fit(X_second, y_second)
        assert model.n_iter_ == len(model.history_) == 2
        _assert_predictions_are_sound(model, X, y)


@pytest.mark.parametrize("kind", Y_KINDS)
def test_every_generated_kind_can_be_fitted(kind):
    # The generator itself must produce fittable columns of every kind, or the properties
    # above would only ever exercise the error path.
    rng = np.random.RandomState(1)
    y = pd.DataFrame({"t": _column(kind, 40, rng, rng.rand(40) < 0.2, n_labels=3)})
    X = rng.normal(size=(40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MMoERegressorClassifier(**TINY).fit(X, y)
    _assert_predictions_are_sound(model, X, y)
