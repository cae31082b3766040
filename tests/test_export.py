"""sk_mmoe.export: onnxruntime on the exported graph gives what predict and predict_proba give."""

import datetime
import json
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from sk_mmoe import MMoERegressorClassifier, export_onnx, load_model, onnx_inputs, save_model
from sk_mmoe._embeddings import MAX_DENSIFIED_BATCH
from sk_mmoe.tasks import Quantile, Regression, Tweedie

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
TINY = dict(n_experts=3, expert_layer_sizes=(16,), tower_layer_sizes=(8,), max_epochs=3,
            batch_size=64, random_state=0)


def _frame_data(n=360, seed=0):
    """Numeric columns with NaN, a bool column, string and category columns with missing
    values; a regression, a binary (bool) and a 3-class (str) target."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({
        "age": rng.normal(40, 12, n),
        "plan": rng.choice(["basic", "plus", "pro"], n).astype(object),
        "visits": rng.poisson(3.0, n).astype(float),
        "member": rng.rand(n) < 0.3,
        "region": pd.Categorical(rng.choice(["north", "south", "east", None], n)),
        "tier": pd.Categorical(rng.choice([1, 2, 3], n)),
    })
    X.loc[rng.rand(n) < 0.1, "age"] = np.nan
    X.loc[rng.rand(n) < 0.05, "plan"] = None
    y = pd.DataFrame({
        "value": 20.0 * X["visits"] + 50.0 * (X["plan"] == "pro") + rng.normal(0, 5, n),
        "churned": X["visits"] + rng.normal(0, 1, n) < 2,
        "segment": np.where(X["visits"] < 2, "rare", np.where(X["visits"] < 5, "regular", "loyal")),
    })
    return X, y


def _held_out(X):
    """The last 100 rows, with levels unseen at fit, missing levels and NaN in them."""
    test = X.iloc[-100:].copy()
    test["plan"] = test["plan"].astype(object)
    test.iloc[:4, test.columns.get_loc("plan")] = "enterprise"
    test.iloc[4:8, test.columns.get_loc("plan")] = None
    test["region"] = test["region"].cat.add_categories(["west"])
    test.iloc[8:12, test.columns.get_loc("region")] = "west"
    test.iloc[12:16, test.columns.get_loc("age")] = np.nan
    return test


def _run(path, inputs):
    session = onnxruntime.InferenceSession(str(path))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def _assert_matches(model, X, outputs):
    """onnxruntime's outputs equal predict / predict_proba, task by task."""
    predicted = model.predict(X)
    probas = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    if probas is not None and not isinstance(probas, list):
        probas = [probas]  # a single task's array
    for t, (name, kind) in enumerate(zip(model.task_names_, model.task_types_)):
        if isinstance(predicted, pd.DataFrame):
            expected = predicted[name].to_numpy()
        else:
            expected = predicted[:, t] if predicted.ndim == 2 else predicted
        if kind not in ("binary", "multiclass"):
            np.testing.assert_allclose(outputs[str(name)], expected, **TOLERANCE)
            assert f"{name}_proba" not in outputs
        else:
            assert outputs[str(name)].tolist() == expected.tolist()
            np.testing.assert_allclose(outputs[f"{name}_proba"], probas[t], **TOLERANCE)


@pytest.fixture(scope="module")
def frame_model():
    X, y = _frame_data()
    return MMoERegressorClassifier(**TINY).fit(X.iloc[:-100], y.iloc[:-100]), _held_out(X)


@pytest.mark.parametrize("architecture", ["mmoe", "omoe", "shared_bottom", "cgc", "ple"])
def test_onnx_equals_predict_for_every_architecture(architecture, tmp_path):
    X, y = _frame_data()
    # Under 1,000 rows "auto" means no embedding: ask for it, so that the export covers it.
    model = MMoERegressorClassifier(architecture=architecture, n_levels=2,
                                    numeric_embedding="piecewise_linear", **TINY)
    model.fit(X.iloc[:-100], y.iloc[:-100])
    assert model._feature_encoder.numeric_embedding_ == "piecewise_linear"
    test = _held_out(X)
    before = model.predict(test)
    export_onnx(model, tmp_path / "model.onnx")
    _assert_matches(model, test, _run(tmp_path / "model.onnx", onnx_inputs(model, test)))
    pd.testing.assert_frame_equal(model.predict(test), before)  # the model is left as it was


@pytest.mark.parametrize("numeric_embedding", ["periodic", None])
def test_onnx_equals_predict_with_other_numeric_embeddings(numeric_embedding, tmp_path):
    X, y = _frame_data(seed=1)
    model = MMoERegressorClassifier(numeric_embedding=numeric_embedding, **TINY)
    model.fit(X.iloc[:-100], y.iloc[:-100])
    test = _held_out(X)
    export_onnx(model, tmp_path / "model.onnx")
    _assert_matches(model, test, _run(tmp_path / "model.onnx", onnx_inputs(model, test)))


def test_inputs_a_serving_client_writes_by_hand(frame_model, tmp_path):
    """One input per column, named after it: double numbers (bool as 0/1, NaN missing),
    the strings of categorical levels ("" missing, anything else unseen at fit). A model
    read back by load_model exports the same graph."""
    model, _ = frame_model
    save_model(model, tmp_path / "model.skmmoe")
    export_onnx(load_model(tmp_path / "model.skmmoe"), tmp_path / "model.onnx")
    rows = pd.DataFrame({
        "age": [35.0, np.nan, 61.0], "plan": ["pro", None, "enterprise"],
        "visits": [4.0, 0.0, 9.0], "member": [True, False, True],
        "region": pd.Categorical(["north", None, "south"]), "tier": pd.Categorical([3, 1, 2]),
    })
    by_hand = {
        "age": np.array([35.0, np.nan, 61.0]), "plan": np.array(["pro", "", "enterprise"], dtype=object),
        "visits": np.array([4.0, 0.0, 9.0]), "member": np.array([1.0, 0.0, 1.0]),
        "region": np.array(["north", "", "south"], dtype=object), "tier": np.array(["3", "1", "2"], dtype=object),
    }
    helper = onnx_inputs(model, rows)
    assert list(helper) == list(by_hand)  # X's column order
    for name, values in by_hand.items():
        assert helper[name].dtype == values.dtype
        np.testing.assert_array_equal(helper[name], values)
    _assert_matches(model, rows, _run(tmp_path / "model.onnx", by_hand))
    one_row = {name: values[:1] for name, values in by_hand.items()}
    _assert_matches(model, rows.iloc[:1], _run(tmp_path / "model.onnx", one_row))


def test_graph_types_and_metadata(frame_model, tmp_path):
    model, _ = frame_model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing for the user to act on
        exported = export_onnx(model, tmp_path / "model.onnx", missing_category="<NA>")
    onnx.checker.check_model(str(tmp_path / "model.onnx"))
    assert sorted(o.domain for o in exported.opset_import) == ["", "ai.onnx.ml"]  # each once
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    assert {i.name: i.type for i in session.get_inputs()} == {
        "age": "tensor(double)", "plan": "tensor(string)", "visits": "tensor(double)",
        "member": "tensor(double)", "region": "tensor(string)", "tier": "tensor(string)",
    }
    assert [(o.name, o.type) for o in session.get_outputs()] == [
        ("value", "tensor(double)"), ("churned", "tensor(bool)"), ("churned_proba", "tensor(double)"),
        ("segment", "tensor(string)"), ("segment_proba", "tensor(double)"),
    ]
    meta = json.loads({p.key: p.value for p in exported.metadata_props}["sk_mmoe"])
    assert meta["missing_category"] == "<NA>"
    assert meta["inputs"][1] == {"name": "plan", "kind": "categorical", "levels": ["basic", "plus", "pro"]}
    assert meta["inputs"][5]["levels"] == ["1", "2", "3"]
    assert meta["outputs"][2] == {"task": "segment", "kind": "multiclass", "spec": "Multiclass()",
                                  "prediction": "segment",
                                  "probabilities": "segment_proba", "classes": ["loyal", "rare", "regular"]}
    rows = pd.DataFrame({"age": [30.0], "plan": [None], "visits": [2.0], "member": [False],
                         "region": pd.Categorical([None]), "tier": pd.Categorical([1])})
    inputs = onnx_inputs(model, rows, missing_category="<NA>")
    assert inputs["plan"].tolist() == ["<NA>"]
    _assert_matches(model, rows, _run(tmp_path / "model.onnx", inputs))


def test_array_model_has_one_matrix_input_and_keeps_label_types(tmp_path):
    rng = np.random.RandomState(2)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=300), [-0.5, 0.5])  # ints 0, 1, 2
    X[rng.rand(*X.shape) < 0.08] = np.nan
    model = MMoERegressorClassifier(tasks="multiclass", **TINY).fit(X[:200], y[:200])
    export_onnx(model, tmp_path / "model.onnx")
    inputs = onnx_inputs(model, X[200:])
    assert list(inputs) == ["X"] and inputs["X"].shape == (100, 4)
    outputs = _run(tmp_path / "model.onnx", inputs)
    assert outputs["0"].dtype == np.int64
    _assert_matches(model, X[200:], outputs)


def test_every_task_kind_exports_through_its_own_link(tmp_path):
    rng = np.random.RandomState(4)
    X = rng.normal(size=(300, 3))
    mean = np.exp(0.5 * X[:, 0])
    y = pd.DataFrame({
        "visits": rng.poisson(mean), "cost": rng.gamma(2.0, mean), "claims": rng.poisson(mean) * rng.gamma(2.0, 1.0, 300),
        "robust": X[:, 1] + rng.standard_t(2, 300), "median": X[:, 2] + rng.normal(size=300),
        "upper": X[:, 1] + rng.normal(size=300), "plain": X[:, 0] + X[:, 2],
    })
    kinds = {"visits": "poisson", "cost": "gamma", "claims": Tweedie(1.5), "robust": "huber",
             "median": "absolute_error", "upper": Quantile(0.9), "plain": "regression"}
    model = MMoERegressorClassifier(tasks=kinds, **TINY).fit(X[:200], y[:200])
    export_onnx(model, tmp_path / "model.onnx")
    outputs = _run(tmp_path / "model.onnx", onnx_inputs(model, X[200:]))
    assert list(outputs) == list(kinds)  # quantities: no _proba output
    _assert_matches(model, X[200:], outputs)
    assert (outputs["visits"] > 0).all()  # the log link, in the graph


def test_columns_without_string_names_are_x0_x1():
    X = pd.DataFrame({0: np.arange(60.0), 1: pd.Categorical(["a", "b", None] * 20)})
    model = MMoERegressorClassifier(**TINY).fit(X, np.arange(60.0))
    inputs = onnx_inputs(model, X.iloc[:3])
    assert list(inputs) == ["x0", "x1"]
    assert inputs["x1"].tolist() == ["a", "b", ""]


@pytest.mark.parametrize("n_columns", [30, 2_000])
def test_sparse_X_enters_dense(n_columns, tmp_path):
    """Small sparse batches are densified by predict; a batch of 2,200 rows x 2,000 columns
    (beyond MAX_DENSIFIED_BATCH) goes through predict's sparse path (x / scale - shift),
    which the dense graph matches too."""
    rng = np.random.RandomState(3)
    n_rows = 200 + (100 if n_columns < 100 else 2_200)
    dense = rng.normal(size=(n_rows, n_columns)) * (rng.rand(n_rows, n_columns) < 0.05)
    dense[rng.rand(n_rows, n_columns) < 0.01] = np.nan
    X = sp.csr_matrix(dense)
    y = np.column_stack([np.nansum(dense[:, :10], axis=1), (np.nan_to_num(dense[:, 2]) > 0).astype(float)])
    model = MMoERegressorClassifier(**{**TINY, "batch_size": 4096}).fit(X[:200], y[:200])
    assert model.task_types_ == ["regression", "binary"]
    assert (n_rows - 200) * n_columns > MAX_DENSIFIED_BATCH or n_columns < 100
    export_onnx(model, tmp_path / "model.onnx")
    inputs = onnx_inputs(model, X[200:])
    np.testing.assert_array_equal(inputs["X"], dense[200:].astype(np.float32))
    outputs = _run(tmp_path / "model.onnx", inputs)
    assert outputs["1"].dtype == np.float64  # the classes 0.0 and 1.0, as predict gives them
    _assert_matches(model, X[200:], outputs)


def test_unfitted_model_and_other_objects_are_refused(tmp_path):
    with pytest.raises(NotFittedError):
        export_onnx(MMoERegressorClassifier(), tmp_path / "model.onnx")
    with pytest.raises(NotFittedError):
        onnx_inputs(MMoERegressorClassifier(), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="fitted MMoERegressorClassifier; got LinearRegression"):
        from sklearn.linear_model import LinearRegression

        export_onnx(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), tmp_path / "model.onnx")
    with pytest.raises(TypeError, match=r"got Pipeline\. For a Pipeline, export its last step"):
        export_onnx(make_pipeline(MMoERegressorClassifier()), tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_what_has_no_onnx_form_is_refused_by_name(frame_model, tmp_path):
    model, _ = frame_model
    with pytest.raises(ValueError, match=r"X column 'plan' has a level 'pro', which is the missing_category"):
        export_onnx(model, tmp_path / "model.onnx", missing_category="pro")
    with pytest.raises(TypeError, match="missing_category must be a str; got None"):
        export_onnx(model, tmp_path / "model.onnx", missing_category=None)

    X = pd.DataFrame({"code": pd.Series([1, "1", "a", 2] * 25, dtype=object), "x": np.arange(100.0)})
    mixed = MMoERegressorClassifier(**TINY).fit(X, np.arange(100.0))
    with pytest.raises(ValueError, match=r"X column 'code': levels 1 and '1' are both '1' as strings"):
        export_onnx(mixed, tmp_path / "model.onnx")

    y = pd.DataFrame({"x": np.arange(100.0), "a": np.arange(100.0)})
    clash = MMoERegressorClassifier(**TINY).fit(X[["x"]], y)
    with pytest.raises(ValueError, match=r"ONNX output 'x' of task 'x' would have the name of another"):
        export_onnx(clash, tmp_path / "model.onnx")

    # Labels that are neither str nor numbers (bytes are refused at fit, as scikit-learn does).
    labels = pd.Series([datetime.date(2026, 1, 1), datetime.date(2026, 6, 1)] * 50)
    date_labels = MMoERegressorClassifier(early_stopping=False, **TINY).fit(X[["x"]], labels)
    with pytest.raises(ValueError, match=r"class labels of dtype .* which have no ONNX tensor type"):
        export_onnx(date_labels, tmp_path / "model.onnx")

    class Rounded(Regression):
        def decode(self, predicted):
            return np.round(predicted)

    rounded = MMoERegressorClassifier(tasks=Rounded(), **TINY).fit(X[["x"]], np.arange(100.0))
    with pytest.raises(ValueError, match=r"turns its predictions into labels in Python \(Rounded.decode\)"):
        export_onnx(rounded, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_missing_exporter_names_the_extra(frame_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"onnxscript is missing.*pip install 'sk-mmoe\[onnx\]'"):
        export_onnx(frame_model[0], tmp_path / "model.onnx")
