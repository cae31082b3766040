"""The tensor data path.

Features (see ``_features.py``) and targets arrive here as tensors; training and
prediction then draw whole batches by slicing them, with no per-row ``__getitem__`` and
no collation.
"""

import numpy as np
import torch
from sklearn.utils.validation import _check_sample_weight


def check_sample_weight(sample_weight, n_samples):
    """Validate ``sample_weight`` as a non-negative float32 tensor, or pass None on."""
    if sample_weight is None:
        return None
    weights = _check_sample_weight(
        sample_weight, np.empty((n_samples, 0)), dtype=np.float32, ensure_non_negative=True
    )
    return torch.from_numpy(np.array(weights, dtype=np.float32))


class TensorBatchDataset(torch.utils.data.Dataset):
    """Features, encoded targets and sample weights held as tensors, sliced per batch.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    y : torch.Tensor of shape (n_samples, n_tasks), optional
        Encoded targets, NaN where a label is missing.
    sample_weight : torch.Tensor of shape (n_samples,), optional
    """

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self):
        return self.X.shape[0]

    def batch(self, index):
        """The batch at ``index`` (a slice or an index tensor) as ``(X, (y, w))``."""
        if self.y is None:
            return self.X[index], None
        weight = None if self.sample_weight is None else self.sample_weight[index]
        return self.X[index], (self.y[index], weight)

    def __getitem__(self, i):
        return self.batch(i)

    def subset(self, index):
        """A new dataset holding the rows at ``index``."""
        X, target = self.batch(index)
        if target is None:
            return TensorBatchDataset(X)
        return TensorBatchDataset(X, *target)


class BatchSlicer:
    """Iterate over a :class:`TensorBatchDataset` in batches of contiguous slices.

    It stands where skorch puts a ``DataLoader``. With ``shuffle=True`` a new order is
    drawn from torch's random generator at every pass.

    Parameters
    ----------
    dataset : TensorBatchDataset
    batch_size : int, default=128
    shuffle : bool, default=False
    """

    def __init__(self, dataset, batch_size=128, shuffle=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        n_samples = len(self.dataset)
        order = torch.randperm(n_samples) if self.shuffle else None
        for start in range(0, n_samples, self.batch_size):
            stop = min(start + self.batch_size, n_samples)
            index = slice(start, stop) if order is None else order[start:stop]
            yield self.dataset.batch(index)
