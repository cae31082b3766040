"""Data sources (sk_mmoe/sources.py) through fit, predict and score: a fit on a source
equals the in-memory fit on the same rows in the same order; what cannot work with a
source raises an error saying what to do instead."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_validate

from sk_mmoe import ArrowSource, MMoERegressorClassifier, ParquetSource

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore::sk_mmoe.diagnostics.GatePolarizationWarning"
)

TARGETS = ["amount", "churned"]
# Same rows, same order: the in-memory fit must not shuffle either.
SAME_ORDER = dict(iterator_train__shuffle=False, random_state=0, batch_size=128, max_epochs=3,
                  early_stopping=False)


def make_frame(n_rows=1_500, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x0": rng.normal(size=n_rows),
        "x1": np.where(rng.random(n_rows) < 0.1, np.nan, rng.normal(size=n_rows)),
        "flag": rng.random(n_rows) < 0.3,
        "country": rng.choice(["de", "fr", "it", None], n_rows),
        "user_id": rng.integers(0, 200, n_rows),
        "amount": rng.normal(size=n_rows),
        "churned": rng.choice(["no", "yes"], n_rows),
        "weight": rng.uniform(0.5, 2.0, n_rows),
    })
    frame.loc[::9, "amount"] = np.nan
    return frame


def write(frame, path, row_group_size=400):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=row_group_size)
    return path


@pytest.fixture
def parquet(tmp_path):
    frame = make_frame()
    return frame, write(frame, tmp_path / "train.parquet")


def in_memory(frame, weight=False):
    X = frame.drop(columns=TARGETS + ["weight"])
    X["user_id"] = X["user_id"].astype("category")
    return X, frame[TARGETS], (frame["weight"].to_numpy() if weight else None)


def max_weight_difference(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.module_.parameters(), b.module_.parameters()))


def test_fit_on_a_source_equals_the_in_memory_fit_in_the_same_order(parquet):
    frame, path = parquet
    source = ParquetSource(path, targets=TARGETS, categorical=["user_id"], sample_weight="weight")
    params = dict(SAME_ORDER, class_weight="balanced", gate_balance=0.1)
    streamed = MMoERegressorClassifier(**params).fit(source)
    X, y, weight = in_memory(frame, weight=True)
    held = MMoERegressorClassifier(**params).fit(X, y, sample_weight=weight)

    ours, theirs = streamed._feature_encoder, held._feature_encoder
    assert ours.numeric_columns_ == theirs.numeric_columns_
    assert ours.categorical_columns_ == theirs.categorical_columns_
    for a, b in zip(ours.categories_, theirs.categories_):
        assert list(a) == list(b)
    np.testing.assert_allclose(ours.numeric_mean_, theirs.numeric_mean_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours.numeric_scale_, theirs.numeric_scale_, rtol=1e-12)
    np.testing.assert_array_equal(ours.numeric_missing_, theirs.numeric_missing_)
    assert ours.numeric_embedding_ == theirs.numeric_embedding_ == "piecewise_linear"
    for a, b in zip(ours.bin_edges_, theirs.bin_edges_):  # fewer rows than the sample
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert streamed._target_encoder.get_state() == held._target_encoder.get_state()
    assert list(streamed.feature_names_in_) == list(held.feature_names_in_)

    assert max_weight_difference(streamed, held) < 1e-6
    np.testing.assert_allclose(streamed.history[:, "train_loss"], held.history[:, "train_loss"], rtol=1e-6)
    predicted = streamed.predict(source)
    pd.testing.assert_frame_equal(predicted, held.predict(X), rtol=1e-5)
    assert streamed.score(source) == pytest.approx(held.score(X, y, sample_weight=weight), abs=1e-6)
    # A model fitted on a source predicts DataFrames as any other, and keeps no source.
    pd.testing.assert_frame_equal(streamed.predict(X), predicted)
    assert b"ParquetSource" not in pickle.dumps(streamed)


def test_arrow_source_equals_parquet_source(parquet):
    frame, path = parquet
    table = pq.read_table(path)
    arrow = ArrowSource(lambda: table.to_batches(max_chunksize=333), targets=TARGETS,
                        categorical=["user_id"], sample_weight="weight")
    parquet_source = ParquetSource(path, targets=TARGETS, categorical=["user_id"], sample_weight="weight")
    a = MMoERegressorClassifier(**SAME_ORDER).fit(arrow)
    b = MMoERegressorClassifier(**SAME_ORDER).fit(parquet_source)
    assert max_weight_difference(a, b) < 1e-6
    assert a.predict_proba(arrow)[1].shape == (len(frame), 2)


def test_shuffled_passes_are_seeded_permutations_of_every_row(tmp_path):
    from sk_mmoe._streaming import SourceBatches, SourceDataset

    frame = pd.DataFrame({"row": np.arange(2_000.0), "target": np.zeros(2_000)})
    directory = tmp_path / "parts"
    directory.mkdir()
    for i in range(4):
        write(frame.iloc[i * 500:(i + 1) * 500], directory / f"part{i}.parquet", row_group_size=125)
    source = ParquetSource(directory, targets="target", shuffle_buffer_rows=300)
    model = MMoERegressorClassifier(max_epochs=2, early_stopping=False, random_state=0).fit(source)
    dataset = SourceDataset(source, model, 2_000)
    batches = SourceBatches(dataset, batch_size=64, shuffle=True)

    def one_pass(seed):
        torch.manual_seed(seed)
        rows = [X[:, 0] for X, _ in batches]
        assert all(len(r) == 64 for r in rows[:-1]) and len(rows[-1]) == 2_000 % 64
        return torch.cat(rows).numpy()

    first, again, other = one_pass(1), one_pass(1), one_pass(2)
    np.testing.assert_array_equal(np.sort(first), np.arange(2_000.0))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Rows leave their row group: the first batch mixes the 3 groups the 300-row buffer
    # holds, drawn at random among the 16.
    assert len(np.unique(first[:64] // 125)) == 3
    assert len(np.unique(first[:500] // 125)) > 4
    unshuffled = torch.cat([X[:, 0] for X, _ in SourceBatches(dataset, 64, shuffle=False)])
    np.testing.assert_array_equal(unshuffled.numpy(), np.arange(2_000.0))


def test_shuffled_fit_is_reproducible_with_random_state(parquet):
    _, path = parquet
    source = ParquetSource(path, targets=TARGETS, shuffle_buffer_rows=500)
    params = dict(max_epochs=2, random_state=3, early_stopping=False)
    a = MMoERegressorClassifier(**params).fit(source)
    b = MMoERegressorClassifier(**params).fit(source)
    assert max_weight_difference(a, b) == 0.0


def test_steps_per_epoch_and_early_stopping_on_an_eval_set_source(tmp_path):
    train = ParquetSource(write(make_frame(2_000, seed=1), tmp_path / "train.parquet"), targets=TARGETS)
    valid = ParquetSource(write(make_frame(600, seed=2), tmp_path / "valid.parquet"), targets=TARGETS)
    model = MMoERegressorClassifier(steps_per_epoch=5, batch_size=64, max_epochs=200,
                                    n_iter_no_change=2, lr=0.05, random_state=0)
    model.fit(train, eval_set=valid)
    assert len(model.history) < 200  # stopped early, on the eval_set's loss
    assert set(model.history[:, "train_batch_count"]) == {5}
    assert {"valid_loss", "valid_amount_r2", "valid_churned_accuracy", "gate_entropy"} <= set(model.history[-1])
    # In memory, an epoch is 5 steps alike.
    frame = make_frame(2_000, seed=1)
    in_memory_model = MMoERegressorClassifier(steps_per_epoch=5, batch_size=64, max_epochs=2,
                                              early_stopping=False, random_state=0)
    in_memory_model.fit(frame.drop(columns=TARGETS), frame[TARGETS])
    assert in_memory_model.history[:, "train_batch_count"] == [5, 5]


def test_epoch_of_steps_continues_and_restarts():
    from sk_mmoe._data import EpochOfSteps

    epochs = EpochOfSteps(range(5), 3)
    assert [list(epochs) for _ in range(3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3]]


def test_min_frequency_drops_rare_levels(tmp_path):
    frame = pd.DataFrame({"user": ["a"] * 5 + ["b"] * 2 + ["c"], "x": np.arange(8.0), "t": np.arange(8.0)})
    source = ParquetSource(write(frame, tmp_path / "f.parquet", 3), targets="t", category_min_frequency=2)
    model = MMoERegressorClassifier(max_epochs=1, early_stopping=False).fit(source)
    assert list(model._feature_encoder.categories_[0]) == ["a", "b"]


@pytest.mark.parametrize("call, message", [
    (lambda s: GridSearchCV(MMoERegressorClassifier(), {"n_experts": [2, 4]}).fit(s), "cannot be indexed or split"),
    (lambda s: cross_validate(MMoERegressorClassifier(), s), "cannot be indexed or split"),
    (lambda s: MMoERegressorClassifier(early_stopping=True).fit(s), "eval_set="),
    (lambda s: MMoERegressorClassifier().fit(s, np.zeros(10)), "y must be None"),
    (lambda s: MMoERegressorClassifier().fit(s, sample_weight=np.ones(10)), "sample_weight=\"column\""),
    (lambda s: MMoERegressorClassifier().fit(ParquetSource(s.path)), "targets=\\[...\\]"),
    (lambda s: MMoERegressorClassifier().fit(ParquetSource(s.path, targets="nope")), "not in the table"),
    (lambda s: MMoERegressorClassifier().fit(ParquetSource(s.path, targets=TARGETS, category_min_frequency=0)),
     "category_min_frequency"),
])
def test_what_cannot_work_with_a_source_says_what_to_do(parquet, call, message):
    _, path = parquet
    with pytest.raises((TypeError, ValueError), match=message):
        call(ParquetSource(path, targets=TARGETS))


def test_unsupported_arrow_type_is_named(tmp_path):
    table = pa.table({"when": pa.array([0, 1, 2], pa.timestamp("s")), "t": [0.0, 1.0, 2.0]})
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="'when' has Arrow type timestamp"):
        MMoERegressorClassifier().fit(ParquetSource(tmp_path / "t.parquet", targets="t"))


def test_no_parquet_file_in_directory(tmp_path):
    with pytest.raises(ValueError, match="holds no \\*.parquet file"):
        ParquetSource(tmp_path, targets="t").num_rows()


def test_partial_fit_continues_on_a_source_and_gate_weights_read_it(parquet):
    frame, path = parquet
    source = ParquetSource(path, targets=TARGETS, categorical=["user_id"])
    model = MMoERegressorClassifier(max_epochs=1, early_stopping=False, random_state=0, n_experts=3)
    model.fit(source).partial_fit(source)
    assert model.n_iter_ == 2
    weights = model.gate_weights(source)
    assert weights.shape == (len(frame), 2, 3)
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, rtol=1e-5)
