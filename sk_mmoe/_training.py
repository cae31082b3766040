"""Training policy: seeding, the batch size and the optimizer's kernel.

The estimator asks these functions what to do; they hold the rules (and their reasons)
that make the defaults work from ~150 to ~1M rows. Early stopping's rules are in
``_early_stopping.py``.
"""

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state

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
