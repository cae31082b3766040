"""A data source as the datasets skorch reads: encoded record batch by record batch with
the fitted encoders, cut into training batches through a shuffle buffer.

``fit`` on a source streams it once for the encoders (``_stream_stats.py``), then once per
epoch: the source's reading units (Parquet row groups) in an order drawn from the
estimator's seed, rows mixed through the source's shuffle buffer, batches of exactly
``batch_size`` rows (the last one shorter), as the in-memory path slices them. Under
``distributed=True`` each rank reads its own equal slice (:class:`RankSourceBatches`).
Nothing here keeps more than the buffer and one record batch of rows.
"""

import numpy as np
import pandas as pd
import torch

from ._data import BatchSlicer, TensorBatchDataset, batch_targets, check_sample_weight, split_targets
from ._row_weights import class_weight_tables, row_task_weights
from ._stream_stats import fit_source_encoders
from .sources import is_source

# Rows the gate diagnostics read (the first rows of the validation or training source).
_FIRST_ROWS_CAP = 65_536


def check_source_call(estimator, caller, y=None, sample_weight=None):
    """Refuse what cannot go with a source, saying what to do instead."""
    if y is not None:
        raise ValueError(
            f"{caller}: y must be None when X is a data source; the targets are columns of "
            "the source, named by its targets=[...]."
        )
    if sample_weight is not None:
        raise ValueError(
            f"{caller}: sample_weight must be None when X is a data source; name a weight "
            "column with the source's sample_weight=\"column\"."
        )


class SourceDataset(torch.utils.data.Dataset):
    """A data source encoded with ``estimator``'s fitted encoders, one record batch at a
    time; ``with_targets=False`` reads the feature columns only (prediction).

    ``y`` and ``sample_weight`` (the encoded targets and weights of all rows, which the
    validation metrics read) are read on first use with the target columns only.
    """

    def __init__(self, source, estimator, n_rows, *, with_targets=True, class_tables=None):
        if not hasattr(estimator, "feature_names_in_"):
            raise ValueError(
                "This model was fitted on X without column names; a data source is read by "
                "column name. Fit it on a DataFrame or a source."
            )
        self.source = source
        self.estimator = estimator
        self.n_rows = n_rows
        self.with_targets = with_targets
        self.weight = source.weight_column() if with_targets else None
        self.class_tables = class_tables
        self._labels = self._first = None

    @property
    def features(self):
        return [str(name) for name in self.estimator.feature_names_in_]

    @property
    def targets(self):
        return list(self.estimator.task_names_) if self.with_targets else []

    def __len__(self):
        return self.n_rows

    def _target_columns(self):
        return self.targets + ([self.weight] if self.weight else [])

    def _encoded_targets(self, frame):
        targets = self.estimator._target_encoder
        y = targets.transform(frame[self.targets])
        weight = None if self.weight is None else frame[self.weight].to_numpy()
        weights = row_task_weights(
            weight, y, targets, self.estimator.class_weight, self.class_tables
        )
        return torch.from_numpy(y), weights

    def encoded(self, seed=None, rows=None):
        """Yield ``(X, targets)`` tensors per record batch (targets None without them);
        ``seed`` and ``rows`` as the source's ``record_batches`` takes them."""
        columns = self.features + self._target_columns()
        for batch in self.source.record_batches(columns, seed=seed, rows=rows):
            frame = batch.to_pandas()
            X = self.estimator._feature_encoder.transform(self.estimator, frame[self.features])
            if not self.targets:
                yield X, None
                continue
            yield X, batch_targets(*self._encoded_targets(frame))

    def _read_labels(self):
        if self._labels is None:
            parts = [
                self._encoded_targets(batch.to_pandas())
                for batch in self.source.record_batches(self._target_columns())
            ]
            y = torch.cat([y for y, _ in parts])
            weights = None if parts[0][1] is None else torch.cat([w for _, w in parts])
            self._labels = y, weights
        return self._labels

    @property
    def y(self):
        return self._read_labels()[0]

    @property
    def sample_weight(self):
        return self._read_labels()[1]

    def first_rows(self, n_rows):
        """The encoded features of the source's first ``n_rows`` rows (in table order)."""
        if self._first is None or len(self._first) < min(n_rows, self.n_rows):
            parts, count = [], 0
            for X, _ in SourceDataset(self.source, self.estimator, self.n_rows, with_targets=False).encoded():
                parts.append(X[: n_rows - count])
                count += len(parts[-1])
                if count >= n_rows:
                    break
            self._first = torch.cat(parts)
        return self._first[:n_rows]


def _mixed(chunks, capacity, generator):
    """Rows of ``chunks`` (``(X, targets)`` pairs) through a shuffle buffer of
    ``capacity`` rows: each arriving chunk sends out as many rows as it brings, drawn at
    random from the buffer and the chunk; the rest wait. 0 passes chunks through."""
    buffer = None
    for chunk in chunks:
        if capacity <= 0:
            yield chunk
            continue
        pool = chunk if buffer is None else _cat(buffer, chunk)
        if len(pool[0]) <= capacity:
            buffer = pool
            continue
        order = torch.randperm(len(pool[0]), generator=generator)
        n_out = len(pool[0]) - capacity
        yield _take(pool, order[:n_out])
        buffer = _take(pool, order[n_out:])
    if buffer is not None:
        yield _take(buffer, torch.randperm(len(buffer[0]), generator=generator))


def _cat(first, second):
    return tuple(None if a is None else torch.cat([a, b]) for a, b in zip(first, second))


def _take(pair, index):
    return tuple(None if a is None else a[index] for a in pair)


class SourceBatches(BatchSlicer):
    """Iterate over a :class:`SourceDataset` in batches of ``batch_size`` rows.

    :class:`~sk_mmoe._data.BatchSlicer`'s counterpart for a source. With ``shuffle=True`` every pass draws a seed from torch's
    generator (seeded by the estimator's ``random_state``) for the order of the source's
    reading units and its shuffle buffer (from ``generator`` when given).
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, generator=None):
        super().__init__(dataset, batch_size, shuffle)
        self.generator = generator

    def __iter__(self):
        return self._batches()

    def _batches(self, rows=None):
        """The pass's batches (of the rows at positions ``rows=(start, stop)`` only)."""
        seed, generator, capacity = None, None, 0
        if self.shuffle:
            seed = int(torch.randint(np.iinfo(np.int32).max, (), generator=self.generator).item())
            generator = torch.Generator().manual_seed(seed)
            capacity = self.dataset.source.shuffle_buffer_rows
        carry = None
        for chunk in _mixed(self.dataset.encoded(seed, rows), capacity, generator):
            pool = chunk if carry is None else _cat(carry, chunk)
            n_rows = len(pool[0])
            stop = n_rows - n_rows % self.batch_size
            for start in range(0, stop, self.batch_size):
                yield _take(pool, slice(start, start + self.batch_size))
            carry = _take(pool, slice(stop, n_rows)) if stop < n_rows else None
        if carry is not None:
            yield carry


class RankSourceBatches(SourceBatches):
    """This rank's slice of a source under ``distributed=True``, in batches of its share
    of the global ``batch_size``.

    Every pass draws one order of the reading units from ``generator`` (in the same state
    on every rank) and cuts the rows, in that order, into ``world`` equal slices of whole
    batches, decided from the row count alone: every rank runs the same number of steps
    and reads only its slice; the last ``< world x batch`` rows of the pass are left out.
    Each step sums the global batch's per-task label weights over the ranks into
    ``run.batch_totals``, as :class:`sk_mmoe._distributed.RankBatches` does for arrays.
    """

    def __init__(self, dataset, batch_size, shuffle, generator, run, label_weights):
        if batch_size % run.world:
            raise ValueError(
                f"distributed=True with a data source needs batch_size divisible by the "
                f"number of ranks ({run.world}); got batch_size={batch_size}."
            )
        super().__init__(dataset, batch_size // run.world, shuffle, generator)
        self.run = run
        self.label_weights = label_weights
        self.rows_per_rank = len(dataset) // (batch_size) * self.batch_size
        if self.rows_per_rank == 0:
            raise ValueError(
                f"The source has {len(dataset)} rows, fewer than one global batch of "
                f"{batch_size}; lower batch_size."
            )

    def __len__(self):
        return self.rows_per_rank // self.batch_size

    def __iter__(self):
        start = self.run.rank * self.rows_per_rank
        n_tasks = len(self.dataset.targets)
        for X, targets in self._batches(rows=(start, start + self.rows_per_rank)):
            y, weights = split_targets(targets, n_tasks)
            totals = torch.cat([self.label_weights(y, weights).sum(0).double(),
                                y.isnan().logical_not().sum(0).double()])
            (totals,) = self.run.global_sum([totals])
            self.run.global_batch_size = len(X) * self.run.world
            self.run.batch_totals = (totals[:n_tasks].float(), totals[n_tasks:].long())
            yield X, targets


def source_training_dataset(estimator, source, *, reset):
    """``(dataset, feature_encoder, target_encoder)`` for training on ``source``; with
    ``reset=True`` the encoders are fitted in one pass over it, else the estimator's."""
    if reset:
        features, targets, y, n_rows = fit_source_encoders(estimator, source)
    else:
        features, targets = estimator._feature_encoder, estimator._target_encoder
        y = _target_frame(source, targets.names)
        n_rows = len(y)
    tables = None
    if estimator.class_weight is not None:
        tables = class_weight_tables(estimator.class_weight, targets, targets.transform(y))
    # The dataset reads the encoders from the estimator, which keeps them before training.
    return SourceDataset(source, estimator, n_rows, class_tables=tables), features, targets


def _target_frame(source, names):
    source.check_columns(names, "targets")
    parts = [batch.to_pandas() for batch in source.record_batches(list(names))]
    return pd.concat(parts, ignore_index=True)


def source_eval_dataset(estimator, source):
    """An ``eval_set`` given as a source, encoded as the training rows are."""
    check_source_call(estimator, "eval_set")
    names = estimator.task_names_
    y = _target_frame(source, names)
    tables = None
    if estimator.class_weight is not None:
        # As for in-memory validation rows: "balanced" counts their own labels.
        targets = estimator._target_encoder
        tables = class_weight_tables(estimator.class_weight, targets, targets.transform(y))
    return SourceDataset(source, estimator, len(y), class_tables=tables)


def prediction_dataset(estimator, X):
    """What ``predict`` reads: a :class:`SourceDataset` of the feature columns of a
    source, or the encoded tensor of in-memory ``X``."""
    if not is_source(X):
        return TensorBatchDataset(estimator._feature_encoder.transform(estimator, X))
    n_rows = X.num_rows()
    if n_rows is None:
        n_rows = sum(len(batch) for batch in X.record_batches([str(estimator.feature_names_in_[0])]))
    return SourceDataset(X, estimator, n_rows, with_targets=False)


def source_truth(source, estimator):
    """``(y, sample_weight)`` of a source, as ``score`` and ``task_scores`` take them."""
    weight = source.weight_column()
    frame = _target_frame(source, list(estimator.task_names_) + ([weight] if weight else []))
    sample_weight = None
    if weight:
        sample_weight = check_sample_weight(frame.pop(weight).to_numpy(), len(frame)).numpy()
    return frame, sample_weight
