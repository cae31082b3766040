"""The tensor data path.

Features (see ``_features.py``) and targets arrive here as tensors (sparse features as
:class:`SparseRows`); training and prediction then draw whole batches by slicing them,
with no per-row ``__getitem__`` and no collation.
"""

import numpy as np
import torch
from sklearn.utils.validation import _check_sample_weight


def check_sample_weight(sample_weight, n_samples, n_tasks=None):
    """Validate ``sample_weight`` as a non-negative float32 tensor, or pass None on.

    It is ``(n_samples,)``, a weight per row, or ``(n_samples, n_tasks)``, a weight per
    row and task (with ``n_tasks`` given).
    """
    if sample_weight is None:
        return None
    array = np.asarray(sample_weight) if not hasattr(sample_weight, "shape") else sample_weight
    if n_tasks is not None and getattr(array, "ndim", 1) == 2:
        if array.shape != (n_samples, n_tasks):
            raise ValueError(
                f"sample_weight has shape {array.shape}; a weight per row and task needs "
                f"shape ({n_samples}, {n_tasks}) (rows, tasks), or give ({n_samples},) for "
                "one weight per row."
            )
        weights = np.asarray(array, dtype=np.float32)
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("sample_weight must be finite and non-negative; it holds "
                             f"{weights[~np.isfinite(weights) | (weights < 0)][0]!r}.")
        return torch.from_numpy(np.array(weights, dtype=np.float32))
    weights = _check_sample_weight(
        sample_weight, np.empty((n_samples, 0)), dtype=np.float32, ensure_non_negative=True
    )
    return torch.from_numpy(np.array(weights, dtype=np.float32))


class SparseRows:
    """The rows of a CSR matrix as torch tensors; a batch of them is a sparse COO tensor.

    Parameters
    ----------
    indptr, indices, data : torch.Tensor
        The CSR arrays (int64, int64, float32), column indices sorted within each row.
    n_columns : int
    """

    def __init__(self, indptr, indices, data, n_columns):
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = (len(indptr) - 1, n_columns)

    @classmethod
    def from_scipy(cls, matrix):
        """Hold a scipy CSR matrix's arrays (shared when already int64 / float32)."""
        return cls(
            torch.from_numpy(np.asarray(matrix.indptr, dtype=np.int64)),
            torch.from_numpy(np.asarray(matrix.indices, dtype=np.int64)),
            torch.from_numpy(np.asarray(matrix.data, dtype=np.float32)),
            matrix.shape[1],
        )

    def __len__(self):
        return self.shape[0]

    def take(self, index):
        """The rows at ``index`` (a slice or an index tensor), as a new ``SparseRows``."""
        if isinstance(index, slice):
            rows = torch.arange(*index.indices(len(self)))
        else:  # not torch.arange(n)[index]: an n-long tensor per batch costs O(n) a step
            rows = torch.as_tensor(index, dtype=torch.long)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        indptr = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
        # Position of every stored entry of the chosen rows, in row order.
        within = torch.arange(int(indptr[-1])) - indptr[:-1].repeat_interleave(lengths)
        entries = starts.repeat_interleave(lengths) + within
        return SparseRows(indptr, self.indices[entries], self.data[entries], self.shape[1])

    def to_sparse_coo(self):
        rows = torch.arange(len(self)).repeat_interleave(self.indptr.diff())
        return torch.sparse_coo_tensor(
            torch.stack([rows, self.indices]), self.data, self.shape, is_coalesced=True,
            check_invariants=False,
        )

    def __getitem__(self, index):
        return self.take(index).to_sparse_coo()


class TensorBatchDataset(torch.utils.data.Dataset):
    """Features, encoded targets and sample weights held as tensors, sliced per batch.

    A batch's target is one tensor: the encoded targets ``(batch, n_tasks)``, followed by
    the weights' columns when there are weights (one column for row weights, ``n_tasks``
    for a weight per row and task). One tensor, rather than a pair, lets skorch's
    scoring callbacks cache and concatenate it like any target; :func:`split_targets`
    takes it apart.

    Parameters
    ----------
    X : torch.Tensor or SparseRows of shape (n_samples, n_features)
    y : torch.Tensor of shape (n_samples, n_tasks), optional
        Encoded targets, NaN where a label is missing.
    sample_weight : torch.Tensor of shape (n_samples,) or (n_samples, n_tasks), optional
    rows : torch.Tensor of int64, optional
        The rows of ``X`` this dataset holds, in order (``y`` and ``sample_weight`` hold
        those rows only); None for all of ``X``. A hold-out split so shares ``X`` with
        the data it came from: each batch gathers its rows, and ``X`` is never copied
        whole.
    """

    def __init__(self, X, y=None, sample_weight=None, rows=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.rows = rows
        self._targets = batch_targets(y, sample_weight)

    def __len__(self):
        return self.X.shape[0] if self.rows is None else len(self.rows)

    def batch(self, index):
        """The batch at ``index`` (a slice or an index tensor) as ``(X, targets)``."""
        X = self.X[index if self.rows is None else self.rows[index]]
        return X, None if self.y is None else self._targets[index]

    def __getitem__(self, i):
        return self.batch(i)

    def subset(self, index):
        """A new dataset holding the rows at ``index`` (an index tensor); it shares ``X``."""
        rows = index if self.rows is None else self.rows[index]
        if self.y is None:
            return TensorBatchDataset(self.X, rows=rows)
        weight = None if self.sample_weight is None else self.sample_weight[index]
        return TensorBatchDataset(self.X, self.y[index], weight, rows=rows)


def batch_targets(y, sample_weight):
    """The one target tensor of a batch: ``y``, then the weights' columns (if any)."""
    if y is None or sample_weight is None:
        return y
    weight = sample_weight if sample_weight.dim() == 2 else sample_weight.unsqueeze(1)
    return torch.cat([y, weight.to(y.dtype)], dim=1)


def split_targets(targets, n_tasks):
    """``(encoded targets, weights or None)`` of a batch's target tensor (see
    :class:`TensorBatchDataset`); weights are ``(batch,)`` or ``(batch, n_tasks)``."""
    width = targets.shape[1]
    if width == n_tasks:
        return targets, None
    weights = targets[:, n_tasks:]
    return targets[:, :n_tasks], weights[:, 0] if width == n_tasks + 1 else weights


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


class EpochOfSteps:
    """``steps`` batches of an iterable per pass over this object, continuing where the
    last pass stopped and starting the iterable anew (a new shuffle) when it runs out.

    It makes an epoch a fixed number of optimizer steps (``steps_per_epoch``) on data
    too long for a pass per epoch.
    """

    def __init__(self, batches, steps):
        self.batches = batches
        self.steps = steps
        self._live = None

    def __len__(self):
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            batch = None if self._live is None else next(self._live, None)
            if batch is None:
                self._live = iter(self.batches)
                batch = next(self._live, None)
                if batch is None:
                    return
            yield batch


class RowOutputs:
    """The outputs of a pass over ``n_rows`` rows in batches, written into one tensor.

    Keeping each batch's small output alive until a final ``torch.cat`` (what skorch's
    ``forward`` does) interleaves long-lived small blocks with the large blocks each
    batch's forward allocates and frees; glibc's heap then cannot reuse or return the
    freed space, and grows by megabytes a batch: predicting 500,000 rows through the
    piecewise-linear embedding took +3 GiB that way, +21 MiB writing into one tensor
    allocated once.

    Parameters
    ----------
    n_rows : int
        Rows of the whole pass; the batches arrive in row order.
    """

    def __init__(self, n_rows):
        self.n_rows = n_rows
        self.filled = 0
        self.tensor = None

    def add(self, batch):
        """Copy one batch's outputs ``(batch, ...)`` (any device) into place."""
        batch = batch.detach()
        if self.tensor is None:
            self.tensor = torch.empty((self.n_rows, *batch.shape[1:]), dtype=batch.dtype)
        self.tensor[self.filled : self.filled + len(batch)] = batch
        self.filled += len(batch)

    def result(self):
        """The outputs of the rows added so far, ``(n_added, ...)``."""
        if self.tensor is None:
            return torch.empty((0,))
        return self.tensor[: self.filled]
