"""Raw X: DataFrames with categorical and missing values, encoded once at the entry."""

import numpy as np
import pandas as pd
import pytest

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._features import FIRST_LEVEL_CODE, MISSING_CODE, UNKNOWN_CODE, FeatureEncoder


@pytest.fixture
def raw_frame():
    """A frame as a user has it: numbers with gaps, strings, categories, bools."""
    rng = np.random.RandomState(0)
    n = 300
    tier = rng.choice(["a", "b", "c", "d"], n)
    active = rng.rand(n) > 0.5
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["Paris", "Lyon", "Nice"], n).astype(object),
            "plan": pd.Categorical(rng.choice(["free", "pro"], n)),
            "tier": pd.Series(tier, dtype="string"),
            "active": active,
        },
        index=pd.RangeIndex(1000, 1000 + n),
    )
    X.loc[X.index[::7], "age"] = np.nan
    X.loc[X.index[::11], "city"] = None
    y = pd.DataFrame(
        {
            "spend": np.where(X["city"] == "Paris", 2.0, 0.0) + (X["plan"] == "pro") * 1.0
            + rng.normal(0, 0.1, n),
            "churn": np.where((tier == "a") | active, "yes", "no"),
        },
        index=X.index,
    )
    return X, y


def test_a_raw_frame_fits_predicts_and_keeps_its_index(raw_frame, small_params):
    X, y = raw_frame
    before = X.copy(deep=True)
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    pd.testing.assert_frame_equal(X, before)  # the caller's frame is untouched
    assert model.n_features_in_ == 6
    assert model.feature_names_in_.tolist() == list(X.columns)
    predicted = model.predict(X.iloc[::-1])
    assert predicted.index.equals(X.index[::-1])
    assert model.score(X, y) > 0.8  # the targets depend on the categorical columns
    assert model.gate_weights(X).shape == (len(X), 2, small_params["n_experts"])


def test_categories_are_learnt_not_ignored(raw_frame, small_params):
    X, y = raw_frame
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=60)).fit(X, y)
    paris, lyon = X.iloc[:20].assign(city="Paris"), X.iloc[:20].assign(city="Lyon")
    gap = model.predict(paris)["spend"].mean() - model.predict(lyon)["spend"].mean()
    assert gap == pytest.approx(2.0, abs=0.5)


def test_encoder_codes_unknown_and_missing_levels(raw_frame, small_params):
    X, _ = raw_frame
    model = MMoERegressorClassifier()
    encoder = FeatureEncoder()
    encoded = encoder.fit_transform(model, X)
    assert encoder.numeric_columns_ == [0, 1, 5]  # bool is numeric (0/1)
    assert encoder.categorical_columns_ == [2, 3, 4]
    assert encoder.categories_[0].tolist() == ["Lyon", "Nice", "Paris"]
    assert encoder.numeric_missing_.tolist() == [True, False, False]
    city = encoded[:, 3].numpy()
    assert city[0] == MISSING_CODE
    assert set(city[1:4]) <= {FIRST_LEVEL_CODE + k for k in range(3)}
    new = encoder.transform(model, X.iloc[:3].assign(city=["Rome", None, "Nice"]))
    assert new[:, 3].tolist() == [UNKNOWN_CODE, MISSING_CODE, FIRST_LEVEL_CODE + 1]


def test_unseen_categories_and_missing_values_at_predict(raw_frame, small_params):
    X, y = raw_frame
    model = MMoERegressorClassifier(**small_params).fit(X, y)
    odd = X.iloc[:5].assign(city="Rome", tier=pd.Series(["z"] * 5, dtype="string", index=X.index[:5]))
    odd.loc[odd.index[0], "income"] = np.nan  # no NaN in this column at fit
    predicted = model.predict(odd)
    assert predicted["spend"].notna().all()
    assert set(predicted["churn"]) <= {"yes", "no"}


def test_feature_columns_must_match_the_fit(raw_frame, small_params):
    X, y = raw_frame
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=1)).fit(X, y)
    with pytest.raises(ValueError, match="Feature names"):
        model.predict(X.rename(columns={"age": "years"}))
    with pytest.raises(ValueError, match="column 'age' was numeric at fit"):
        model.predict(X.assign(age="old"))


def test_a_high_cardinality_id_column(small_params):
    # The recommender case: an ID column with 10**5 levels; its table is
    # (10**5 + 2) x 16 floats = 6.4 MB.
    rng = np.random.RandomState(0)
    n = 100_000
    X = pd.DataFrame({"user": pd.Series(np.arange(n)).map("u{}".format), "x": rng.normal(size=n)})
    y = (X["x"] > 0).astype(int)
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=1, batch_size=4096))
    model.fit(X, y)
    table = model.module_.embedding.categories.weight
    assert table.shape == (n + 2, 16)
    assert model.predict(X.iloc[:10]).shape == (10,)


def test_arrays_with_nan_are_imputed_and_flagged(mixed_data, small_params):
    X, y = mixed_data
    X = X.copy()
    X[::5, 0] = np.nan
    model = MMoERegressorClassifier(**dict(small_params, numeric_embedding=None)).fit(X, y)
    assert model._feature_encoder.numeric_missing_.tolist() == [True] + [False] * 5
    assert model.module_.embedding.out_features == 6 + 1
    assert not model.predict(X).isna().any().any()


def test_numeric_features_are_standardised_inside_the_model(mixed_data, small_params):
    # Shifting and scaling a feature changes nothing: the model standardises it.
    X, y = mixed_data
    shifted = X * np.array([1000.0, 1, 1, 1, 1, 1]) + 50.0
    a = MMoERegressorClassifier(**dict(small_params, max_epochs=3)).fit(X, y).predict(X)
    b = MMoERegressorClassifier(**dict(small_params, max_epochs=3)).fit(shifted, y).predict(shifted)
    np.testing.assert_allclose(a["amount"], b["amount"], rtol=1e-3)


def test_pipeline_and_array_paths_still_work(raw_frame, small_params):
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    X, y = raw_frame
    prep = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city", "plan", "tier"]),
        remainder="passthrough",
    ).set_output(transform="pandas")
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(prep, MMoERegressorClassifier(**small_params)).fit(X, y)
    assert model.predict(X).index.equals(X.index)


def test_auto_numeric_embedding_is_piecewise_linear_for_narrow_dense_X(mixed_data, small_params):
    import scipy.sparse as sp

    X, y = mixed_data
    # 1,000 rows and more: the embedding; fewer (the fixture's 400): the plain value.
    X, y = np.tile(X, (3, 1)), pd.concat([y] * 3, ignore_index=True)
    params = dict(small_params, max_epochs=1)
    dense = MMoERegressorClassifier(**params).fit(X, y)
    assert dense._feature_encoder.numeric_embedding_ == "piecewise_linear"
    assert dense.module_.embedding.out_features == 6 * 16
    few = MMoERegressorClassifier(**params).fit(X[:999], y[:999])
    assert few._feature_encoder.numeric_embedding_ is None
    sparse = MMoERegressorClassifier(**params).fit(sp.csr_matrix(X), y)
    assert sparse._feature_encoder.numeric_embedding_ is None
    wide = np.random.RandomState(0).normal(size=(len(X), 101))
    assert MMoERegressorClassifier(**params).fit(wide, y)._feature_encoder.numeric_embedding_ is None


def test_indicator_columns_are_not_standardised(small_params):
    # A rare one-hot column keeps its 0/1 values; standardising would make its ones ~30.
    rng = np.random.RandomState(0)
    X = np.c_[rng.normal(5, 2, 1000), (np.arange(1000) == 3).astype(float)]
    model = MMoERegressorClassifier(**dict(small_params, max_epochs=1)).fit(X, X[:, 0])
    encoder = model._feature_encoder
    assert encoder.numeric_mean_[1] == 0 and encoder.numeric_scale_[1] == 1
    assert encoder.numeric_mean_[0] == pytest.approx(5, abs=0.2)


@pytest.mark.parametrize(
    "column",
    [pd.date_range("2020-01-01", periods=300), pd.Series(np.arange(300) * 1j), pd.timedelta_range(0, periods=300)],
    ids=["datetime", "complex", "timedelta"],
)
def test_unsupported_feature_dtypes_are_named(raw_frame, small_params, column):
    X, y = raw_frame
    X = X.assign(when=np.asarray(column))
    with pytest.raises(ValueError, match=r"X column 'when' has dtype .*neither numeric, bool nor categorical"):
        MMoERegressorClassifier(**small_params).fit(X, y)


# -- sparse X --------------------------------------------------------------------------


def sparse_features(n_rows=120, seed=0):
    """A CSR matrix with a 0/1 column, a constant column, NaN entries and an empty column."""
    import scipy.sparse as sp

    rng = np.random.RandomState(seed)
    X = sp.random(n_rows, 8, density=0.3, format="csr", random_state=rng)
    X.data = (rng.normal(size=X.nnz) * 3 + 2).astype(np.float64)
    X = X.tolil()
    X[:, 5] = (rng.rand(n_rows, 1) < 0.1).astype(float)  # a rare indicator
    X[:, 6] = 4.0  # constant
    X[:, 7] = 0.0  # empty
    X = X.tocsr()
    X.eliminate_zeros()
    X.data[::9] = np.nan
    return X


def test_sparse_X_stays_sparse_with_the_dense_statistics():
    import scipy.sparse as sp

    X = sparse_features()
    sparse_encoder, dense_encoder = FeatureEncoder(), FeatureEncoder()
    encoded = sparse_encoder.fit_transform(MMoERegressorClassifier(), X)
    dense_encoder.fit_transform(MMoERegressorClassifier(), X.toarray())
    assert type(encoded).__name__ == "SparseRows"
    assert encoded.data.numel() == X.nnz
    for name in ("numeric_mean_", "numeric_scale_", "numeric_missing_"):
        np.testing.assert_allclose(getattr(sparse_encoder, name), getattr(dense_encoder, name))
    assert sparse_encoder.numeric_scale_[5:].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(
        encoded[:].to_dense().numpy(), sp.csr_matrix(X, dtype=np.float32).toarray()
    )


@pytest.fixture(params=["sparse product", "densified batches"])
def sparse_batches(request, monkeypatch):
    """Both ways a sparse batch can go: the sparse product, or densified when small."""
    from sk_mmoe import _embeddings

    if request.param == "sparse product":
        monkeypatch.setattr(_embeddings, "MAX_DENSIFIED_BATCH", 0)
    return request.param


@pytest.mark.parametrize("numeric_embedding", [None, "piecewise_linear"])
def test_a_model_fitted_on_sparse_X_equals_one_fitted_on_its_dense_form(
    small_params, numeric_embedding, sparse_batches
):
    X = sparse_features()
    dense = np.nan_to_num(X.toarray())
    y = np.c_[dense[:, 0] - dense[:, 1], (dense[:, 2] > 1).astype(int)]
    params = dict(small_params, numeric_embedding=numeric_embedding, random_state=3)
    on_sparse = MMoERegressorClassifier(**params).fit(X, y)
    on_dense = MMoERegressorClassifier(**params).fit(X.toarray(), y)
    np.testing.assert_allclose(on_sparse.predict(X), on_dense.predict(X.toarray()), rtol=1e-4, atol=1e-5)
    # Either format predicts with either model.
    np.testing.assert_allclose(on_sparse.predict(X.toarray()), on_sparse.predict(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(on_dense.predict(X), on_dense.predict(X.toarray()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        on_sparse.gate_weights(X), on_dense.gate_weights(X.toarray()), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("layout", ["coo", "csc", "csr_unsorted"])
def test_sparse_layouts_are_read_without_changing_the_callers_matrix(small_params, layout, sparse_batches):
    import scipy.sparse as sp

    rows, columns = np.array([0, 0, 1, 2, 2]), np.array([3, 1, 0, 3, 3])  # (2, 3) twice
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    if layout == "csr_unsorted":
        X = sp.csr_matrix((values, columns, np.array([0, 2, 3, 5])), shape=(3, 4))
        assert not X.has_canonical_format
    else:
        X = sp.coo_matrix((values, (rows, columns)), shape=(3, 4)).asformat(layout)
    before = X.copy()
    y = [0.0, 1.0, 2.0]
    # "auto" would embed the dense form's columns; the same model needs the same choice.
    params = dict(small_params, numeric_embedding=None)
    model = MMoERegressorClassifier(**params).fit(X, y)
    expected = MMoERegressorClassifier(**params).fit(X.toarray(), y).predict(X.toarray())
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-4, atol=1e-5)
    assert X.format == before.format and X.dtype == before.dtype
    for name in ("data", "indices", "indptr", "row", "col"):
        if hasattr(X, name):
            np.testing.assert_array_equal(getattr(X, name), getattr(before, name))


def test_a_very_wide_sparse_X_fits_without_densifying(small_params):
    # 2,000 x 10**6 at 0.01% density: 1.6 MB of non-zeros, 8 GB as a dense float32 array.
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    n_rows, n_columns, per_row = 2_000, 10**6, 100
    columns = np.sort(rng.choice(n_columns, size=(n_rows, per_row)), axis=1).ravel()
    X = sp.csr_matrix(
        (rng.rand(n_rows * per_row).astype(np.float32), columns, np.arange(n_rows + 1) * per_row),
        shape=(n_rows, n_columns),
    )
    y = np.asarray(X[:, :1000].sum(axis=1)).ravel()
    params = dict(small_params, n_experts=2, expert_layer_sizes=(2,), max_epochs=1)
    model = MMoERegressorClassifier(**params).fit(X, y)
    assert model.predict(X[:5]).shape == (5,)
    assert np.isfinite(model.predict(X)).all()


def test_infinity_in_sparse_X_is_refused(small_params):
    import scipy.sparse as sp

    X = sp.csr_matrix(np.array([[0.0, np.inf], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="infinity"):
        MMoERegressorClassifier(**small_params).fit(X, [0.0, 1.0])
