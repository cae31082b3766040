"""Training policy: seeding, the batch size, the optimizer's kernel and small tables' decay.

The estimator asks these functions what to do; they hold the rules (and their reasons)
that make the defaults work from ~150 to ~1M rows. Early stopping's rules are in
``_early_stopping.py``.
"""

import inspect
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._embeddings import MIN_AUTO_EMBEDDED_ROWS

# "auto" batch size: enough optimizer steps per epoch on small data, 256 from 4,096 rows,
# growing to 1,024 on large tables (512 from 16,384 rows, 1,024 from 32,768).
MAX_AUTO_BATCH_SIZE = 1024
SMALL_TABLE_BATCH_SIZE = 256
MIN_AUTO_BATCH_SIZE = 16
STEPS_PER_EPOCH = 16
LARGE_TABLE_STEPS_PER_EPOCH = 32


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


def _power_of_two_below(n):
    return 2 ** int(np.floor(np.log2(max(n, 1))))


def resolve_batch_size(batch_size, n_samples):
    """The mini-batch size for ``n_samples`` training rows.

    ``"auto"``: ``n_samples / 16`` rounded down to a power of two, within [16, 256], so a
    150-row table still gets ~10 optimizer steps per epoch; on large tables
    ``n_samples / 32`` rounded down to a power of two, up to 1,024 (512 from 16,384 rows,
    1,024 from 32,768). ``-1``: all rows.

    Larger batches on large tables do the same matmul work in fewer, larger steps: on
    census-income (50,000 training rows, validation rows of 2 seeds) 1,024-row batches
    with the learning rate raised by :func:`auto_lr_scale` scored within 0.0006 AUC of
    256-row batches in the same number of epochs, in 0.37-0.43x the fit time.

    Examples
    --------
    >>> from sk_mmoe._training import resolve_batch_size
    >>> [resolve_batch_size("auto", n) for n in (150, 1_000, 10_000, 20_000, 50_000)]
    [16, 32, 256, 512, 1024]
    """
    if batch_size == "auto":
        small = min(SMALL_TABLE_BATCH_SIZE,
                    max(MIN_AUTO_BATCH_SIZE, _power_of_two_below(n_samples // STEPS_PER_EPOCH)))
        large = min(MAX_AUTO_BATCH_SIZE, _power_of_two_below(n_samples // LARGE_TABLE_STEPS_PER_EPOCH))
        return int(max(small, large))
    if batch_size == -1:
        return max(int(n_samples), 1)
    return int(batch_size)


def auto_lr_scale(batch_size, n_samples):
    """The factor on ``lr`` for the training batches of ``n_samples`` rows.

    With ``batch_size="auto"``, ``lr`` is the rate of batches of up to 256 rows; the larger
    automatic batches of large tables raise it by ``sqrt(batch / 256)`` (Adam's usual
    square-root scaling: 2x at 1,024 rows). Batches the caller chose keep ``lr`` as given.

    Examples
    --------
    >>> from sk_mmoe._training import auto_lr_scale
    >>> [auto_lr_scale("auto", n) for n in (1_000, 20_000, 50_000)], auto_lr_scale(1024, 50_000)
    ([1.0, 1.4142135623730951, 2.0], 1.0)
    """
    if batch_size != "auto":
        return 1.0
    return float(np.sqrt(max(resolve_batch_size("auto", n_samples) / SMALL_TABLE_BATCH_SIZE, 1.0)))


# Optimizers whose fused kernel updates each parameter in one op, and the devices that
# have it in every torch we support.
FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)
FUSED_DEVICES = ("cpu", "cuda")


def fused_by_default(optimizer, kwargs, device):
    """Whether to build ``optimizer`` with ``fused=True``.

    Adam's default update is a Python loop of about ten element-wise ops per parameter
    tensor; the fused kernel does the same arithmetic (equal to float32 rounding) in one
    op per tensor. For the small networks of tabular data those ops, not the arithmetic,
    set the pace: on the 3-task benchmark network a training step dispatches 202 torch
    ops with the fused kernel against 290 without (``benchmarks/speed.py``, section h).
    Used for Adam and AdamW when the caller chose neither ``foreach`` nor ``fused``.

    Examples
    --------
    >>> import torch
    >>> from sk_mmoe._training import fused_by_default
    >>> fused_by_default(torch.optim.Adam, {}, "cpu")
    True
    >>> fused_by_default(torch.optim.Adam, {"foreach": True}, "cpu")
    False
    >>> fused_by_default(torch.optim.SGD, {}, "cpu")
    False
    """
    return (
        isinstance(optimizer, type)
        and issubclass(optimizer, FUSED_OPTIMIZERS)
        and not {"foreach", "fused", "differentiable"} & set(kwargs)
        and torch.device(device).type in FUSED_DEVICES
    )


# A fit on fewer rows than this trains the default Adam with decoupled weight decay: the
# tiny-table regime, where "auto" also leaves numeric features unembedded.
SMALL_TABLE_ROWS = MIN_AUTO_EMBEDDED_ROWS
SMALL_TABLE_WEIGHT_DECAY = 2.0


def small_table_weight_decay(optimizer, kwargs, n_fit_rows, learned_task_weights=False):
    """The optimizer arguments to add for a ``fit`` of ``n_fit_rows`` rows (None for
    ``partial_fit``): ``{}`` or decoupled weight decay.

    Not with ``learned_task_weights`` (``task_weights="uncertainty"``): the optimizer
    also steps the loss's log-variances, and decay would pull them toward equal weights.

    Under :data:`SMALL_TABLE_ROWS` rows the default ``torch.optim.Adam``, when the caller
    routed no ``weight_decay``, trains with decoupled weight decay 2.0 (AdamW's update:
    each step multiplies the weights by ``1 - lr * 2.0``). Chosen on validation rows
    (``benchmarks/results/tiny_selection_round3.md`` and ``..._round4.md``, 10 draws):
    on 100-150-row tables (a linear 3-class problem, iris, wine, breast cancer) it
    raised accuracy by 0.003-0.008 on each, bringing all four within 0.007 of the
    better of LogisticRegression and MLPClassifier (the plain defaults were 0.013 and
    0.012 behind on the linear problem and iris); a decay of 5 under-fit iris (-0.012),
    1 changed little. On penguins (172 rows, ``quality_selection_tiny_penguins.md``, 10
    seeds) the model stays ahead of per-task gradient boosting on all three tasks,
    by a little less than without it. The threshold is the numeric embedding's
    (``MIN_AUTO_EMBEDDED_ROWS``); Wage (1,500 rows), outside it, did no worse with the
    decay (``quality_selection_tiny.md``, 3 seeds). Needs torch's ``decoupled_weight_decay`` (torch 2.6
    and later); older torch trains without.

    Examples
    --------
    >>> import torch
    >>> from sk_mmoe._training import small_table_weight_decay
    >>> small_table_weight_decay(torch.optim.Adam, {}, 150)
    {'weight_decay': 2.0, 'decoupled_weight_decay': True}
    >>> small_table_weight_decay(torch.optim.Adam, {}, 1_000), small_table_weight_decay(torch.optim.Adam, {}, None)
    ({}, {})
    >>> small_table_weight_decay(torch.optim.Adam, {"weight_decay": 0.0}, 150)
    {}
    >>> small_table_weight_decay(torch.optim.Adam, {}, 150, learned_task_weights=True)
    {}
    """
    if (
        n_fit_rows is None
        or n_fit_rows >= SMALL_TABLE_ROWS
        or optimizer is not torch.optim.Adam
        or {"weight_decay", "decoupled_weight_decay"} & set(kwargs)
        or learned_task_weights
        or "decoupled_weight_decay" not in inspect.signature(torch.optim.Adam).parameters
    ):
        return {}
    return {"weight_decay": SMALL_TABLE_WEIGHT_DECAY, "decoupled_weight_decay": True}
