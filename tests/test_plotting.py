import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sk_mmoe import MMoERegressorClassifier  # noqa: E402
from sk_mmoe import plotting  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = np.column_stack([X[:, 0], X[:, 1] > 0])
    model = MMoERegressorClassifier(n_experts=3, expert_layer_sizes=(8,), max_epochs=3, random_state=0)
    return model.fit(X, y), X


def test_utilization_heatmap(fitted):
    model, X = fitted
    fig, ax = plt.subplots()
    out = plotting.plot_expert_utilization(model, X, ax=ax)
    assert out is ax
    image = ax.images[0].get_array()
    np.testing.assert_allclose(image, model.gate_weights(X).mean(0), rtol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1"]
    plt.close(fig)


def test_utilization_history(fitted):
    model, _ = fitted
    ax = plotting.plot_utilization_history(model, task=1)
    assert len(ax.lines) == 3  # one line per expert
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.array(model.history[:, "gate_utilization"])[:, 1, 0])
    with pytest.raises(ValueError, match="task 'x' is neither a fitted task name"):
        plotting.plot_utilization_history(model, task="x")
    plt.close("all")


def test_tasks_by_name_or_position_and_distinct_colours():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    import pandas as pd

    y = pd.DataFrame({"a": X[:, 0], "b": X[:, 1]})
    model = MMoERegressorClassifier(n_experts=12, expert_layer_sizes=(4,), max_epochs=2, random_state=0)
    model.fit(X, y)
    by_name = plotting.plot_utilization_history(model, task="b")
    by_position = plotting.plot_utilization_history(model, task=1)
    np.testing.assert_array_equal(by_name.lines[5].get_ydata(), by_position.lines[5].get_ydata())
    colours = {line.get_color() for line in by_name.lines}
    assert len(colours) == 12
    with pytest.raises(ValueError, match="nor a position below 2"):
        plotting.plot_gate_weight_distribution(model, X, task=2)
    plt.close("all")


def test_gate_weight_distribution(fitted):
    model, X = fitted
    fig, ax = plt.subplots()
    assert plotting.plot_gate_weight_distribution(model, X, ax=ax) is ax
    assert len(ax.get_xticklabels()) == 3
    plt.close(fig)


def test_clear_error_without_matplotlib(fitted, monkeypatch):
    model, X = fitted
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"needs matplotlib.*sk-mmoe\[plot\]"):
        plotting.plot_expert_utilization(model, X)
