"""Data sources: tables read in record batches, passed to ``fit``, ``predict`` and ``score``
in place of ``X`` when the data do not fit in memory.

A source is a small declarative object: where the rows are, which columns are targets,
features and row weights, and how to read them. It holds no open file and no data;
every pass over it opens its files again. The estimator never keeps a source: it streams
it once to fit the feature and target encodings (exact means and variances, category
levels, quantile bins from a uniform row sample) and then once per epoch to train.

:class:`ParquetSource` reads Parquet files row group by row group (pyarrow, the optional
``parquet`` extra: ``pip install "sk-mmoe[parquet]"``); :class:`ArrowSource` takes any
callable that yields Arrow record batches, so Polars, DuckDB, Spark and Dask can feed
the estimator.
"""

import glob
import os

import numpy as np

__all__ = ["ArrowSource", "DataSource", "ParquetSource"]

# Rows per record batch read from a Parquet row group: bounds the memory of one read.
READ_BATCH_ROWS = 65_536

_NOT_INDEXABLE = (
    "{name} streams its rows and cannot be indexed or split: scikit-learn's model "
    "selection (GridSearchCV, cross_validate, train_test_split) needs X in memory. Tune "
    "on an in-memory sample (e.g. pandas.read_parquet of a few files) and fit the chosen "
    "parameters on the source, or write separate training and validation files and pass "
    "the validation source as fit's eval_set."
)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(
            "Data sources need pyarrow: pip install \"sk-mmoe[parquet]\" (or pip install "
            "pyarrow)."
        ) from exc
    return pyarrow


def _column_list(value, name):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        columns = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a column name or a list of them; got {value!r}.") from None
    if not all(isinstance(column, str) for column in columns):
        raise TypeError(f"{name} must hold column names (str); got {columns!r}.")
    return columns


class DataSource:
    """Base class of the sources: the column roles and the checks common to all.

    Subclasses implement :meth:`schema` and :meth:`record_batches`.

    Parameters
    ----------
    targets : str or list of str, default=()
        The target columns, one task each (the ``y`` of ``fit``). Needed by ``fit`` and
        ``score``; ``predict`` reads the feature columns only.
    features : list of str or None, default=None
        The feature columns, in the model's order; None takes every column that is not a
        target or the weight column, in the table's order.
    categorical : list of str or None, default=None
        Columns to treat as categorical although they hold numbers (e.g. integer IDs).
        String and dictionary columns are categorical anyway; numbers and bool are numeric.
    sample_weight : str or None, default=None
        A column of non-negative row weights.
    category_min_frequency : int >= 1, default=1
        A level seen fewer times than this in the training rows gets no embedding row of
        its own: it is encoded as a level unseen at fit. On ID columns whose levels mostly
        appear once, 2 shrinks the table several times.
    """

    def __init__(self, targets=(), features=None, categorical=None, sample_weight=None,
                 category_min_frequency=1):
        self.targets = targets
        self.features = features
        self.categorical = categorical
        self.sample_weight = sample_weight
        self.category_min_frequency = category_min_frequency

    def schema(self):
        """The table's ``pyarrow.Schema``."""
        raise NotImplementedError

    def record_batches(self, columns, *, seed=None, rows=None):
        """Yield ``pyarrow.RecordBatch`` es holding ``columns``, every row once.

        ``seed`` (an int) asks for a new order of the source's reading units (row groups)
        drawn from it; None reads them in the table's order. ``rows=(start, stop)`` keeps
        the rows at those positions of that order only (a rank's slice).
        """
        raise NotImplementedError

    def num_rows(self):
        """The number of rows when the source knows it without a pass, else None."""
        return None

    shuffle_buffer_rows = 0

    # -- column roles ------------------------------------------------------------------

    def target_columns(self):
        return _column_list(self.targets, "targets")

    def weight_column(self):
        if self.sample_weight is not None and not isinstance(self.sample_weight, str):
            raise TypeError(f"sample_weight must be a column name or None; got {self.sample_weight!r}.")
        return self.sample_weight

    def feature_columns(self):
        """The feature columns, checked against the schema."""
        names = list(self.schema().names)
        targets, weight = self.target_columns(), self.weight_column()
        self.check_columns(targets + ([weight] if weight else []), "targets/sample_weight", names)
        if self.features is None:
            features = [n for n in names if n not in targets and n != weight]
        else:
            features = _column_list(self.features, "features")
            self.check_columns(features, "features", names)
            both = sorted(set(features) & set(targets + [weight]))
            if both:
                raise ValueError(f"column(s) {both} are both features and targets/sample_weight.")
        if not features:
            raise ValueError(f"{type(self).__name__} has no feature columns (columns: {names}).")
        self.check_columns(_column_list(self.categorical, "categorical"), "categorical", names)
        return features

    def check_columns(self, columns, role, names=None):
        """Raise ValueError naming the ``columns`` not in the table (``names``, read from
        the schema when not given)."""
        names = list(self.schema().names) if names is None else names
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: {role} column(s) {missing} are not in the table; its "
                f"columns are {names}."
            )

    def check_min_frequency(self):
        value = self.category_min_frequency
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"category_min_frequency must be an integer >= 1; got {value!r}.")
        return int(value)

    # -- what scikit-learn's indexing meets -----------------------------------------------

    def __array__(self, *args, **kwargs):
        raise TypeError(_NOT_INDEXABLE.format(name=type(self).__name__))

    def __getitem__(self, key):
        raise TypeError(_NOT_INDEXABLE.format(name=type(self).__name__))

    def __repr__(self):
        params = ", ".join(f"{key}={value!r}" for key, value in vars(self).items()
                           if not key.startswith("_"))
        return f"{type(self).__name__}({params})"


class ParquetSource(DataSource):
    """Rows of one or more Parquet files, read row group by row group.

    Every training epoch reads the row groups of all files in a new order drawn from the
    estimator's ``random_state``, and mixes their rows through a shuffle buffer of
    ``shuffle_buffer_rows`` rows; a file is opened for each row group it gives, so memory
    stays bounded by the buffer and a row group's read batches, not by the data. Rows that
    arrive sorted (by time, user or label) need a buffer larger than a sorted run, or
    files written in shuffled order.

    Parameters
    ----------
    path : str, path-like or list of them
        A Parquet file, a directory (its ``*.parquet`` files, recursively, in sorted
        order) or a list of files.
    targets, features, categorical, sample_weight, category_min_frequency
        See :class:`DataSource`.
    shuffle_buffer_rows : int >= 0, default=131072
        Rows mixed at once while training; 0 keeps the order within each row group.
    filesystem : pyarrow.fs.FileSystem or None, default=None
        Where the paths live (e.g. ``pyarrow.fs.S3FileSystem``); None: local files.

    See Also
    --------
    ArrowSource : any stream of Arrow record batches.

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, os
    >>> from sk_mmoe import ParquetSource
    >>> path = os.path.join(tempfile.mkdtemp(), "train.parquet")
    >>> pd.DataFrame({"x": np.arange(5.0), "y": np.arange(5.0)}).to_parquet(path)
    >>> source = ParquetSource(path, targets=["y"])
    >>> source.num_rows(), source.feature_columns()
    (5, ['x'])
    """

    def __init__(self, path, targets=(), features=None, categorical=None, sample_weight=None,
                 category_min_frequency=1, shuffle_buffer_rows=131_072, filesystem=None):
        super().__init__(targets, features, categorical, sample_weight, category_min_frequency)
        self.path = path
        self.shuffle_buffer_rows = shuffle_buffer_rows
        self.filesystem = filesystem

    def files(self):
        """The Parquet files, in reading order."""
        paths = [self.path] if isinstance(self.path, (str, os.PathLike)) else list(self.path)
        files = []
        for path in map(os.fspath, paths):
            if self.filesystem is None and os.path.isdir(path):
                found = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
                if not found:
                    raise ValueError(f"ParquetSource: directory {path!r} holds no *.parquet file.")
                files.extend(found)
            else:
                files.append(path)
        if not files:
            raise ValueError("ParquetSource: no file given.")
        return files

    def _open(self, file):
        return _pyarrow().parquet.ParquetFile(file, filesystem=self.filesystem)

    def row_groups(self):
        """``[(file, row group index, rows)]`` of all files, from their metadata."""
        units = []
        for file in self.files():
            metadata = self._open(file).metadata
            units.extend((file, g, metadata.row_group(g).num_rows) for g in range(metadata.num_row_groups))
        return units

    def schema(self):
        return self._open(self.files()[0]).schema_arrow

    def num_rows(self):
        return sum(rows for _, _, rows in self.row_groups())

    def record_batches(self, columns, *, seed=None, rows=None):
        units = self.row_groups()
        if seed is not None:
            order = np.random.default_rng(seed).permutation(len(units))
            units = [units[i] for i in order]
        start, stop = rows if rows is not None else (0, None)
        position = 0
        for file, group, n_rows in units:
            if position + n_rows <= start or (stop is not None and position >= stop):
                position += n_rows  # outside the slice: not even opened
                continue
            reader = self._open(file)
            missing = [c for c in columns if c not in reader.schema_arrow.names]
            if missing:
                raise ValueError(f"ParquetSource: file {file!r} has no column(s) {missing}.")
            batches = reader.iter_batches(
                batch_size=READ_BATCH_ROWS, row_groups=[group], columns=columns
            )
            yield from _sliced(batches, position, start, stop)
            position += n_rows


class ArrowSource(DataSource):
    """Rows from any producer of Arrow record batches.

    Parameters
    ----------
    batches : callable
        Called with no argument at the start of every pass (and once more for the
        schema, of which only the first batch is read); returns an iterable of
        ``pyarrow.RecordBatch`` (or a ``pyarrow.RecordBatchReader``, or a
        ``pyarrow.Table``), every row once, the same rows in every pass. For example
        ``lambda: duckdb_connection.execute(query).fetch_record_batch()``,
        ``lambda: polars_lazy_frame.collect().to_arrow().to_batches()``.
    targets, features, categorical, sample_weight, category_min_frequency
        See :class:`DataSource`.
    shuffle_buffer_rows : int >= 0, default=131072
        Rows mixed at once while training (the batches' own order is kept: a producer
        cannot be asked for another order).

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sk_mmoe import ArrowSource
    >>> table = pa.table({"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 1.0]})
    >>> ArrowSource(table.to_batches, targets="y").feature_columns()
    ['x']
    """

    def __init__(self, batches, targets=(), features=None, categorical=None, sample_weight=None,
                 category_min_frequency=1, shuffle_buffer_rows=131_072):
        super().__init__(targets, features, categorical, sample_weight, category_min_frequency)
        self.batches = batches
        self.shuffle_buffer_rows = shuffle_buffer_rows

    def _produced(self):
        if not callable(self.batches):
            raise TypeError(
                "ArrowSource's batches must be a callable returning record batches (called "
                f"once per pass); got {type(self.batches).__name__}."
            )
        produced = self.batches()
        pa = _pyarrow()
        if isinstance(produced, pa.Table):
            return iter(produced.to_batches())
        return iter(produced)

    def schema(self):
        first = next(self._produced(), None)
        if first is None:
            raise ValueError("ArrowSource: the producer yielded no record batch.")
        return first.schema

    def record_batches(self, columns, *, seed=None, rows=None):
        batches = (batch.select(columns) for batch in self._produced())
        if rows is None:
            yield from batches
        else:  # a producer cannot skip rows: read them all, keep the slice
            yield from _sliced(batches, 0, *rows)


def _sliced(batches, position, start, stop):
    """The rows of ``batches`` (the first at row ``position``) within ``[start, stop)``."""
    for batch in batches:
        low = max(start - position, 0)
        high = len(batch) if stop is None else min(stop - position, len(batch))
        position += len(batch)
        if high > low:
            yield batch.slice(low, high - low)


def is_source(X):
    """Whether ``X`` is a data source rather than in-memory data."""
    return isinstance(X, DataSource)
