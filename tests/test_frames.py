"""polars input and output: a polars X or y fits and predicts exactly as the pandas frame
with the same values, and set_output chooses predict's container."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.base import clone

from sk_mmoe import MMoERegressorClassifier, task_scores

pytestmark = pytest.mark.filterwarnings("ignore::sk_mmoe.diagnostics.GatePolarizationWarning")

PARAMS = dict(n_experts=2, expert_layer_sizes=(8,), tower_layer_sizes=(), max_epochs=3,
              batch_size=32, random_state=0)


@pytest.fixture
def frames():
    """The same table as polars and as pandas frames: numbers with nulls, integers,
    strings with nulls, a categorical, an enum and booleans with nulls."""
    rng = np.random.RandomState(0)
    n = 150
    number = [None if rng.rand() < 0.1 else float(v) for v in rng.normal(size=n)]
    count = rng.poisson(3.0, n).tolist()
    plan = [None if rng.rand() < 0.1 else str(v) for v in rng.choice(["a", "b", "c"], n)]
    colour = rng.choice(["red", "blue"], n).tolist()
    size = rng.choice(["S", "M", "L"], n).tolist()
    member = [None if rng.rand() < 0.1 else bool(v) for v in rng.rand(n) < 0.5]
    X_polars = pl.DataFrame({
        "number": number, "count": count, "plan": plan,
        "colour": pl.Series(colour, dtype=pl.Categorical),
        "size": pl.Series(size, dtype=pl.Enum(["S", "M", "L"])),
        "member": member,
    })
    X_pandas = pd.DataFrame({
        "number": np.array([np.nan if v is None else v for v in number]),
        "count": np.array(count), "plan": pd.Series(plan, dtype=object),
        "colour": pd.Categorical(colour), "size": pd.Categorical(size),
        "member": pd.Series(member, dtype=object),
    })
    value = np.nan_to_num(np.array(X_pandas["number"], dtype=float)) + np.array(count)
    label = np.where(np.array(count) > 3, "many", "few")
    y_polars = pl.DataFrame({"value": value, "label": label.tolist()})
    y_pandas = pd.DataFrame({"value": value, "label": label})
    return X_polars, X_pandas, y_polars, y_pandas


def test_polars_fits_and_predicts_as_pandas(frames):
    X_polars, X_pandas, y_polars, y_pandas = frames
    from_polars = MMoERegressorClassifier(**PARAMS).fit(X_polars, y_polars)
    from_pandas = MMoERegressorClassifier(**PARAMS).fit(X_pandas, y_pandas)
    assert from_polars.task_names_ == ["value", "label"]
    assert list(from_polars.feature_names_in_) == list(X_polars.columns)
    assert from_polars._feature_encoder.categorical_columns_ == [2, 3, 4]
    pd.testing.assert_frame_equal(from_polars.predict(X_polars), from_pandas.predict(X_pandas))
    for p, q in zip(from_polars.predict_proba(X_polars)[1:], from_pandas.predict_proba(X_pandas)[1:]):
        np.testing.assert_array_equal(p, q)
    # Either form predicts for a model fitted on the other.
    pd.testing.assert_frame_equal(from_pandas.predict(X_polars), from_pandas.predict(X_pandas))
    assert task_scores(from_polars, X_polars, y_polars) == task_scores(from_pandas, X_pandas, y_pandas)


def test_polars_series_target_keeps_its_name(frames):
    X_polars, _, y_polars, _ = frames
    model = MMoERegressorClassifier(**PARAMS).fit(X_polars, y_polars["label"])
    assert model.task_names_ == ["label"]
    assert model.predict(X_polars).name == "label"
    model.partial_fit(X_polars, y_polars["label"])
    assert model.n_iter_ == 6


def test_set_output_chooses_the_container(frames):
    X_polars, X_pandas, y_polars, y_pandas = frames
    model = MMoERegressorClassifier(**PARAMS).fit(X_pandas, y_pandas)
    default = model.predict(X_pandas)
    as_polars = model.set_output(transform="polars").predict(X_pandas)
    assert isinstance(as_polars, pl.DataFrame)
    assert as_polars.columns == ["value", "label"]
    np.testing.assert_array_equal(as_polars["value"].to_numpy(), default["value"].to_numpy())
    assert as_polars["label"].to_list() == default["label"].tolist()
    assert clone(model)._sklearn_output_config == {"transform": "polars"}
    assert model.set_output(transform="default").predict(X_pandas).equals(default)

    array_model = MMoERegressorClassifier(**PARAMS).fit(X_pandas, y_pandas.to_numpy())
    assert isinstance(array_model.predict(X_pandas), np.ndarray)
    as_pandas = array_model.set_output(transform="pandas").predict(X_pandas)
    assert list(as_pandas.columns) == [0, 1] and as_pandas.index.equals(X_pandas.index)
    assert array_model.set_output(transform="polars").predict(X_pandas).columns == ["0", "1"]


def test_bad_output_and_lazy_frames_are_refused(frames):
    X_polars, _, y_polars, _ = frames
    with pytest.raises(ValueError, match=r"transform='arrow'.*'default', 'pandas', 'polars'"):
        MMoERegressorClassifier().set_output(transform="arrow")
    with pytest.raises(TypeError, match=r"X is a polars LazyFrame; call \.collect\(\)"):
        MMoERegressorClassifier(**PARAMS).fit(X_polars.lazy(), y_polars)
