"""skorch's hooks: how the optimizer is built and stepped, here for a large categorical
table, which trains with sparse gradients and its own lazy Adam step."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.callbacks import LRScheduler

from sk_mmoe import MMoERegressorClassifier, load_model, save_model
from sk_mmoe import _embeddings as embeddings

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = dict(n_experts=2, expert_layer_sizes=(8,), tower_layer_sizes=(4,), gate_dropout=0.0,
              early_stopping=False, random_state=0)


def id_frame(n=240, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    X["user"] = pd.Categorical(rng.randint(40, size=n).astype(str))
    X["plan"] = pd.Categorical(rng.choice(["basic", "pro"], size=n))
    y = pd.DataFrame({"spend": X["a"] + X["user"].cat.codes / 40, "churn": X["b"] > 0})
    return X, y


@pytest.fixture
def sparse_tables(monkeypatch):
    """Every categorical table counts as large."""
    monkeypatch.setattr(embeddings, "MIN_SPARSE_TABLE_ROWS", 1)


def table(model):
    return model.module_.embedding.categories.weight.detach().clone()


def test_a_small_table_stays_in_the_one_optimizer():
    X, y = id_frame()
    model = MMoERegressorClassifier(**PARAMS, max_epochs=1).fit(X, y)
    assert not model.module_.embedding.categories.sparse
    assert "sparse_optimizer_" not in vars(model)
    n_params = sum(len(group["params"]) for group in model.optimizer_.param_groups)
    assert n_params == len(list(model.get_all_learnable_params()))


def test_the_sparse_table_takes_the_dense_tables_first_step(monkeypatch):
    X, y = id_frame()
    # SparseAdam adds eps to the uncorrected sqrt(v) (so it weighs ~30x more on the first
    # step than in Adam): a tiny eps leaves both at lr * g / |g|. SparseAdam has no weight
    # decay, so none for Adam either (a fit this small would get the small tables' decay;
    # a real sparse table needs 50,000 levels, which no fit under 1,000 rows has).
    one_step = dict(PARAMS, max_epochs=1, batch_size=-1, optimizer__eps=1e-12,
                    optimizer__weight_decay=0.0)
    dense = MMoERegressorClassifier(**one_step).fit(X, y)
    monkeypatch.setattr(embeddings, "MIN_SPARSE_TABLE_ROWS", 1)
    sparse = MMoERegressorClassifier(**one_step).fit(X, y)
    assert sparse.module_.embedding.categories.sparse
    assert isinstance(sparse.sparse_optimizer_, torch.optim.SparseAdam)
    # The user's Adam has every other parameter; SparseAdam the table alone.
    table_param = sparse.module_.embedding.categories.weight
    assert all(p is not table_param for g in sparse.optimizer_.param_groups for p in g["params"])
    # Adam's first step moves a row by lr * sign(gradient) in both: to float noise.
    torch.testing.assert_close(table(sparse), table(dense), rtol=0, atol=1e-6)
    for (name, p), q in zip(sparse.module_.named_parameters(), dense.module_.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
    assert sparse.history_[0, "train_loss"] == pytest.approx(dense.history_[0, "train_loss"], rel=1e-6)


def test_only_the_rows_a_batch_touches_change(sparse_tables):
    X, y = id_frame()
    model = MMoERegressorClassifier(**PARAMS, max_epochs=2, batch_size=-1).fit(X, y)
    before = table(model)
    # One more step on rows of two users only.
    rows = X["user"].isin(["3", "7"]).to_numpy()
    model.set_params(max_epochs=1).partial_fit(X[rows], y[rows])
    changed = (table(model) != before).any(dim=1)
    encoder = model._feature_encoder
    offsets = model.module_.embedding.category_offsets
    user_levels = list(encoder.categories_[0])
    touched = {int(offsets[0]) + 2 + user_levels.index(level) for level in ("3", "7")}
    touched |= {int(offsets[1]) + 2 + list(encoder.categories_[1]).index(level)
                for level in X.loc[rows, "plan"].unique()}
    assert set(torch.nonzero(changed).flatten().tolist()) == touched


def test_learning_rate_changes_and_schedules_reach_the_table(sparse_tables):
    X, y = id_frame()
    model = MMoERegressorClassifier(**PARAMS, max_epochs=2, lr=0.01).fit(X, y)
    assert model.sparse_optimizer_.param_groups[0]["lr"] == pytest.approx(0.01)
    model.set_params(lr=0.003).partial_fit(X, y)
    assert model.sparse_optimizer_.param_groups[0]["lr"] == pytest.approx(0.003)
    schedule = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    scheduled = MMoERegressorClassifier(**PARAMS, max_epochs=3, lr=0.01,
                                        callbacks=[schedule]).fit(X, y)
    # The table stepped at the rate of its epoch (the last epoch's: 0.01 / 4).
    assert scheduled.sparse_optimizer_.param_groups[0]["lr"] == pytest.approx(0.0025)


def test_other_optimizers_keep_their_meaning_for_the_dense_parameters(sparse_tables):
    X, y = id_frame()
    model = MMoERegressorClassifier(**PARAMS, max_epochs=3, optimizer=torch.optim.SGD,
                                    optimizer__momentum=0.9, optimizer__weight_decay=1e-3,
                                    lr=0.05).fit(X, y)
    assert isinstance(model.optimizer_, torch.optim.SGD)
    assert model.optimizer_.param_groups[0]["momentum"] == 0.9
    assert np.isfinite(model.history_[:, "train_loss"]).all()
    betas = MMoERegressorClassifier(**PARAMS, max_epochs=1, optimizer__betas=(0.8, 0.9))
    assert betas.fit(X, y).sparse_optimizer_.param_groups[0]["betas"] == (0.8, 0.9)


def test_a_new_fit_with_a_small_table_drops_the_sparse_step(monkeypatch):
    X, y = id_frame()
    monkeypatch.setattr(embeddings, "MIN_SPARSE_TABLE_ROWS", 1)
    model = MMoERegressorClassifier(**PARAMS, max_epochs=1).fit(X, y)
    assert "sparse_optimizer_" in vars(model)
    monkeypatch.setattr(embeddings, "MIN_SPARSE_TABLE_ROWS", 10**9)
    model.fit(X, y)
    assert "sparse_optimizer_" not in vars(model)
    model.partial_fit(X, y)  # skorch steps the one optimizer left


def test_the_sparse_step_travels_with_save_model_pickle_and_warm_start(sparse_tables, tmp_path):
    X, y = id_frame()
    model = MMoERegressorClassifier(**PARAMS, max_epochs=2).fit(X, y)
    save_model(model, tmp_path / "m")
    restored = load_model(tmp_path / "m")
    pickled = pickle.loads(pickle.dumps(model))
    for copy in (restored, pickled):
        torch.testing.assert_close(copy.sparse_optimizer_.state_dict()["state"],
                                   model.sparse_optimizer_.state_dict()["state"])
    # One more epoch on each: the same network (the lazy Adam moments travelled).
    model.set_params(warm_start=True).fit(X, y)
    for copy in (restored, pickled):
        copy.set_params(warm_start=True).fit(X, y)
        pd.testing.assert_frame_equal(copy.predict(X), model.predict(X))
