import warnings

import numpy as np
import pandas as pd
import pytest

from sk_mmoe._tasks import TargetEncoder, TaskKindWarning, infer_task_kind


@pytest.mark.parametrize(
    "values, kind",
    [
        (pd.Series([True, False, True]), "binary"),
        (pd.Series(["a", "b", "a"]), "binary"),
        (pd.Series(["a", "b", "c"]), "multiclass"),
        (pd.Series(["a", "b", "c"], dtype="category"), "multiclass"),
        (pd.Series([0, 1, 1]), "binary"),
        (pd.Series([3, 1, 2]), "multiclass"),
        (pd.Series([0.0, 1.0, 1.0]), "binary"),
        (pd.Series([0.0, 1.0, np.nan]), "binary"),
        (pd.Series([0.5, 1.0, 2.0]), "regression"),
        # Whole-number floats spread over a wide range are measurements (grams, years).
        (pd.Series([1200.0, 1350.0, 980.0]), "regression"),
        (pd.Series([1987.0, 2019.0, 1987.0, 2019.0, 2003.0, 2003.0]), "regression"),
        # A few distinct whole numbers in a few rows say nothing: regression, as before.
        (pd.Series([0.0, 2.0, 1.0]), "regression"),
        # Few dense repeated whole-number floats are class codes (type_of_target's rule).
        (pd.Series([2.0, 0.0, np.nan, 1.0, 0.0, 2.0, 1.0]), "multiclass"),
        (pd.Series([1.0, 2.0, np.nan, 1.0, 2.0]), "binary"),
        (pd.Series([-1.0, 1.0, 1.0, -1.0]), "binary"),
        # Many distinct whole numbers: a quantity.
        (pd.Series(np.arange(60, dtype=float) % 30), "regression"),
        # A single value is a constant quantity, not one class.
        (pd.Series([3.0, 3.0, np.nan]), "regression"),
        (pd.Series(np.array([1.5, 2.5, 3.5], dtype=object)), "regression"),
        (pd.Series(np.array(["x", None, "y"], dtype=object)), "binary"),
        (pd.Series([1, 0, None], dtype="Int64"), "binary"),
    ],
)
def test_infer_task_kind(values, kind):
    assert infer_task_kind(values) == kind


def test_object_array_mixing_numbers_and_strings_keeps_numeric_columns():
    y = np.empty((4, 2), dtype=object)
    y[:, 0] = [1.5, 2.5, 0.1, 9.0]
    y[:, 1] = ["a", "b", "a", "c"]
    encoder = TargetEncoder().fit(y)
    assert [s.kind for s in encoder.tasks_] == ["regression", "multiclass"]


def test_tasks_parameter_forms():
    y = pd.DataFrame({"a": [0, 1, 2, 1], "b": [0.0, 1.0, 0.0, 1.0]})
    assert [s.kind for s in TargetEncoder("regression").fit(y).tasks_] == ["regression"] * 2
    assert [s.kind for s in TargetEncoder(["regression", "multiclass"]).fit(y).tasks_] == [
        "regression",
        "multiclass",
    ]
    assert [s.kind for s in TargetEncoder({"b": "regression"}).fit(y).tasks_] == [
        "multiclass",
        "regression",
    ]


def test_integer_column_with_many_classes_warns():
    y = pd.Series(np.arange(100), name="age")
    with pytest.warns(TaskKindWarning, match="'age': 'regression'"):
        TargetEncoder().fit(y)


def test_encode_standardises_regression_and_indexes_classes():
    y = pd.DataFrame({"r": [1.0, 3.0, np.nan, 5.0], "c": ["b", None, "a", "b"]})
    before = y.copy()
    encoder = TargetEncoder().fit(y)
    encoded = encoder.transform(y)
    np.testing.assert_allclose(encoded[[0, 1, 3], 0], np.array([-1, 0, 1]) * np.sqrt(1.5), rtol=1e-6)
    assert np.isnan(encoded[2, 0]) and np.isnan(encoded[1, 1])
    assert encoded[[0, 2, 3], 1].tolist() == [1.0, 0.0, 1.0]
    assert list(encoder.tasks_[1].classes_) == ["a", "b"]
    pd.testing.assert_frame_equal(y, before)


def test_decode_maps_back_to_the_label_space():
    y = pd.DataFrame({"r": [10.0, 20.0, 30.0], "b": [True, False, True], "m": ["x", "y", "z"]})
    encoder = TargetEncoder().fit(y)
    outputs = np.zeros((2, 3, 3), dtype=np.float32)
    outputs[:, 0, 0] = [1.0, -1.0]  # standardised
    outputs[:, 1, 0] = [2.0, -2.0]  # logits
    outputs[:, 2] = [[0, 5, 0], [0, 0, 5]]
    r, b, m = encoder.decode(outputs)
    np.testing.assert_allclose(r, 20.0 + np.array([1.0, -1.0]) * np.std([10.0, 20.0, 30.0]), rtol=1e-6)
    assert b.tolist() == [True, False]
    assert m.tolist() == ["y", "z"]
    probas = encoder.probabilities(outputs)
    assert probas[0] is None
    np.testing.assert_allclose(probas[1][:, 1], 1 / (1 + np.exp([-2.0, 2.0])), rtol=1e-6)
    np.testing.assert_allclose(probas[2].sum(1), 1.0)


def test_decode_restores_categorical_dtype():
    dtype = pd.CategoricalDtype(["low", "mid", "high"], ordered=True)
    y = pd.DataFrame({"level": pd.Series(["low", "high", "mid"], dtype=dtype)})
    encoder = TargetEncoder().fit(y)
    outputs = np.zeros((1, 1, 3), dtype=np.float32)
    outputs[0, 0, 0] = 5
    frame = encoder.assemble(encoder.decode(outputs))
    assert frame["level"].dtype == dtype


def test_labels_of_different_types_do_not_collide():
    y = pd.Series(np.array([1, "1", True, 1], dtype=object))
    encoder = TargetEncoder("multiclass")
    with pytest.raises(ValueError, match="mixes label types"):
        encoder.fit(y)


def _fit_kinds(y, **kwargs):
    return [s.kind for s in TargetEncoder(**kwargs).fit(y).tasks_]


def test_integer_labels_with_a_missing_value_stay_classification():
    # pandas turns an int column with a NaN into float64; it must not become regression.
    y = pd.DataFrame({"c": np.arange(60) % 3, "r": np.linspace(0, 1, 60)})
    y.loc[0, "c"] = np.nan
    assert y["c"].dtype == np.float64
    # Whole numbers are ambiguous: the warning says which kind was chosen and how to
    # choose the other.
    with pytest.warns(TaskKindWarning, match=r"'c' .*'multiclass'.*tasks=\{'c': 'regression'\}"):
        encoder = TargetEncoder().fit(y)
    assert [s.kind for s in encoder.tasks_] == ["multiclass", "regression"]
    assert encoder.tasks_[0].classes_.tolist() == [0.0, 1.0, 2.0]


def test_whole_number_floats_without_missing_values_are_scores_and_warn_with_the_override():
    y = pd.DataFrame({"rating": np.arange(40) % 5 + 1.0})
    message = (
        r"'rating' holds whole numbers \(1, 2, 3, ...; 5 distinct values\) and was inferred as "
        r"'regression'.*tasks=\{'rating': 'multiclass'\}"
    )
    with pytest.warns(TaskKindWarning, match=message):
        assert _fit_kinds(y) == ["regression"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskKindWarning)  # an explicit kind is not doubted
        assert _fit_kinds(y, tasks={"rating": "regression"}) == ["regression"]


def test_repeated_measurements_warn_that_they_could_be_classes():
    grams = pd.DataFrame({"grams": np.tile([250.0, 500.0, 1000.0], 10)})
    message = (
        r"'grams' .*\(250, 500, 1000; 3 distinct values\).*'regression'"
        r".*tasks=\{'grams': 'multiclass'\}"
    )
    with pytest.warns(TaskKindWarning, match=message):
        assert _fit_kinds(grams) == ["regression"]
    assert _fit_kinds(grams, tasks="multiclass") == ["multiclass"]


@pytest.mark.parametrize(
    "values",
    [
        np.random.RandomState(0).normal(size=50),  # measurements with decimals
        np.round(np.random.RandomState(0).uniform(500, 3000, size=50)),  # whole grams
        np.random.RandomState(0).uniform(5, 30, size=50).round(2),  # prices
    ],
)
def test_measurements_stay_regression_without_a_warning(values):
    values = values.copy()
    values[::7] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskKindWarning)
        assert _fit_kinds(pd.Series(values, name="m")) == ["regression"]


@pytest.mark.parametrize("magnitude", [1e160, 1e300, 1e-170])
def test_regression_scaling_survives_extreme_magnitudes(magnitude):
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan]) * magnitude
    encoder = TargetEncoder().fit(values)
    task = encoder.tasks_[0]
    assert task.location_ == pytest.approx(2.5 * magnitude)
    assert task.scale_ == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0]) * magnitude)
    encoded = encoder.transform(values)
    standard = (np.arange(1, 5) - 2.5) / np.std([1, 2, 3, 4])
    np.testing.assert_allclose(encoded[:4, 0], standard, rtol=1e-6)
    decoded = encoder.decode(encoded[:4, :, None])[0]
    np.testing.assert_allclose(decoded, values[:4], rtol=1e-6)


def test_regression_targets_near_the_float_limit_are_refused():
    with pytest.raises(ValueError, match=r"'big' holds values up to 1.7e\+308.*Rescale"):
        TargetEncoder().fit(pd.Series([1.7e308, -1.7e308, 0.5], name="big"))


def test_values_far_from_the_fit_are_refused_when_encoding():
    encoder = TargetEncoder().fit(pd.Series([1.5, 2.5, 3.5], name="r"))
    with pytest.raises(ValueError, match="'r' holds values .*too far from those of the first fit"):
        encoder.transform(pd.Series([1e300, 2.0, 3.0], name="r"))


def test_object_column_mixing_bool_and_numbers_is_refused_at_fit():
    y = pd.Series(np.array([True, 1, 0, False], dtype=object), name="flag")
    with pytest.raises(ValueError, match=r"'flag' mixes label types \['bool', 'int'\] \(e.g. True, 1\)"):
        TargetEncoder().fit(y)


def test_unseen_labels_are_shown_as_python_values():
    encoder = TargetEncoder().fit(pd.DataFrame({"c": [0, 1, 2], "b": ["no", "yes", "no"]}))
    with pytest.raises(ValueError, match=r"'c' holds label\(s\) \[7\] not seen.*are \[0, 1, 2\]\.$"):
        encoder.transform(pd.DataFrame({"c": [0, 7, 2], "b": ["no", "yes", "no"]}))
    with pytest.raises(ValueError, match=r"'b' holds label\(s\) \['maybe'\] not .*\['no', 'yes'\]\.$"):
        encoder.transform(pd.DataFrame({"c": [0, 1, 2], "b": ["no", "maybe", "no"]}))


def test_new_target_column_is_refused_when_encoding():
    y = pd.DataFrame({"a": [0, 1, 0], "b": [1.5, 2.5, 3.5]})
    encoder = TargetEncoder().fit(y)
    with pytest.raises(ValueError, match=r"y has column\(s\) \['extra'\] that are not tasks"):
        encoder.transform(y.assign(extra=1.0))


def test_frame_without_columns_is_refused():
    with pytest.raises(ValueError, match="y has 0 columns"):
        TargetEncoder().fit(pd.DataFrame(index=range(3)))


def test_object_array_predictions_keep_each_columns_label_type():
    # Found by tests/test_properties.py: an int (or bool) column beside a float column in
    # an object array came back as 0.0/1.0 floats.
    y = np.empty((4, 3), dtype=object)
    y[:, 0] = [0.5, 1.5, np.nan, 2.5]
    y[:, 1] = [1, 0, 1, 0]
    y[:, 2] = [True, False, None, True]
    encoder = TargetEncoder().fit(y)
    outputs = np.ones((2, 3, 1), dtype=np.float32)
    predicted = encoder.assemble(encoder.decode(outputs))
    assert predicted.dtype == object
    assert [type(v) for v in predicted[0]] == [float, int, bool]
    numeric = TargetEncoder().fit(np.array([[0.5, 1.0], [1.5, 0.0], [2.5, 1.0]]))
    assert numeric.assemble(numeric.decode(outputs[:, :2])).dtype == np.float64


_RNG = np.random.RandomState(0)


@pytest.mark.parametrize(
    "values, kind",
    [
        # Counts: a tail of rare values, or too many values, or floats without NaN.
        (pd.Series(_RNG.poisson(2.0, size=90)), "regression"),
        (pd.Series(np.minimum(_RNG.geometric(0.6, size=500) - 1, 8)), "regression"),  # stays
        (pd.Series(_RNG.poisson(6.0, size=300)), "regression"),
        (pd.Series(_RNG.randint(12, 19, size=200).astype(float)), "regression"),  # schooling
        # Class codes: few, consecutive, each common; integers, or floats with a NaN.
        (pd.Series(np.repeat([0, 1, 2], 50)), "multiclass"),
        (pd.Series(np.r_[np.repeat([1.0, 2.0, 3.0, 4.0], 20), np.nan]), "multiclass"),
    ],
)
def test_whole_numbers_are_ambiguous_and_always_warn(values, kind):
    with pytest.warns(TaskKindWarning) as caught:
        assert _fit_kinds(values.rename("v")) == [kind]
    other = "multiclass" if kind == "regression" else "regression"
    message = str(caught[0].message)
    assert f"inferred as '{kind}'" in message
    assert f"tasks={{'v': '{other}'}}" in message and f"tasks={{'v': '{kind}'}}" in message


def test_labels_and_fractional_numbers_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskKindWarning)
        assert _fit_kinds(pd.Series(["a", "b", "c", "a"])) == ["multiclass"]
        assert _fit_kinds(pd.Series([0, 1, 1, 0])) == ["binary"]
        assert _fit_kinds(pd.Series([0.5, 1.25, 3.0])) == ["regression"]
