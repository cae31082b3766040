"""The one place raw ``X`` is validated and turned into the tensor the network reads.

``FeatureEncoder`` mirrors ``TargetEncoder`` in ``_tasks.py``: it is fitted on the training
``X`` and holds what the network's input layer needs (which columns are numeric or
categorical, their statistics and vocabularies). Arrays and sparse matrices are numeric;
a pandas DataFrame may also hold category, object, string and bool columns, and NaN.

The output is one float32 tensor of shape ``(n_samples, n_numeric + n_categorical)``:
numeric columns first (NaN kept, standardised inside the network), then each categorical
column's integer code stored as a float (exact up to 2**24 levels). Codes 0 and 1 are
reserved for a level unseen at fit and for a missing value; levels seen at fit start at 2.
"""

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ._data import SparseRows
from ._embeddings import quantile_bin_edges, resolve_numeric_embedding
from ._frames import as_pandas
from ._state import StateError, decode_value, encode_value

UNKNOWN_CODE = 0
MISSING_CODE = 1
FIRST_LEVEL_CODE = 2
# float32 represents every integer up to 2**24 exactly; codes are stored as float32.
MAX_LEVELS = 2**24 - FIRST_LEVEL_CODE
# Quantile bins per numeric feature for numeric_embedding="piecewise_linear".
N_BINS = 48


def _is_numeric_column(column):
    """Whether a DataFrame column is a numeric feature (bool counts as 0/1)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return not pd.api.types.is_complex_dtype(dtype)
    if dtype == object:
        inferred = pd.api.types.infer_dtype(column, skipna=True)
        return inferred in ("integer", "floating", "mixed-integer-float", "boolean", "empty")
    return False


def _check_supported_dtype(column, name):
    dtype = column.dtype
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or dtype == object
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))
    ):
        return
    raise ValueError(
        f"X column {name!r} has dtype {dtype}, which is neither numeric, bool nor "
        "categorical (category, string, object). Convert it first, e.g. a datetime to "
        "numbers such as its year or day of week."
    )


def _numeric_values(column, name):
    try:
        values = column.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X column {name!r} ({column.dtype}) could not be read as numbers: {exc}") from exc
    if np.isinf(values).any():
        raise ValueError(
            f"Input X contains infinity in column {name!r}; numeric features must be finite "
            "(NaN is allowed and treated as missing)."
        )
    return values


def _standardisation(mean, std, n_present, indicator):
    """Per-column mean and scale from raw statistics (arrays), one rule for dense and sparse X.

    0/1 columns (bool, one-hot) stay as they are: standardising a rare indicator would
    give its few ones values of 30 and more. An empty column, and a constant one, get
    scale 1.
    """
    keep = ~indicator & (n_present > 0)
    scale = np.where(keep & np.isfinite(std) & (std > 0), std, 1.0)
    return np.where(keep, mean, 0.0), scale


def _sparse_statistics(matrix):
    """Raw ``(mean, std, n_present, indicator)`` of every column of a CSR matrix, NaN
    ignored and implicit entries 0, computed from the stored entries alone."""
    n_rows, n_columns = matrix.shape

    def count(columns, weights=None):
        return np.bincount(columns, weights, minlength=n_columns)

    values = matrix.data.astype(np.float64)
    nan = np.isnan(values)
    columns, values = matrix.indices[~nan], values[~nan]
    n_present = n_rows - count(matrix.indices[nan])
    mean = count(columns, values) / np.maximum(n_present, 1)
    # Two passes, as np.std: the stored deviations, then the implicit zeros' (0 - mean)**2.
    squares = count(columns, (values - mean[columns]) ** 2)
    implicit = n_present - count(columns)
    std = np.sqrt((squares + implicit * mean**2) / np.maximum(n_present, 1))
    indicator = count(columns, (values != 0) & (values != 1)) == 0
    return mean, std, n_present, indicator


def _dense_statistics(X_encoded, n_numeric):
    """Raw ``(mean, std, n_present, indicator)`` of the numeric columns, NaN ignored."""
    mean, std = np.zeros(n_numeric), np.zeros(n_numeric)
    n_present, indicator = np.zeros(n_numeric, int), np.zeros(n_numeric, bool)
    for k, column in enumerate(_numeric_columns(X_encoded, n_numeric)):
        present = column[~np.isnan(column)]
        n_present[k], indicator[k] = len(present), ((present == 0) | (present == 1)).all()
        if len(present):
            mean[k], std[k] = present.mean(), present.std()
    return mean, std, n_present, indicator


def _scipy_view(rows):
    """A scipy CSR matrix over a :class:`SparseRows`' arrays (no copy)."""
    return sp.csr_matrix(
        (rows.data.numpy(), rows.indices.numpy(), rows.indptr.numpy()), shape=rows.shape
    )


def _numeric_columns(X_encoded, n_numeric):
    """The numeric columns of an encoded X one at a time, as float64 (no float64 copy of
    all of X; a sparse X is read through one CSC copy of its non-zeros)."""
    if isinstance(X_encoded, SparseRows):
        csc = _scipy_view(X_encoded).tocsc()
        for k in range(csc.shape[1]):
            column = np.zeros(csc.shape[0])
            stored = slice(csc.indptr[k], csc.indptr[k + 1])
            column[csc.indices[stored]] = csc.data[stored]
            yield column
        return
    for k in range(n_numeric):
        yield X_encoded[:, k].numpy().astype(np.float64)


def _levels(column):
    """The sorted distinct non-missing values of a categorical column."""
    present = column[column.notna()]
    levels = pd.unique(present.to_numpy(dtype=object))
    try:
        return np.array(sorted(levels), dtype=object)
    except TypeError:
        # Mixed types (e.g. 1 and "a") cannot be sorted; first-seen order is deterministic.
        return np.asarray(levels, dtype=object)


class FeatureEncoder:
    """Validate raw ``X`` and encode it as the network's input tensor.

    Attributes (after ``fit``)
    --------------------------
    numeric_columns_ : list of int
        Positions in ``X`` of the numeric columns, in output order.
    categorical_columns_ : list of int
        Positions in ``X`` of the categorical columns, in output order.
    categories_ : list of ndarray
        The levels seen at fit for each categorical column.
    numeric_mean_, numeric_scale_ : ndarray of shape (n_numeric,)
        Per-column statistics of the training rows (NaN ignored; a constant column gets
        scale 1), used to standardise inside the network. Columns holding only 0 and 1
        (bool, one-hot) get mean 0 and scale 1: they enter as they are.
    numeric_missing_ : ndarray of bool, shape (n_numeric,)
        Which numeric columns held NaN at fit; the network adds an indicator for each.
    """

    def fit_transform(self, estimator, X, numeric_embedding=None):
        """Fit on ``X`` (checked by ``estimator._validated_features``) and encode it.

        ``numeric_embedding`` is the estimator's parameter; ``"auto"`` is resolved here
        (see :func:`~sk_mmoe._embeddings.resolve_numeric_embedding`), and the quantile
        bins a piecewise-linear embedding needs are fitted with the column statistics.
        """
        X_encoded = self._encode(estimator, X, reset=True)
        sparse = isinstance(X_encoded, SparseRows)
        n_numeric = len(self.numeric_columns_)
        if sparse:
            statistics = _sparse_statistics(_scipy_view(X_encoded))
        else:
            statistics = _dense_statistics(X_encoded, n_numeric)
        self._fit_numeric(
            statistics, X_encoded.shape[0], numeric_embedding, sparse,
            lambda: _numeric_columns(X_encoded, n_numeric),
        )
        return X_encoded

    def fit_statistics(self, names, numeric_columns, categorical_columns, categories,
                       statistics, n_rows, bin_rows, numeric_embedding=None):
        """Fit from statistics gathered elsewhere (a streaming pass over a data source).

        ``statistics`` is ``(mean, std, n_present, indicator)`` of the numeric columns, as
        the in-memory fit computes them; ``bin_rows`` a float32 array ``(rows,
        n_numeric)`` of rows (all of them, or a uniform sample) the quantile bins are
        cut from. ``names`` are the feature columns; ``numeric_columns`` and
        ``categorical_columns`` positions among them; ``categories`` each categorical
        column's kept levels.
        """
        self.numeric_columns_ = list(numeric_columns)
        self.categorical_columns_ = list(categorical_columns)
        self.categories_ = list(categories)
        self._check_level_counts(names)
        self._fit_numeric(
            statistics, n_rows, numeric_embedding, False,
            lambda: (bin_rows[:, k].astype(np.float64) for k in range(bin_rows.shape[1])),
        )
        return self

    def _fit_numeric(self, statistics, n_rows, numeric_embedding, sparse, columns):
        """The numeric columns' fitted state; ``columns()`` yields them one at a time as
        float64 for the quantile bins."""
        mean, std, n_present, indicator = statistics
        self.numeric_embedding_ = resolve_numeric_embedding(
            numeric_embedding, len(self.numeric_columns_), sparse, n_rows
        )
        mean, scale = _standardisation(mean, std, n_present, indicator)
        self.numeric_mean_, self.numeric_scale_ = mean, scale
        self.numeric_missing_ = n_present < n_rows
        if self.numeric_embedding_ == "piecewise_linear":
            self.bin_edges_ = [
                quantile_bin_edges((column - mean[k]) / scale[k], N_BINS)
                for k, column in enumerate(columns())
            ]

    def _check_level_counts(self, names):
        for j, levels in zip(self.categorical_columns_, self.categories_):
            if len(levels) > MAX_LEVELS:
                raise ValueError(
                    f"X column {names[j]!r} has {len(levels)} categories; at most "
                    f"{MAX_LEVELS} are supported."
                )

    def transform(self, estimator, X):
        """Encode ``X`` with the state fitted on the training rows."""
        return self._encode(estimator, X, reset=False)

    @property
    def category_sizes(self):
        """Embedding table size of each categorical column (its levels + 2 reserved)."""
        return [len(levels) + FIRST_LEVEL_CODE for levels in self.categories_]

    def _encode(self, estimator, X, *, reset):
        X = as_pandas(X, "X")
        # The estimator checks X (and records n_features_in_, feature_names_in_ at fit);
        # only its own methods write its fitted attributes.
        X = estimator._validated_features(X, reset=reset)
        if isinstance(X, pd.DataFrame):
            return self._encode_frame(X, reset=reset)
        if np.isinf(X.data if sp.issparse(X) else X).any():
            raise ValueError("Input X contains infinity; features must be finite (NaN is allowed).")
        if reset:
            self.numeric_columns_ = list(range(X.shape[1]))
            self.categorical_columns_ = []
            self.categories_ = []
        if sp.issparse(X):
            # Kept sparse: the network's first layer reads its non-zeros only.
            X = sp.csr_matrix(X)
            if not X.has_canonical_format:
                X = X.copy()  # sum_duplicates sorts in place: never the caller's arrays
                X.sum_duplicates()
            return SparseRows.from_scipy(X)
        if not X.flags.writeable:
            # torch cannot wrap a read-only buffer (e.g. a memmap) without copying.
            X = np.array(X)
        return torch.from_numpy(np.ascontiguousarray(X))

    def _encode_frame(self, X, *, reset):
        # The columns are converted one at a time into one preallocated array, so X is
        # copied once.
        if X.shape[1] == 0:
            raise ValueError(
                f"X has 0 columns (shape={X.shape}) while a minimum of 1 feature is "
                "required."
            )
        if X.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
                "required."
            )
        names = [str(c) for c in X.columns]
        if reset:
            for j in range(X.shape[1]):
                _check_supported_dtype(X.iloc[:, j], names[j])
            kinds = [_is_numeric_column(X.iloc[:, j]) for j in range(X.shape[1])]
            self.numeric_columns_ = [j for j, numeric in enumerate(kinds) if numeric]
            self.categorical_columns_ = [j for j, numeric in enumerate(kinds) if not numeric]
            self.categories_ = [_levels(X.iloc[:, j]) for j in self.categorical_columns_]
            self._check_level_counts(names)
        else:
            for j in self.numeric_columns_:
                if not _is_numeric_column(X.iloc[:, j]) and X.iloc[:, j].notna().any():
                    raise ValueError(
                        f"X column {names[j]!r} was numeric at fit but now holds "
                        f"{X.iloc[:, j].dtype} values (e.g. {X.iloc[:, j].dropna().iloc[0]!r})."
                    )
        out = np.empty((X.shape[0], len(self.numeric_columns_) + len(self.categorical_columns_)), dtype=np.float32)
        for k, j in enumerate(self.numeric_columns_):
            out[:, k] = _numeric_values(X.iloc[:, j], names[j])
        offset = len(self.numeric_columns_)
        for k, (j, levels) in enumerate(zip(self.categorical_columns_, self.categories_)):
            out[:, offset + k] = self._category_codes(X.iloc[:, j], levels)
        return torch.from_numpy(out)

    # Fitted state as JSON-able data, for sk_mmoe.save_model (see sk_mmoe._state): every
    # fitted attribute, so that one added later (e.g. by the estimator) travels too.
    _REQUIRED_STATE = ("numeric_columns_", "categorical_columns_", "categories_",
                       "numeric_mean_", "numeric_scale_", "numeric_missing_")

    def get_state(self):
        """The fitted attributes (names ending in ``_``) as JSON-able data."""
        return {
            name: encode_value(value, f"feature state {name}")
            for name, value in vars(self).items()
            if name.endswith("_")
        }

    @classmethod
    def from_state(cls, state):
        """Rebuild a fitted encoder from :meth:`get_state`'s data, checking its shape."""
        encoder = cls()
        for name, value in state.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*_", name):
                raise StateError(f"feature encoding: unexpected field {name!r}.")
            setattr(encoder, name, decode_value(value, f"feature state {name}"))
        try:
            n_numeric = len(encoder.numeric_columns_)
            valid = (
                all(isinstance(j, int) for j in encoder.numeric_columns_ + encoder.categorical_columns_)
                and len(encoder.categories_) == len(encoder.categorical_columns_)
                and all(isinstance(levels, np.ndarray) for levels in encoder.categories_)
                and all(
                    isinstance(getattr(encoder, name), np.ndarray) and len(getattr(encoder, name)) == n_numeric
                    for name in ("numeric_mean_", "numeric_scale_", "numeric_missing_")
                )
            )
        except (AttributeError, TypeError):
            valid = False
        if not valid:
            raise StateError(
                f"feature encoding: missing or malformed fields (needs {list(cls._REQUIRED_STATE)})."
            )
        return encoder

    @staticmethod
    def _category_codes(column, levels):
        values = column.to_numpy(dtype=object)
        missing = pd.isna(column).to_numpy()
        codes = pd.Index(levels, dtype=object).get_indexer(values)
        codes = np.where(codes >= 0, codes + FIRST_LEVEL_CODE, UNKNOWN_CODE)
        return np.where(missing, MISSING_CODE, codes)
