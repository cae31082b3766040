"""save_model / load_model: a fresh-process round trip, and tampered files refused safely."""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

from sk_mmoe import MMoERegressorClassifier, load_model, save_model

TINY = dict(n_experts=2, expert_layer_sizes=(8,), tower_layer_sizes=(4,), max_epochs=3, random_state=0)


def mixed_frame(n=80, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    # Raw columns the feature encoder learns: categories, strings, missing values.
    X["plan"] = pd.Categorical(rng.choice(["basic", "plus", "pro"], size=n))
    X["city"] = rng.choice(["Oslo", "Lima", None], size=n)
    X.loc[::7, "d"] = np.nan
    y = pd.DataFrame(
        {
            "amount": 1000 * X["a"] + 50,  # far from 0 and 1: scaling must travel
            "churn": np.where(X["b"] > 0, "yes", "no"),
            "segment": rng.randint(3, size=n),
            "tier": pd.Categorical(rng.choice(["gold", "silver"], size=n)),
            "flag": X["c"] > 0,
        }
    )
    return X, y


@pytest.fixture
def saved(tmp_path):
    X, y = mixed_frame()
    model = MMoERegressorClassifier(**TINY, optimizer__weight_decay=0.01).fit(X, y)
    path = tmp_path / "model.skmmoe"
    save_model(model, path)
    return model, path, X, y


def test_round_trip_in_a_fresh_process(saved, tmp_path):
    model, path, X, _ = saved
    X.iloc[0, X.columns.get_loc("city")] = "Quito"  # a level unseen at fit
    X.to_pickle(tmp_path / "X.pkl")
    script = (
        "import sys, pickle, pandas as pd\n"
        "from sk_mmoe import load_model\n"
        "model = load_model(sys.argv[1])\n"
        "X = pd.read_pickle(sys.argv[2])\n"
        "out = (model.predict(X), model.predict_proba(X), model.gate_weights(X),\n"
        "       model.get_params(deep=False)['tower_layer_sizes'], model.n_iter_)\n"
        "sys.stdout.buffer.write(pickle.dumps(out))\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "X.pkl")],
        capture_output=True, env=env, check=True,
    )
    import pickle

    pred, proba, gates, towers, n_iter = pickle.loads(done.stdout)
    # Same values in the caller's label space, with the same dtypes (category included).
    pd.testing.assert_frame_equal(pred, model.predict(X))
    for p, q in zip(proba, model.predict_proba(X)):
        assert (p is None and q is None) or np.array_equal(p, q)
    np.testing.assert_array_equal(gates, model.gate_weights(X))
    assert towers == (4,) and n_iter == 3


def test_loaded_model_keeps_fitted_attributes_and_continues_training(saved):
    model, path, X, y = saved
    restored = load_model(path)
    assert restored.task_names_ == model.task_names_
    assert restored.task_types_ == model.task_types_
    for a, b in zip(restored.classes_, model.classes_):
        assert (a is None and b is None) or (a.dtype == b.dtype and list(a) == list(b))
    assert list(restored.feature_names_in_) == ["a", "b", "c", "d", "plan", "city"]
    assert restored.get_params(deep=False) == model.get_params(deep=False)
    assert restored.history_[:, "train_loss"] == model.history_[:, "train_loss"]
    # Optimizer state travels too: one more epoch on each gives the same network.
    restored.partial_fit(X, y)
    model.partial_fit(X, y)
    pd.testing.assert_frame_equal(restored.predict(X), model.predict(X))


def test_small_table_weight_decay_travels_with_the_optimizer(tmp_path):
    X, y = mixed_frame()  # 80 rows: fit trains the default Adam with decoupled decay
    model = MMoERegressorClassifier(**TINY).fit(X, y)
    save_model(model, tmp_path / "m")
    restored = load_model(tmp_path / "m")
    group = restored.optimizer_.param_groups[0]
    assert group["weight_decay"] == 2.0 and group["decoupled_weight_decay"]
    restored.partial_fit(X, y)
    model.partial_fit(X, y)
    pd.testing.assert_frame_equal(restored.predict(X), model.predict(X))


def test_round_trip_with_piecewise_linear_embeddings(tmp_path):
    X, y = mixed_frame()
    model = MMoERegressorClassifier(**TINY, numeric_embedding="piecewise_linear").fit(X, y)
    save_model(model, tmp_path / "m")
    pd.testing.assert_frame_equal(load_model(tmp_path / "m").predict(X), model.predict(X))


def test_round_trip_of_a_model_fitted_on_sparse_X(tmp_path):
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = sp.random(80, 30, density=0.2, format="csr", random_state=rng)
    X.data[::5] = np.nan
    y = np.asarray(np.nan_to_num(X[:, :3].toarray()).sum(axis=1)).ravel()
    model = MMoERegressorClassifier(**TINY).fit(X, y)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict(X.toarray()), model.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", ["1d", "2d", "series"])
def test_round_trip_keeps_the_output_form(tmp_path, layout):
    X, y = mixed_frame()
    target = {"1d": y["segment"].to_numpy(), "2d": y[["amount", "segment"]].to_numpy(),
              "series": y["churn"]}[layout]
    X = X[["a", "b", "c"]].to_numpy()
    model = MMoERegressorClassifier(**TINY).fit(X, target)
    save_model(model, tmp_path / "m")
    restored = load_model(tmp_path / "m")
    expected, got = model.predict(X), restored.predict(X)
    assert type(got) is type(expected)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def rewrite(path, member, transform):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[member] = transform(members[member])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def edit_json(edit):
    def transform(data):
        document = json.loads(data)
        edit(document)
        return json.dumps(document).encode()

    return transform


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format_version=99), "format version 99"),
        (lambda d: d.update(format="something else"), "no 'sk-mmoe model' marker"),
        (lambda d: d["components"]["_target_encoder"]["task_states"][0]["fitted"].update(scale=-1.0),
         "task 'amount' has an invalid stored state"),
        (lambda d: d["components"]["_target_encoder"]["task_states"][1]["fitted"].update(classes="os.system"),
         "task 'churn' has an invalid stored state"),
        (lambda d: d["components"]["_target_encoder"]["task_states"][1].update(task={"task": "os.system", "params": {}}),
         "unknown task kind 'os.system'"),
        (lambda d: d["params"].update(optimizer={"torch_optimizer": "__loader__"}),
         "'__loader__' is not an optimizer in torch.optim"),
        (lambda d: d["params"].update(n_expert=4), "n_expert"),
        (lambda d: d["fitted"].update(n_features_in_=5), "size mismatch|does not match"),
        (lambda d: d["components"]["_feature_encoder"].pop("categories_"), "feature encoding"),
        (lambda d: d["components"]["_feature_encoder"].update(__class__=1), "unexpected field"),
    ],
)
def test_tampered_json_is_refused(saved, edit, message):
    _, path, _, _ = saved
    rewrite(path, "model.json", edit_json(edit))
    with pytest.raises((ValueError, TypeError), match=message):
        load_model(path)


def test_non_json_and_non_zip_are_refused(saved, tmp_path):
    _, path, _, _ = saved
    rewrite(path, "model.json", lambda data: data[:-10])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(path)
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not an sk-mmoe model file"):
        load_model(tmp_path / "plain.txt")


class _Payload:
    # Unpickling this calls os.system, which would create the marker file.
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_smuggled_into_the_weights_runs_nothing(saved, tmp_path):
    _, path, _, _ = saved
    marker = tmp_path / "executed"

    def smuggle(data):
        buffer = io.BytesIO()
        torch.save({"module": _Payload(marker), "optimizer": {}}, buffer)
        return buffer.getvalue()

    rewrite(path, "weights.pt", smuggle)
    with pytest.raises(ValueError, match="weights.pt holds something other than tensors"):
        load_model(path)
    assert not marker.exists()


def test_unstorable_parameters_are_refused_at_save(tmp_path):
    from skorch.callbacks import EarlyStopping

    # Learning-rate schedules are stored (tests/test_schedules.py); other callbacks are not.
    X, y = mixed_frame()
    model = MMoERegressorClassifier(**TINY, callbacks=[("stop", EarlyStopping(monitor="train_loss"))]).fit(X, y["amount"])
    with pytest.raises(TypeError, match="parameter 'callbacks': cannot store a skorch"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_save_before_fit(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(MMoERegressorClassifier(), tmp_path / "m")


def test_load_on_another_device(saved):
    _, path, X, _ = saved
    assert load_model(path, device="cpu").predict(X).shape == (80, 5)


@pytest.mark.parametrize("method", ["save_params", "load_params"])
def test_skorch_params_files_point_to_the_supported_way(saved, tmp_path, method):
    model = saved[0]
    with pytest.raises(NotImplementedError, match=r"sk_mmoe.save_model\(model, path\)"):
        getattr(model, method)(f_params=tmp_path / "weights.pt")


def test_initialize_before_fit_says_to_fit():
    with pytest.raises(NotFittedError, match=r"call fit\(X, y\)"):
        MMoERegressorClassifier().initialize()


def test_task_scoring_and_class_weights_are_saved(tmp_path):
    from sk_mmoe import make_task_scorer

    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3))
    y = pd.DataFrame({"churn": X[:, 0] > 0.5, "spend": X[:, 1]})
    model = MMoERegressorClassifier(
        n_experts=2, max_epochs=2, random_state=0, early_stopping=True,
        scoring=make_task_scorer("churn", "roc_auc"), class_weight={"churn": {True: 2.0}},
    ).fit(X, y)
    save_model(model, tmp_path / "m.skmmoe")
    restored = load_model(tmp_path / "m.skmmoe")
    assert repr(restored.scoring) == "make_task_scorer('churn', 'roc_auc')"
    assert restored.class_weight == {"churn": {True: 2.0}}
    restored.partial_fit(X, y)  # continues with the same stopping rule and weights
    assert "valid_score" in restored.history_[-1]
