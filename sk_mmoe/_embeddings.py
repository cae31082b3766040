"""The network's input layer: numeric scaling, missing-value flags and feature embeddings.

This module imports torch (and the paper authors' ``rtdl_num_embeddings``) only. It reads
the tensor built by ``_features.FeatureEncoder``: numeric columns (NaN = missing) followed
by integer category codes stored as floats.

Numeric embeddings follow Gorishniy et al., NeurIPS 2022, "On Embeddings for Numerical
Features in Tabular Deep Learning": ``"periodic"`` is their PLR embedding (periodic
activations of trained frequencies, then a per-feature linear layer and ReLU);
``"piecewise_linear"`` is their PLE over quantile bins of the training rows (version "B"
of ``rtdl_num_embeddings``: linear at initialisation, the piecewise part learnt). Both
come from ``rtdl_num_embeddings`` rather than a copy of our own, so they stay the
authors' tested code.
"""

import warnings

import numpy as np
import torch
from rtdl_num_embeddings import PeriodicEmbeddings, PiecewiseLinearEmbeddings
from torch import nn

from ._layers import ShiftedSparse

NUMERIC_EMBEDDINGS = ("periodic", "piecewise_linear")
# "auto" embeds numeric columns up to this many; wider inputs would grow 16-fold.
MAX_AUTO_EMBEDDED_COLUMNS = 100
# ... and from this many training rows: on fewer, the plain value did as well or better.
MIN_AUTO_EMBEDDED_ROWS = 1_000
# A sparse batch with at most this many entries in its dense form (16 MiB of float32) is
# densified: dense matmuls beat the sparse product at that size (census one-hot, 10,000
# x 491 at 8% non-zero, trained 4-5x slower through the sparse product), while a batch of
# 256 rows of 200,000 columns (200 MiB dense) stays sparse.
MAX_DENSIFIED_BATCH = 2**22
# Largest embedding of one categorical column (ID columns with 10**5 levels get this).
MAX_CATEGORY_DIM = 16
# A categorical table of at least this many rows (all columns' levels + 2 reserved rows
# each) gets sparse gradients and its own lazy Adam step: see sparse_category_table.
MIN_SPARSE_TABLE_ROWS = 50_000


def sparse_category_table(n_rows, nccl=False):
    """Whether the categorical embedding table of ``n_rows`` rows trains sparsely.

    A dense gradient of the table, the optimizer's update of every row and (under DDP)
    the all-reduce of the whole table cost time in proportion to the table, at every
    step, although a batch touches at most ``batch x n_categorical`` rows. From
    :data:`MIN_SPARSE_TABLE_ROWS` rows on, the table is an ``nn.Embedding(sparse=True)``
    stepped by ``torch.optim.SparseAdam``, which costs the rows of the batch only. On one
    thread, a step of a 3-column table into a 64-unit layer (batch 256) took 1.8 ms dense
    and 3.3 ms sparse at 16,384 rows, 5.7 and 3.3 ms at 65,536, and 124 and 4.8 ms at
    10**6: below about 50,000 rows the dense table is as fast, and keeps the
    ``optimizer`` the user chose for every parameter. NCCL cannot all-reduce sparse
    gradients (pytorch/pytorch#111422), so a distributed fit on CUDA keeps the table
    dense.

    Examples
    --------
    >>> from sk_mmoe._embeddings import sparse_category_table
    >>> sparse_category_table(1_000), sparse_category_table(1_000_002)
    (False, True)
    """
    return n_rows >= MIN_SPARSE_TABLE_ROWS and not nccl


def category_embedding_dim(n_levels):
    """Embedding size of a categorical column with ``n_levels`` table rows.

    ``min(16, round(1.6 * n_levels ** 0.56))`` (the rule of thumb of fast.ai's tabular
    models): 3 for a binary column (2 levels + 2 reserved rows), 6 for 10 levels, 16 from
    about 60 levels on.

    Examples
    --------
    >>> from sk_mmoe._embeddings import category_embedding_dim
    >>> [category_embedding_dim(n) for n in (4, 12, 100, 100_000)]
    [3, 6, 16, 16]
    """
    return int(min(MAX_CATEGORY_DIM, max(1, round(1.6 * n_levels**0.56))))


def resolve_numeric_embedding(numeric_embedding, n_numeric, sparse, n_samples):
    """The embedding ``"auto"`` stands for: piecewise-linear for dense, narrow numeric X
    of at least 1,000 training rows, None otherwise.

    The row threshold was chosen on validation rows (issue 19). Below it, the plain
    standardised value did as well or better: on tiny smooth problems (100-150 training
    rows, mean of 10 draws) no embedding scored +0.013 accuracy against piecewise-linear
    on a linear 3-class problem, +0.005 on breast cancer, +0.003 on wine and -0.004 on
    iris (one row of 25 in one draw), and on penguins (172 rows, 2 seeds) it was better
    on 2 of 3 tasks (species +0.015 accuracy, body mass +0.007 R², sex -0.003 AUC); from
    1,500 rows on the embedding was even or ahead (ISLR Wage: wage +0.004 R², health
    insurance -0.016 AUC; census-income at 2,000 rows: income +0.011 AUC,
    never-married +0.002).

    Examples
    --------
    >>> from sk_mmoe._embeddings import resolve_numeric_embedding
    >>> resolve_numeric_embedding("auto", 12, sparse=False, n_samples=5_000)
    'piecewise_linear'
    >>> resolve_numeric_embedding("auto", 12, sparse=False, n_samples=150) is None
    True
    >>> resolve_numeric_embedding("auto", 500, sparse=False, n_samples=5_000) is None
    True
    """
    if numeric_embedding != "auto":
        return numeric_embedding
    if sparse or n_numeric > MAX_AUTO_EMBEDDED_COLUMNS or n_samples < MIN_AUTO_EMBEDDED_ROWS:
        return None
    return "piecewise_linear"


def quantile_bin_edges(values, n_bins):
    """Bin edges of one standardised numeric column: its quantiles, made strictly increasing.

    A column with fewer than two distinct values gets the single bin ``[v - 1, v + 1]``.
    """
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.array([-1.0, 1.0])
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)))
    if len(edges) < 2:
        return np.array([edges[0] - 1.0, edges[0] + 1.0])
    return edges


class FeatureEmbedding(nn.Module):
    """Turn the encoded feature tensor into the vector the experts and gates read.

    Parameters
    ----------
    numeric_mean, numeric_scale : sequence of float, length n_numeric
        Training statistics; numeric columns are standardised with them.
    numeric_missing : sequence of bool, length n_numeric
        Columns that held NaN at fit: each gets a 0/1 "was missing" indicator. NaN is
        imputed by the training mean (0 after standardising) in every column.
    category_sizes : sequence of int
        Table rows of each categorical column (levels seen at fit + 2 reserved rows).
    numeric_embedding : {None, "periodic", "piecewise_linear"}, default=None
    numeric_embedding_dim : int, default=16
        Size of each numeric feature's embedding.
    bin_edges : list of 1-D arrays, optional
        Per numeric column, for ``"piecewise_linear"``.
    frequency_scale : float, default=0.1
        Initial scale (sigma) of the periodic embedding's frequencies.
    sparse_categories : bool, default=False
        Whether the categorical table's gradient is sparse (``nn.Embedding(sparse=True)``,
        see :func:`sparse_category_table`); the optimizer must then take sparse
        gradients for ``categories.weight``.

    Notes
    -----
    Output width: ``n_numeric`` (no embedding) or ``n_numeric * numeric_embedding_dim``,
    plus one per flagged column, plus the sum of the categorical embedding sizes
    (:func:`category_embedding_dim`).
    """

    def __init__(
        self,
        numeric_mean,
        numeric_scale,
        numeric_missing,
        category_sizes=(),
        numeric_embedding=None,
        numeric_embedding_dim=16,
        bin_edges=None,
        frequency_scale=0.1,
        sparse_categories=False,
    ):
        super().__init__()
        self.n_numeric = len(numeric_mean)
        self.register_buffer("numeric_mean", torch.as_tensor(numeric_mean, dtype=torch.float32))
        self.register_buffer("numeric_scale", torch.as_tensor(numeric_scale, dtype=torch.float32))
        flagged = np.flatnonzero(np.asarray(numeric_missing, dtype=bool))
        self.register_buffer("flagged_columns", torch.as_tensor(flagged, dtype=torch.long))
        self.numeric = None
        numeric_width = self.n_numeric
        if numeric_embedding is not None and self.n_numeric:
            if numeric_embedding == "periodic":
                self.numeric = PeriodicEmbeddings(
                    self.n_numeric,
                    numeric_embedding_dim,
                    n_frequencies=numeric_embedding_dim,
                    frequency_init_scale=frequency_scale,
                    lite=False,
                )
            else:
                bins = [torch.as_tensor(edges, dtype=torch.float32) for edges in bin_edges]
                with warnings.catch_warnings():
                    # 0/1 and constant columns have a single bin: a linear term, as meant.
                    warnings.filterwarnings("ignore", message=".*has just two bin edges")
                    self.numeric = PiecewiseLinearEmbeddings(
                        bins, numeric_embedding_dim, activation=False, version="B"
                    )
            numeric_width = self.n_numeric * numeric_embedding_dim

        sizes = [int(n) for n in category_sizes]
        self.n_categorical = len(sizes)
        categorical_width = 0
        if sizes:
            dims = [category_embedding_dim(n) for n in sizes]
            width = max(dims)
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            # One table for all columns (one lookup per batch); column j uses its first
            # dims[j] entries, the rest are masked to 0.
            self.categories = nn.Embedding(int(sum(sizes)), width, sparse=sparse_categories)
            with torch.no_grad():
                # The reserved "unseen at fit" row (code 0) stays 0: no training row
                # reaches it, so it must not carry a random direction.
                self.categories.weight[torch.as_tensor(offsets)] = 0.0
            mask = torch.arange(width).unsqueeze(0) < torch.as_tensor(dims).unsqueeze(1)
            self.register_buffer("category_offsets", torch.as_tensor(offsets, dtype=torch.long))
            self.register_buffer("category_mask", mask.float())  # (n_categorical, width)
            categorical_width = self.n_categorical * width
        self.out_features = numeric_width + len(flagged) + categorical_width
        # For sparse batches: each numeric column's position among the flags, -1 if none.
        flag_position = torch.full((self.n_numeric,), -1, dtype=torch.long)
        flag_position[self.flagged_columns] = torch.arange(len(flagged))
        self.register_buffer("flag_position", flag_position, persistent=False)
        # A sparse batch is x / scale - shift; only columns with a non-zero mean shift it.
        shift = self.numeric_mean / self.numeric_scale
        self.register_buffer("sparse_shift", shift, persistent=False)
        shifted = torch.nonzero(self.numeric_mean).flatten()
        self.register_buffer("shifted_columns", shifted, persistent=False)

    def forward(self, x):
        if x.is_sparse:
            small = x.shape[0] * x.shape[1] <= MAX_DENSIFIED_BATCH
            if self.numeric is None and not self.n_categorical and not small:
                return self._sparse_forward(x)
            # An embedding reads every value of a feature, and a small batch is faster
            # through dense matmuls: densify this batch only (X itself stays sparse).
            x = x.to_dense()
        numeric = (x[:, : self.n_numeric] - self.numeric_mean) / self.numeric_scale
        parts = []
        if len(self.flagged_columns):
            # Each op is a point where torch's threads meet: none when no column had NaN.
            parts.append(torch.isnan(numeric[:, self.flagged_columns]).to(numeric.dtype))
        numeric = torch.nan_to_num(numeric, nan=0.0)
        if self.numeric is not None:
            numeric = self.numeric(numeric).flatten(1)  # (batch, n_numeric * dim)
        parts.insert(0, numeric)
        if self.n_categorical:
            codes = x[:, self.n_numeric :].long() + self.category_offsets
            embedded = self.categories(codes) * self.category_mask  # (batch, n_cat, width)
            parts.append(embedded.flatten(1))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def _sparse_forward(self, x):
        """The dense path's output for a sparse COO batch, as a :class:`ShiftedSparse`.

        Stored entries are divided by the scale; the mean enters as the shift, so that
        implicit zeros stay implicit. NaN becomes the mean (standardised 0) and sets the
        column's flag, as in the dense path.
        """
        rows, columns = x._indices()
        values = x._values() / self.numeric_scale[columns]
        missing = torch.isnan(values)
        values = torch.where(missing, self.sparse_shift[columns], values)
        flagged = missing & (self.flag_position[columns] >= 0)
        flag_columns = self.n_numeric + self.flag_position[columns[flagged]]
        indices = torch.cat([x._indices(), torch.stack([rows[flagged], flag_columns])], dim=1)
        values = torch.cat([values, values.new_ones(len(flag_columns))])
        width = self.n_numeric + len(self.flagged_columns)
        sparse = torch.sparse_coo_tensor(
            indices, values, (x.shape[0], width), check_invariants=False
        )
        if not len(self.shifted_columns):
            return ShiftedSparse(sparse)
        shift = torch.sparse_coo_tensor(
            self.shifted_columns[None], self.sparse_shift[self.shifted_columns], (width,),
            is_coalesced=True,
            check_invariants=False,
        )
        return ShiftedSparse(sparse, shift)
