"""The verbose=1 epoch table: compact, plain text off a terminal, matrices in history_ only."""

import re

import numpy as np
import pandas as pd
from skorch.callbacks import ProgressBar

from sk_mmoe import MMoERegressorClassifier

TINY = dict(n_experts=4, expert_layer_sizes=(8,), tower_layer_sizes=(4,), max_epochs=3,
            early_stopping=False, random_state=0)


def data(n=200):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 4))
    y = pd.DataFrame({"r": X[:, 0], "b": X[:, 1] > 0, "c": rng.randint(3, size=n)})
    return X, y


def test_table_is_compact_and_keeps_matrices_in_history(capsys):
    X, y = data()
    model = MMoERegressorClassifier(**TINY, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    # Each task's kind first (the integer codes of "c" are classes, with a warning).
    assert lines[0] == "tasks: 'r' regression, 'b' binary, 'c' multiclass"
    lines = lines[1:]
    # One labelled entropy column per task, between the loss and the duration.
    assert lines[0].split() == [
        "epoch", "train_loss", "gate_entropy[r]", "gate_entropy[b]", "gate_entropy[c]", "dur"
    ]
    assert len(lines) == 2 + 3
    assert max(map(len, lines)) <= 90
    assert "[[" not in "".join(lines) and "]," not in "".join(lines)  # no matrix, no list
    # Numbers as the losses, 4 decimals.
    cells = lines[2].split()
    assert cells[0] == "1" and len(cells) == 1 + 1 + 3 + 1
    assert all(len(c.split(".")[1]) == 4 for c in cells[2:5])
    assert np.array(model.history_[-1, "gate_utilization"]).shape == (3, 4)


def test_validation_loss_column_and_no_colour_codes_off_a_terminal(capsys):
    X, y = data()
    MMoERegressorClassifier(**dict(TINY, early_stopping=True), verbose=1).fit(X, y)
    out = capsys.readouterr().out
    # Each task's validation metric (R², accuracy) follows the validation loss.
    assert out.splitlines()[1].split() == [
        "epoch", "train_loss", "valid_loss", "valid_b_accuracy", "valid_c_accuracy",
        "valid_r_r2", "gate_entropy[r]", "gate_entropy[b]", "gate_entropy[c]", "dur",
    ]
    assert "\x1b[" not in out  # pytest's captured stdout is not a terminal


def test_every_epoch_is_printed_when_early_stopping_ends_training(capsys):
    # The epoch in which early stopping decides to stop is recorded in history_: its line
    # is printed too, before the stopping message.
    X, y = data()
    params = dict(TINY, early_stopping=True, max_epochs=200, n_iter_no_change=2, lr=0.05)
    model = MMoERegressorClassifier(**params, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(model.history_) < 200
    epochs = [int(line.split()[0]) for line in lines[2:] if line.split()[0].isdigit()]
    assert epochs == list(range(1, len(model.history_) + 1))
    assert lines[-2].startswith("Stopping since valid_loss has not improved")


def test_colour_on_request(capsys):
    X, y = data()
    MMoERegressorClassifier(
        **dict(TINY, early_stopping=True), verbose=1, callbacks__print_log__color=True
    ).fit(X, y)
    assert "\x1b[" in capsys.readouterr().out


def test_silent_by_default_and_progress_bar_for_long_fits(capsys):
    X, y = data()
    MMoERegressorClassifier(**TINY).fit(X, y)
    assert capsys.readouterr().out == ""
    # batches_per_epoch="count": skorch's "auto" reads batch_size, which may be "auto".
    MMoERegressorClassifier(**TINY, callbacks=[ProgressBar(batches_per_epoch="count")]).fit(X, y)
    # tqdm draws on stderr one bar per epoch; from the second on it knows the epoch's size.
    assert len(re.findall(r"\| 0/\d+ \[", capsys.readouterr().err)) == 2


def test_log_lines_go_to_a_custom_sink():
    X, y = data()
    lines = []
    MMoERegressorClassifier(**TINY, verbose=1, callbacks__print_log__sink=lines.append).fit(X, y)
    assert len(lines) == 6 and "\x1b[" not in "".join(lines)
    assert lines[0] == "tasks: 'r' regression, 'b' binary, 'c' multiclass"
