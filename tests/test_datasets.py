"""Tests for sk_mmoe.datasets: the synthetic generator and the census-income loader."""

import doctest
import gzip
import io
import tarfile
import urllib.error
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sk_mmoe.datasets import _census, _synthetic, load_census_income, make_multitask_regression

from census_data import CENSUS_HOME, HAVE_CENSUS, SKIP_REASON

# Label correlation at each weight cosine p, read off Figure 2 of the MMoE paper.
FIGURE_2 = {0.4: 0.05, 0.5: 0.07, 0.6: 0.10, 0.7: 0.13, 0.8: 0.19, 0.9: 0.30, 0.95: 0.44, 1.0: 1.0}


@pytest.mark.parametrize("module", [_synthetic, _census])
def test_docstring_examples_run(module):
    assert doctest.testmod(module).failed == 0


# make_multitask_regression ------------------------------------------------


def label_correlation(y):
    return np.corrcoef(np.asarray(y), rowvar=False)[0, 1]


def test_arrays_have_requested_shapes_and_float64():
    X, y = make_multitask_regression(n_samples=50, n_features=7, random_state=0)
    assert X.shape == (50, 7) and y.shape == (50, 2)
    assert X.dtype == np.float64 and y.dtype == np.float64


def test_as_frame_names_columns():
    X, y = make_multitask_regression(n_samples=5, n_features=3, as_frame=True, random_state=0)
    assert list(X.columns) == ["x0", "x1", "x2"]
    assert list(y.columns) == ["task_1", "task_2"]
    assert (X.dtypes == np.float64).all() and (y.dtypes == np.float64).all()


def test_int_random_state_gives_the_same_data():
    first = make_multitask_regression(n_samples=20, n_features=4, random_state=3)
    second = make_multitask_regression(n_samples=20, n_features=4, random_state=3)
    other = make_multitask_regression(n_samples=20, n_features=4, random_state=4)
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.allclose(first[1], other[1])


@pytest.mark.parametrize(
    "make_state", [np.random.default_rng, np.random.RandomState], ids=["Generator", "RandomState"]
)
def test_generator_states_advance_between_calls(make_state):
    state = make_state(0)
    _, first = make_multitask_regression(n_samples=20, n_features=4, random_state=state)
    _, second = make_multitask_regression(n_samples=20, n_features=4, random_state=state)
    assert not np.allclose(first, second)


@pytest.mark.parametrize("correlation", [-1.0, -0.3, 0.0, 0.5, 1.0])
def test_weight_vectors_have_the_requested_cosine_and_norm(correlation):
    *_, coef = make_multitask_regression(
        n_samples=2, n_features=6, correlation=correlation, scale=2.5, coef=True, random_state=0
    )
    norms = np.linalg.norm(coef, axis=0)
    np.testing.assert_allclose(norms, [2.5, 2.5])
    np.testing.assert_allclose(coef[:, 0] @ coef[:, 1] / norms.prod(), correlation, atol=1e-12)


def test_identical_weights_and_no_noise_give_identical_tasks():
    _, y = make_multitask_regression(n_samples=200, correlation=1.0, noise_std=0.0, random_state=0)
    np.testing.assert_array_equal(y[:, 0], y[:, 1])


@pytest.mark.parametrize("correlation", [-0.6, 0.0, 0.3, 0.8])
def test_linear_tasks_correlate_as_their_weights(correlation):
    _, y = make_multitask_regression(
        n_samples=20_000, correlation=correlation, n_sin=0, noise_std=0.0, random_state=0
    )
    # The sampling error of a correlation from 20,000 rows is below 0.01.
    assert label_correlation(y) == pytest.approx(correlation, abs=0.03)


def test_label_correlation_follows_the_papers_figure_2():
    # The figure averages over draws of the weights, alphas and betas, so we do
    # too. One draw's label correlation has a standard deviation near 0.1, far
    # above the sampling error from 4,000 rows: many small draws beat a few big
    # ones. The label distribution does not depend on n_features: keep it small.
    curve = [
        np.mean(
            [
                label_correlation(make_multitask_regression(4_000, 10, p, random_state=seed)[1])
                for seed in range(100)
            ]
        )
        for p in FIGURE_2
    ]
    rmse = np.sqrt(np.mean((np.array(curve) - list(FIGURE_2.values())) ** 2))
    assert rmse < 0.1
    assert np.all(np.diff(curve) > 0), "label correlation should grow with p"


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_samples", 0),
        ("n_samples", 2.0),
        ("n_features", 1),
        ("correlation", 1.5),
        ("correlation", -1.01),
        ("correlation", np.nan),
        ("scale", 0.0),
        ("scale", -1.0),
        ("n_sin", -1),
        ("n_sin", True),
        ("alpha_std", -0.1),
        ("noise_std", -0.1),
        ("noise_std", np.inf),
        ("random_state", -1),
        ("random_state", "seed"),
    ],
)
def test_invalid_parameters_raise_naming_them(name, value):
    with pytest.raises(ValueError, match=f"{name} must be .* got {value!r}"):
        make_multitask_regression(**{name: value})


# load_census_income: the real test file ------------------------------------


@pytest.fixture(scope="module")
def census_group_1():
    if not HAVE_CENSUS:
        pytest.skip(SKIP_REASON)
    with pytest.warns(UserWarning) as record:
        bunch = load_census_income(data_home=CENSUS_HOME, download_if_missing=False)
    return bunch, record


def test_test_file_alone_loads_with_a_warning(census_group_1):
    bunch, record = census_group_1
    assert bunch.data.shape == (99_762, 39)
    assert bunch.target.shape == (99_762, 2)
    assert (bunch.split == "test").all()
    message = str(record[0].message)
    assert "99,762-row test file" in message and "199,523-row train file" in message


def test_census_columns_are_typed(census_group_1):
    data = census_group_1[0].data
    numeric = data.select_dtypes("number").columns
    assert set(numeric) == {
        "age",
        "wage_per_hour",
        "capital_gains",
        "capital_losses",
        "dividends_from_stocks",
        "num_persons_worked_for_employer",
        "weeks_worked_in_year",
    }
    assert (data[numeric].dtypes == np.int64).all()
    categorical = data.columns.difference(numeric)
    assert all(isinstance(data[c].dtype, pd.CategoricalDtype) for c in categorical)
    # Integer codes are categories; "?" and "NA" are values, not missing data.
    assert 0 in data["detailed_industry_recode"].cat.categories
    assert "?" in data["migration_code_change_in_msa"].cat.categories
    assert "NA" in data["hispanic_origin"].cat.categories
    assert not data.isna().any().any()
    assert not any(
        value != value.strip()
        for c in categorical
        for value in data[c].cat.categories
        if isinstance(value, str)
    )


def test_group_1_targets_and_features(census_group_1):
    bunch = census_group_1[0]
    assert bunch.target_names == ["income_50k", "never_married"]
    assert (bunch.target.dtypes == bool).all()
    assert 0.04 < bunch.target["income_50k"].mean() < 0.09
    assert 0.35 < bunch.target["never_married"].mean() < 0.5
    assert not {"income", "marital_stat", "instance_weight"} & set(bunch.data.columns)
    assert "education" in bunch.feature_names
    assert bunch.feature_names == list(bunch.data.columns)
    assert list(bunch.frame.columns) == bunch.feature_names + bunch.target_names
    assert bunch.sample_weight.dtype == np.float64 and (bunch.sample_weight > 0).all()


def test_group_2_targets_and_features():
    if not HAVE_CENSUS:
        pytest.skip(SKIP_REASON)
    with pytest.warns(UserWarning, match="only"):
        X, y = load_census_income(
            data_home=CENSUS_HOME, group=2, download_if_missing=False, return_X_y=True
        )
    assert list(y.columns) == ["college_degree", "never_married"]
    assert 0.1 < y["college_degree"].mean() < 0.3
    assert not {"income", "marital_stat", "education", "instance_weight"} & set(X.columns)
    # The paper reports an absolute label correlation of 0.2373 for group 2.
    assert abs(y.corr().iloc[0, 1]) == pytest.approx(0.2373, abs=0.02)


# load_census_income: small files made here ----------------------------------


def census_line(age, education, marital_stat, label, hispanic_origin="All other"):
    """One record in the UCI format: 42 fields after a comma and a space."""
    fields = [
        str(age), "Private", "33", "19", education, "0", "Not in universe", marital_stat,
        "Retail trade", "Sales", "White", hispanic_origin, "Female", "Not in universe",
        "Not in universe", "Full-time schedules", "0", "0", "0", "Single", "Not in universe",
        "Not in universe", "Householder", "Householder", "1500.5", "?", "?", "?",
        "Not in universe under 1 year old", "?", "3", "Not in universe", "United-States",
        "United-States", "United-States", "Foreign born- Not a citizen of U S ", "0",
        "Not in universe", "2", "52", "95", label,
    ]
    return ", ".join(fields) + "\n"


TRAIN_LINES = [
    census_line(40, "Bachelors degree(BA AB BS)", "Never married", "50000+."),
    census_line(35, "High school graduate", "Divorced", "- 50000."),
    census_line(29, "Some college but no degree", "Never married", "- 50000."),
]
TEST_LINES = [
    census_line(52, "Associates degree-academic program", "Widowed", "- 50000.", "NA"),
    census_line(61, "Doctorate degree(PhD EdD)", "Never married", "50000+."),
]


def write_gzip(path, lines):
    with gzip.open(path, "wt") as file:
        file.writelines(lines)


def write_archive(path):
    """A stand-in for the UCI zip: census.tar.gz with the two files inside."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as tar:
        files = {"census-income.data": TRAIN_LINES, "census-income.test": TEST_LINES}
        for name, lines in files.items():
            content = "".join(lines).encode()
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("census.tar.gz", tar_bytes.getvalue())
        archive.writestr("census-income.names", "| column descriptions\n")


def failing_urlopen(url, timeout):
    raise urllib.error.URLError("no network in tests")


def test_missing_files_error_names_folder_files_and_remedy(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_census_income(data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "census-income.data.gz" in message and "census-income.test.gz" in message
    assert "download_if_missing=True" in message and "SK_MMOE_DATA" in message


def test_failed_download_raises_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setattr(_census, "_urlopen", failing_urlopen)
    with pytest.raises(FileNotFoundError, match="no network in tests") as info:
        load_census_income(data_home=tmp_path)
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_download_writes_both_files_and_stacks_train_then_test(tmp_path, monkeypatch):
    archive = tmp_path / "census+income+kdd.zip"
    write_archive(archive)
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return open(archive, "rb")

    monkeypatch.setattr(_census, "_urlopen", fake_urlopen)
    data_home = tmp_path / "new" / "folder"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bunch = load_census_income(data_home=data_home, group=2)
    assert requested == [_census.ARCHIVE_URL]
    assert sorted(p.name for p in data_home.iterdir()) == [
        "census-income.data.gz",
        "census-income.test.gz",
    ]
    assert list(bunch.split) == ["train"] * 3 + ["test"] * 2
    assert list(bunch.data["age"]) == [40, 35, 29, 52, 61]
    assert list(bunch.target["college_degree"]) == [True, False, False, True, True]
    assert list(bunch.target["never_married"]) == [True, False, True, False, True]
    assert "Foreign born- Not a citizen of U S" in bunch.data["citizenship"].cat.categories
    assert "NA" in bunch.data["hispanic_origin"].cat.categories

    # A second call reads the saved files and does not download again.
    load_census_income(data_home=data_home)
    assert len(requested) == 1


def test_failed_download_falls_back_to_the_test_file_with_a_warning(tmp_path, monkeypatch):
    write_gzip(tmp_path / "census-income.test.gz", TEST_LINES)
    monkeypatch.setattr(_census, "_urlopen", failing_urlopen)
    with pytest.warns(UserWarning, match="(?s)99,762-row test file.*no network in tests"):
        bunch = load_census_income(data_home=tmp_path)
    assert len(bunch.data) == 2


def test_data_home_from_environment_variable_and_unzipped_file(tmp_path, monkeypatch):
    (tmp_path / "census-income.data").write_text("".join(TRAIN_LINES))
    monkeypatch.setenv("SK_MMOE_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="199,523-row train file"):
        bunch = load_census_income(download_if_missing=False)
    assert len(bunch.data) == 3
    assert list(bunch.target["income_50k"]) == [True, False, False]


def test_arrays_when_not_as_frame(tmp_path):
    write_gzip(tmp_path / "census-income.data.gz", TRAIN_LINES)
    write_gzip(tmp_path / "census-income.test.gz", TEST_LINES)
    bunch = load_census_income(data_home=tmp_path, as_frame=False)
    assert bunch.data.dtype == object and bunch.data.shape == (5, 39)
    assert bunch.target.dtype == bool and bunch.target.shape == (5, 2)
    assert bunch.frame is None
    assert isinstance(bunch.sample_weight, np.ndarray)
    X, y = load_census_income(data_home=tmp_path, as_frame=False, return_X_y=True)
    np.testing.assert_array_equal(y, bunch.target)


@pytest.mark.filterwarnings("ignore:Only the 99,762-row test file")
def test_file_with_unexpected_labels_is_rejected(tmp_path):
    write_gzip(tmp_path / "census-income.test.gz", [TEST_LINES[0].replace("- 50000.", "<=50K")])
    with pytest.raises(ValueError, match="column 'income' .* got \\['<=50K'\\]"):
        load_census_income(data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize("group", [0, 3, "1", True])
def test_invalid_group_raises(group, tmp_path):
    with pytest.raises(ValueError, match=f"group must be 1 or 2, got {group!r}"):
        load_census_income(data_home=tmp_path, group=group)


def test_census_tests_look_where_the_library_reads(tmp_path):
    from census_data import SKIP_REASON, TEST_FILE, census_data_home

    (tmp_path / TEST_FILE).write_bytes(b"")
    assert census_data_home({"SK_MMOE_DATA": str(tmp_path)}) == tmp_path
    # The skip names the variable and the library's folder, not a file of this checkout.
    assert "$SK_MMOE_DATA" in SKIP_REASON and "~/.cache/sk_mmoe" in SKIP_REASON
    assert "README" not in SKIP_REASON
