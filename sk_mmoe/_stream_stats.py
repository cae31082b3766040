"""One streaming pass over a data source: what fits the feature and target encoders.

The pass reads every row once, in record batches, and keeps per numeric column the
present count, mean and sum of squared deviations (merged batch by batch with Chan et
al.'s update, exact up to float rounding), whether it held only 0 and 1, and a uniform
sample of at most :data:`BIN_SAMPLE_ROWS` rows for the quantile bins (all rows when
there are fewer: the bins are then those of the in-memory fit); per categorical column
the count of every level. The target columns are kept (a few numbers per row) and the
target encoder is fitted on them exactly as on an in-memory ``y``.
"""

import ctypes

import numpy as np
import pandas as pd

from ._features import FeatureEncoder, _numeric_values
from ._tasks import TargetEncoder
from .sources import _column_list, _pyarrow

# Rows the quantile bins are cut from, as scikit-learn's HistGradientBoosting bins on a
# 200,000-row subsample (rank error of a quantile about 1 / sqrt(rows), 0.002).
BIN_SAMPLE_ROWS = 200_000
# The sample is a statistic of the data: the same rows at every fit.
_SAMPLE_SEED = 0


def numeric_kinds(source, features):
    """Whether each feature column is numeric (else categorical), from the Arrow schema:
    numbers, bool and all-null columns are numeric, strings and dictionaries categorical,
    and ``source.categorical`` overrides; any other type is refused."""
    types = _pyarrow().types
    schema = source.schema()
    declared = set(_column_list(source.categorical, "categorical"))
    kinds = []
    for name in features:
        kind = schema.field(name).type
        if name in declared:
            kinds.append(False)
        elif types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind) or types.is_null(kind):
            kinds.append(True)
        elif types.is_string(kind) or types.is_large_string(kind) or types.is_dictionary(kind) or (
            getattr(types, "is_string_view", lambda _: False)(kind)
        ):
            kinds.append(False)
        else:
            raise ValueError(
                f"X column {name!r} has Arrow type {kind}, which is neither numeric, bool nor "
                "categorical (string, dictionary). Cast it first, e.g. a timestamp to numbers "
                "such as its year or day of week, or name it in categorical=."
            )
    return kinds


class Moments:
    """Present count, mean and sum of squared deviations of columns seen in batches
    (NaN missing), merged with Chan et al.'s pairwise update; and whether each column
    held only 0 and 1."""

    def __init__(self, n_columns):
        self.count = np.zeros(n_columns)
        self.mean = np.zeros(n_columns)
        self.squares = np.zeros(n_columns)
        self.indicator = np.ones(n_columns, dtype=bool)

    def add(self, values):
        present = ~np.isnan(values)
        count = present.sum(axis=0)
        mean = np.where(present, values, 0.0).sum(axis=0) / np.maximum(count, 1)
        squares = np.square(np.where(present, values - mean, 0.0)).sum(axis=0)
        total = self.count + count
        delta = mean - self.mean
        share = count / np.maximum(total, 1)
        self.mean = self.mean + delta * share
        self.squares = self.squares + squares + np.square(delta) * self.count * share
        self.count = total
        self.indicator &= ((values == 0) | (values == 1) | ~present).all(axis=0)

    def statistics(self):
        """``(mean, std, n_present, indicator)`` as the in-memory fit computes them."""
        std = np.sqrt(self.squares / np.maximum(self.count, 1))
        return self.mean, std, self.count.astype(int), self.indicator


class RowSample:
    """A uniform sample of at most ``capacity`` rows: the rows with the smallest random
    keys (a bottom-k sample, which two samples' union merges); every row while fewer."""

    def __init__(self, capacity, n_columns, seed=_SAMPLE_SEED):
        self.capacity = capacity
        self.rng = np.random.default_rng(seed)
        self.rows = np.empty((0, n_columns), dtype=np.float32)
        self.keys = np.empty(0)

    def add(self, rows):
        keys = self.rng.random(len(rows))
        if len(self.keys) >= self.capacity:
            below = keys < self.keys.max()
            rows, keys = rows[below], keys[below]
        rows = np.concatenate([self.rows, rows])
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.capacity:
            keep = np.sort(np.argpartition(keys, self.capacity - 1)[: self.capacity])
            rows, keys = rows[keep], keys[keep]
        self.rows, self.keys = rows, keys


def _add_counts(counts, column):
    values = column.value_counts(dropna=True)
    for level, count in zip(values.index.tolist(), values.to_numpy().tolist()):
        counts[level] = counts.get(level, 0) + count


def _kept_levels(counts, min_frequency):
    kept = [level for level, count in counts.items() if count >= min_frequency]
    try:
        return np.array(sorted(kept), dtype=object)
    except TypeError:
        # Mixed types (e.g. 1 and "a") cannot be sorted, as in the in-memory fit.
        return np.array(kept, dtype=object)


def fit_source_encoders(estimator, source):
    """``(feature encoder, target encoder, y, n_rows)`` fitted in one pass over ``source``;
    ``y`` is the target columns as a DataFrame. The estimator records ``n_features_in_``
    and ``feature_names_in_`` from the feature columns."""
    features = source.feature_columns()
    targets = source.target_columns()
    if not targets:
        raise ValueError(
            f"fit needs the target columns of the source: {type(source).__name__}(..., "
            "targets=[...]) names them (y is not passed with a source)."
        )
    min_frequency = source.check_min_frequency()
    estimator._validated_features(pd.DataFrame(columns=features), reset=True)
    kinds = numeric_kinds(source, features)
    numeric = [j for j, is_numeric in enumerate(kinds) if is_numeric]
    categorical = [j for j, is_numeric in enumerate(kinds) if not is_numeric]
    moments = Moments(len(numeric))
    sample = RowSample(BIN_SAMPLE_ROWS, len(numeric))
    counts = [{} for _ in categorical]
    target_parts, n_rows = [], 0
    for batch in source.record_batches(features + targets):
        frame = batch.to_pandas()
        n_rows += len(frame)
        # float32 first, as the in-memory encoding stores the values.
        values = np.empty((len(frame), len(numeric)), dtype=np.float32)
        for k, j in enumerate(numeric):
            values[:, k] = _numeric_values(frame[features[j]], features[j])
        moments.add(values.astype(np.float64))
        sample.add(values)
        for level_counts, j in zip(counts, categorical):
            _add_counts(level_counts, frame[features[j]])
        target_parts.append(frame[targets])
    if n_rows == 0:
        raise ValueError(f"{type(source).__name__} holds no rows; fit needs at least one.")
    feature_encoder = FeatureEncoder().fit_statistics(
        features, numeric, categorical,
        [_kept_levels(level_counts, min_frequency) for level_counts in counts],
        moments.statistics(), n_rows, sample.rows, estimator.numeric_embedding,
    )
    y = _concatenated(target_parts)
    _release_free_memory()
    return feature_encoder, TargetEncoder(estimator.tasks).fit(y), y, n_rows


def _release_free_memory():
    """Give the pass's freed buffers back to the system before the target encoder's
    fit, whose copies of each target column (about four, transient) set the peak of
    the pass on long data: pyarrow's pool, and the C heap, which glibc keeps by default
    (10M rows x 20 columns: 1,065 MiB peak without this, 943 with it)."""
    _pyarrow().default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _concatenated(parts):
    """One frame of the batches' frames, built column by column and emptying ``parts``,
    so that the batches and the whole never all stand in memory at once."""
    columns = {}
    for name in list(parts[0].columns):
        columns[name] = pd.concat([part.pop(name) for part in parts], ignore_index=True)
    parts.clear()
    return pd.DataFrame(columns, copy=False)
