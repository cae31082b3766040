"""Learning-rate schedules: saved with the model, and continued where they were by
partial_fit, after load_model too."""

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.callbacks import EarlyStopping, GradientNormClipping, LRScheduler

from sk_mmoe import MMoERegressorClassifier, load_model, save_model

pytestmark = pytest.mark.filterwarnings("ignore::sk_mmoe.diagnostics.GatePolarizationWarning")

SCHEDULES = {
    "cosine": lambda: LRScheduler("CosineAnnealingLR", T_max=6),
    "step": lambda: LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5),
    # No epoch counts as an improvement (threshold 1000%), so the rate halves after every
    # 3 epochs whatever the losses: epochs 1-3 at 0.01, 4-6 at 0.005. A scheduler rebuilt
    # with a fresh patience count at epoch 4 would keep 0.01 until epoch 7.
    "plateau": lambda: LRScheduler("ReduceLROnPlateau", patience=2, factor=0.5,
                                   threshold=10.0, monitor="train_loss"),
}


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    return X, pd.DataFrame({"value": X[:, 0], "flag": X[:, 1] > 0})


def _model(schedule, max_epochs):
    return MMoERegressorClassifier(
        n_experts=2, expert_layer_sizes=(8,), tower_layer_sizes=(), max_epochs=max_epochs,
        lr=0.01, early_stopping=False, random_state=0,
        callbacks=[("schedule", SCHEDULES[schedule]()), GradientNormClipping(5.0)],
    )


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_schedule_continues_after_saving_and_loading(schedule, data, tmp_path):
    X, y = data
    uninterrupted = _model(schedule, 6).fit(X, y).history_[:, "event_lr"]
    first = _model(schedule, 3).fit(X, y)
    save_model(first, tmp_path / "model.skmmoe")
    loaded = load_model(tmp_path / "model.skmmoe")
    assert isinstance(loaded.callbacks[0][1], LRScheduler)
    assert loaded.callbacks[0][1].get_params() == first.callbacks[0][1].get_params()
    loaded.partial_fit(X, y)
    first.partial_fit(X, y)
    np.testing.assert_allclose(loaded.history_[:, "event_lr"], uninterrupted, rtol=1e-12)
    np.testing.assert_allclose(first.history_[:, "event_lr"], uninterrupted, rtol=1e-12)
    # The rate did change over the six epochs: a schedule that never moved proves nothing.
    assert uninterrupted[-1] < uninterrupted[0]
    # Same weights, optimizer and schedule: the continued models are the same model.
    pd.testing.assert_frame_equal(loaded.predict(X), first.predict(X))


def test_plateau_counts_are_those_of_the_uninterrupted_run(data):
    X, y = data
    model = _model("plateau", 3).fit(X, y)
    model.partial_fit(X, y)
    assert model.history_[:, "event_lr"] == [0.01, 0.01, 0.01, 0.005, 0.005, 0.005]


def test_a_new_fit_starts_the_schedule_anew(data):
    X, y = data
    model = _model("step", 3).fit(X, y)
    assert model.history_[:, "event_lr"] == [0.01, 0.01, 0.005]
    assert model.fit(X, y).history_[:, "event_lr"] == [0.01, 0.01, 0.005]


def test_callbacks_that_cannot_be_stored_are_refused_by_name(data, tmp_path):
    X, y = data
    model = _model("step", 2).set_params(callbacks=[EarlyStopping(monitor="train_loss")]).fit(X, y)
    with pytest.raises(TypeError, match=r"EarlyStopping.*'GradientNormClipping', 'LRScheduler'"):
        save_model(model, tmp_path / "model.skmmoe")
    monitor = LRScheduler("ReduceLROnPlateau", monitor=lambda net: 0.0)
    model = _model("step", 2).set_params(callbacks=[monitor]).fit(X, y)
    with pytest.raises(TypeError, match="function"):
        save_model(model, tmp_path / "model.skmmoe")
