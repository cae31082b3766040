"""Training policy: seeding, batch size, early stopping, the validation split, convergence.

The estimator asks these functions what to do; they hold the rules (and their reasons)
that make the defaults work from ~150 to ~1M rows.
"""

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from ._warnings import warn

# Below this many training rows, "auto" trains without a hold-out: a 10% share would be
# under 10 rows. From 100 rows on, stopping on a hold-out beat fixed epochs on the
# validation rows of the panel's small tables (benchmarks/results/quality_selection.md).
EARLY_STOPPING_MIN_ROWS = 100
# "auto" batch size: enough optimizer steps per epoch on small data, 256 from 4,096 rows.
MAX_AUTO_BATCH_SIZE = 256
MIN_AUTO_BATCH_SIZE = 16
STEPS_PER_EPOCH = 16
# Relative improvement of the loss over the last epochs that counts as "still improving".
CONVERGENCE_TOL = 1e-3


@contextmanager
def seeded_torch(seed, device):
    """Seed torch's generators for a block and restore the caller's state afterwards."""
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def training_seed(random_state, n_epochs_trained):
    """The torch seed of a training call, from ``random_state`` and the epochs trained so far."""
    rng = check_random_state(random_state)
    # Later partial_fit calls continue the stream instead of replaying epoch one.
    return int(rng.randint(np.iinfo(np.int32).max)) + n_epochs_trained


def resolve_batch_size(batch_size, n_samples):
    """The mini-batch size for ``n_samples`` training rows.

    ``"auto"``: ``n_samples / 16`` rounded down to a power of two, within [16, 256], so a
    150-row table still gets ~10 optimizer steps per epoch; ``-1``: all rows.

    Examples
    --------
    >>> from sk_mmoe._training import resolve_batch_size
    >>> [resolve_batch_size("auto", n) for n in (150, 1_000, 10_000)]
    [16, 32, 256]
    """
    if batch_size == "auto":
        target = max(n_samples // STEPS_PER_EPOCH, 1)
        power = 2 ** int(np.floor(np.log2(target)))
        return int(min(MAX_AUTO_BATCH_SIZE, max(MIN_AUTO_BATCH_SIZE, power)))
    if batch_size == -1:
        return max(int(n_samples), 1)
    return int(batch_size)


def uses_early_stopping(early_stopping, n_samples, has_eval_set):
    """Whether to hold out validation rows and stop on them."""
    if early_stopping == "auto":
        return has_eval_set or n_samples >= EARLY_STOPPING_MIN_ROWS
    return bool(early_stopping)


def stratification_labels(y_encoded, task_kinds):
    """Labels to stratify the validation split on: the first classification task's codes.

    A missing label is its own stratum; with no classification task, None (random split).
    """
    for t, kind in enumerate(task_kinds):
        if kind != "regression":
            codes = y_encoded[:, t]
            return np.where(np.isnan(codes), -1, codes).astype(np.int64)
    return None


def validation_split(n_samples, validation_fraction, strata, seed):
    """Row indices ``(train, valid)`` for early stopping, stratified where possible."""
    n_valid = int(np.ceil(validation_fraction * n_samples))
    if n_samples - n_valid < 1:
        raise ValueError(
            f"early stopping holds out validation_fraction={validation_fraction} of "
            f"{n_samples} rows, leaving none to train on; use more rows, a smaller "
            "validation_fraction or early_stopping=False."
        )
    rows = np.arange(n_samples)
    if strata is not None:
        try:
            return train_test_split(rows, test_size=n_valid, stratify=strata, random_state=seed)
        except ValueError:
            # A class with a single row cannot be stratified; fall back to a random split.
            pass
    return train_test_split(rows, test_size=n_valid, random_state=seed)


def warn_if_not_converged(history, max_epochs, n_iter_no_change, early_stopping):
    """Raise ``ConvergenceWarning`` when training ended at ``max_epochs`` still improving.

    The loss watched is the validation loss with early stopping, else the training loss.
    It was still improving when its best over the last ``n_iter_no_change`` epochs (all
    but the first, when ``max_epochs`` is not larger) beat the best before them by more
    than 0.1%; a single epoch always warns, as nothing tells that it was enough.
    """
    n_epochs = len(history)
    if n_epochs < max_epochs:
        return
    key = "valid_loss" if early_stopping else "train_loss"
    what = "validation" if early_stopping else "training"
    window = min(n_iter_no_change, n_epochs - 1)
    if window == 0:
        warn(
            f"Training stopped at max_epochs={max_epochs} after a single epoch, so nothing "
            f"shows whether the {what} loss had stopped improving. Increase max_epochs to "
            "let it converge.",
            ConvergenceWarning,
        )
        return
    losses = np.asarray([epoch.get(key, np.nan) for epoch in history], dtype=float)
    recent, before = np.nanmin(losses[-window:]), np.nanmin(losses[:-window])
    if not recent < before - CONVERGENCE_TOL * abs(before):
        return
    warn(
        f"Training stopped at max_epochs={max_epochs} while the {what} loss was still "
        f"improving ({before:.4g} -> {recent:.4g} over the last {window} epochs). "
        "Increase max_epochs (or lr) to let it converge.",
        ConvergenceWarning,
    )
