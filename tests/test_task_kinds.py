"""The task kinds of sk_mmoe.tasks: losses against scikit-learn's references, links, what each
kind accepts, and models that learn what their loss is for."""

import ast
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

import sk_mmoe
from sk_mmoe import MMoERegressorClassifier, load_model, save_model
from sk_mmoe.tasks import (
    TASK_KINDS,
    AbsoluteError,
    Gamma,
    Huber,
    Poisson,
    Quantile,
    Regression,
    Tweedie,
    get_task,
)

SMALL = dict(n_experts=2, expert_layer_sizes=(16,), tower_layer_sizes=(8,), random_state=0)


def _fit(task, y):
    return task.fit("y", pd.Series(y))


def _rows(task, y, raw):
    """Per-row loss of ``raw`` outputs against ``y`` as the task encodes it."""
    encoded = torch.from_numpy(task.encode(pd.Series(y)))
    return task.loss(torch.as_tensor(raw, dtype=torch.float32)[:, None], encoded).double().numpy()


def _prediction(task, raw):
    return task.predict_raw(torch.as_tensor(raw, dtype=torch.float32)[:, None]).numpy()


RNG = np.random.RandomState(0)
COUNTS = np.array([0.0, 1, 3, 0, 7, 2, 1, 12])
AMOUNTS = np.array([0.5, 3.2, 10.0, 1.1, 0.2, 7.7, 2.4, 5.0])
RAW = RNG.normal(scale=0.7, size=8)


def test_poisson_loss_is_half_the_deviance_up_to_a_constant_of_y():
    task = _fit(Poisson(), COUNTS)
    mean = COUNTS.mean()
    scaled = COUNTS / mean
    constant = np.where(scaled > 0, scaled * np.log(np.where(scaled > 0, scaled, 1)), 0) - scaled
    deviance = skm.mean_poisson_deviance(COUNTS, _prediction(task, RAW))
    np.testing.assert_allclose(deviance, 2 * mean * np.mean(_rows(task, COUNTS, RAW) + constant), rtol=1e-5)


def test_gamma_loss_is_half_the_deviance_up_to_a_constant_of_y():
    task = _fit(Gamma(), AMOUNTS)
    scaled = AMOUNTS / AMOUNTS.mean()
    deviance = skm.mean_gamma_deviance(AMOUNTS, _prediction(task, RAW))
    np.testing.assert_allclose(deviance, 2 * np.mean(_rows(task, AMOUNTS, RAW) - np.log(scaled) - 1), rtol=1e-5)


@pytest.mark.parametrize("power", [1.2, 1.5, 1.8])
def test_tweedie_loss_is_half_the_deviance_up_to_a_constant_of_y(power):
    y = np.r_[0.0, 0.0, AMOUNTS]
    raw = np.r_[0.3, -0.2, RAW]
    task = _fit(Tweedie(power=power), y)
    mean = y.mean()
    constant = (y / mean) ** (2 - power) / ((1 - power) * (2 - power))
    deviance = skm.mean_tweedie_deviance(y, _prediction(task, raw), power=power)
    expected = 2 * mean ** (2 - power) * np.mean(_rows(task, y, raw) + constant)
    np.testing.assert_allclose(deviance, expected, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_quantile_loss_is_the_pinball_loss_in_the_targets_robust_unit(alpha):
    task = _fit(Quantile(alpha), AMOUNTS)
    pinball = skm.mean_pinball_loss(AMOUNTS, _prediction(task, RAW), alpha=alpha)
    np.testing.assert_allclose(pinball, task.scale_ * np.mean(_rows(task, AMOUNTS, RAW)), rtol=1e-5)
    assert task.location_ == pytest.approx(np.median(AMOUNTS))
    q25, q75 = np.percentile(AMOUNTS, [25, 75])
    assert task.scale_ == pytest.approx((q75 - q25) / 1.349)


def test_absolute_error_and_huber_losses():
    task = _fit(AbsoluteError(), AMOUNTS)
    mae = skm.mean_absolute_error(AMOUNTS, _prediction(task, RAW))
    np.testing.assert_allclose(mae, task.scale_ * np.mean(_rows(task, AMOUNTS, RAW)), rtol=1e-5)
    huber = _fit(Huber(delta=0.5), AMOUNTS)
    residual = np.abs(huber.encode(pd.Series(AMOUNTS)) - RAW.astype(np.float32))
    expected = np.where(residual <= 0.5, 0.5 * residual**2, 0.5 * (residual - 0.25))
    np.testing.assert_allclose(_rows(huber, AMOUNTS, RAW), expected, rtol=1e-5)


def test_log_link_predictions_are_positive_and_start_at_the_mean():
    for task in (Poisson(), Gamma(), Tweedie(1.3)):
        fitted = _fit(task, AMOUNTS)
        assert (_prediction(fitted, np.array([-30.0, 0.0, 5.0])) > 0).all()
        assert _prediction(fitted, np.zeros(1))[0] == pytest.approx(AMOUNTS.mean())


@pytest.mark.parametrize(
    "task, values, message",
    [
        (Poisson(), [1.0, -1.0, 2.0], r"'y' holds -1; a poisson task needs non-negative values"),
        (Gamma(), [1.0, 0.0, 2.0], r"'y' holds 0; a gamma task needs positive values \(> 0\)"),
        (Tweedie(1.5), [0.0, 0.0], r"'y' has mean 0; a tweedie task needs a positive mean"),
        (Poisson(), ["a", "b"], r"'y' is set to 'poisson' but its column holds non-numeric"),
    ],
)
def test_values_outside_a_kinds_support_are_refused_naming_the_column(task, values, message):
    with pytest.raises(ValueError, match=message):
        _fit(task, values)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Tweedie(power=2.0), r"Tweedie: power must be in \(1, 2\); got 2.0. Use 'poisson'"),
        (lambda: Quantile(alpha=1.5), r"Quantile: alpha must be in \(0, 1\); got 1.5"),
        (lambda: Huber(delta=0), r"Huber: delta must be a positive number; got 0"),
    ],
)
def test_invalid_task_parameters_are_refused_at_fit(make, message):
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match=message):
        MMoERegressorClassifier(tasks=make(), max_epochs=1).fit(X, np.arange(10.0))


def test_tasks_take_names_and_objects_and_leave_the_given_objects_unfitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    y = pd.DataFrame({"n": rng.poisson(2, size=120), "q": X[:, 0], "c": rng.randint(2, size=120)})
    upper = Quantile(0.8)
    model = MMoERegressorClassifier(
        **SMALL, max_epochs=2, tasks={"n": "poisson", "q": upper, "c": "binary"}
    ).fit(X, y)
    assert model.tasks_ == [Poisson(), Quantile(0.8), TASK_KINDS["binary"]()]
    assert model.task_types_ == ["poisson", "quantile", "binary"]
    assert model.classes_[0] is None and model.classes_[2].tolist() == [0, 1]
    assert not hasattr(upper, "name_") and model.tasks_[1] is not upper
    assert repr(model.tasks_[1]) == "Quantile(alpha=0.8)"


def test_task_objects_survive_save_load_and_clone(tmp_path):
    from sklearn.base import clone

    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    y = pd.DataFrame({"amount": rng.gamma(2.0, size=80) * (rng.rand(80) < 0.6), "q": X[:, 1]})
    model = MMoERegressorClassifier(
        **SMALL, max_epochs=2, tasks={"amount": Tweedie(power=1.4), "q": Quantile(0.25)}
    ).fit(X, y)
    save_model(model, tmp_path / "m.skmmoe")
    restored = load_model(tmp_path / "m.skmmoe")
    assert restored.tasks_ == model.tasks_ and restored.get_params()["tasks"] == model.tasks
    pd.testing.assert_frame_equal(restored.predict(X), model.predict(X))
    assert clone(model).get_params()["tasks"] == {"amount": Tweedie(1.4), "q": Quantile(0.25)}


def test_a_poisson_task_beats_squared_error_on_log_linear_counts():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(3000, 4))
    counts = rng.poisson(np.exp(0.3 + 0.8 * X[:, 0] - 0.6 * X[:, 1]))
    train, test = slice(0, 2000), slice(2000, None)
    deviance = {}
    for kind in ("poisson", "regression"):
        model = MMoERegressorClassifier(**SMALL, tasks=kind, max_epochs=60).fit(X[train], counts[train])
        predicted = model.predict(X[test])
        if kind == "poisson":
            assert (predicted > 0).all()
        deviance[kind] = skm.mean_poisson_deviance(counts[test], np.clip(predicted, 1e-6, None))
    assert deviance["poisson"] < deviance["regression"]


def test_a_quantile_task_covers_its_share_of_held_out_rows():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(5000, 3))
    y = X[:, 0] + (1 + 0.8 * np.abs(X[:, 1])) * rng.normal(size=5000)
    model = MMoERegressorClassifier(**SMALL, tasks=Quantile(0.9), max_epochs=60).fit(X[:3000], y[:3000])
    coverage = np.mean(y[3000:] <= model.predict(X[3000:]))
    assert 0.87 <= coverage <= 0.93


def test_task_scores_offer_the_matching_metrics():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3))
    y = pd.DataFrame({"n": rng.poisson(np.exp(X[:, 0])), "q": X[:, 1]})
    model = MMoERegressorClassifier(**SMALL, max_epochs=3, tasks={"n": "poisson", "q": Quantile(0.7)}).fit(X, y)
    scores = sk_mmoe.task_scores(model, X, y, metric={"n": "mean_poisson_deviance", "q": "mean_pinball_loss"})
    predicted = model.predict(X)
    assert scores["n"] == pytest.approx(skm.mean_poisson_deviance(y["n"], predicted["n"]))
    assert scores["q"] == pytest.approx(skm.mean_pinball_loss(y["q"], predicted["q"], alpha=0.7))
    scorer = sk_mmoe.make_task_scorer("n", "mean_poisson_deviance")
    assert scorer(model, X, y) == pytest.approx(-scores["n"])
    with pytest.raises(ValueError, match=r"'mean_poisson_deviance' does not apply to task 'q', a quantile task"):
        sk_mmoe.task_scores(model, X, y, metric={"q": "mean_poisson_deviance"})


def test_get_task_names_what_is_allowed():
    assert get_task("regression") == Regression()
    with pytest.raises(ValueError, match=r"'ordinal' is not a task kind; allowed are the names"):
        get_task("ordinal")


def test_no_module_but_tasks_compares_kind_names():
    # Adding a kind must mean adding a class in sk_mmoe/tasks/, nothing else: no other
    # module may hold a kind's name as a string (docstrings aside).
    package = Path(sk_mmoe.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.parent.name == "tasks":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value in TASK_KINDS and id(node) not in docstrings):
                offenders.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_tasks_equal_by_kind_and_parameters():
    assert Quantile(0.9) == Quantile(0.9) != Quantile(0.5)
    assert Poisson() != Gamma() and hash(Tweedie(1.5)) == hash(Tweedie(1.5))
    assert copy.deepcopy(Quantile(0.3)) == Quantile(0.3)
