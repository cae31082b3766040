"""Training policy: seeding and the batch size.

The estimator asks these functions what to do; they hold the rules (and their reasons)
that make the defaults work from ~150 to ~1M rows. Early stopping's rules are in
``_early_stopping.py``.
"""

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state

# "auto" batch size: enough optimizer steps per epoch on small data, 256 from 4,096 rows.
MAX_AUTO_BATCH_SIZE = 256
MIN_AUTO_BATCH_SIZE = 16
STEPS_PER_EPOCH = 16


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
