"""Groups of parallel sub-networks (experts, gates, towers), one ``einsum`` per layer.

This module imports torch only. A layer that reads the network's input also accepts a
:class:`ShiftedSparse` batch, so sparse features stay sparse through the first layer of
the experts and gates: its cost then grows with the batch's non-zeros, not its width.
"""

import math
from typing import NamedTuple

import torch
from torch import nn


class ShiftedSparse(NamedTuple):
    """A batch of standardised features held as ``values - shift``, both sparse.

    Standardising ``(x - mean) / scale`` makes every implicit zero of a sparse ``x`` a
    non-zero; written as ``x / scale - mean / scale`` it keeps ``x``'s sparsity, and a
    linear layer applies the shift once per batch: ``values @ W - shift @ W``. The shift
    is non-zero only in columns with a non-zero mean (none for one-hot columns).

    Attributes
    ----------
    values : torch.Tensor
        Sparse COO tensor of shape ``(batch, width)``; need not be coalesced (duplicate
        entries add up).
    shift : torch.Tensor or None
        Sparse COO tensor of shape ``(width,)``, subtracted from every row; None for 0.
    """

    values: torch.Tensor
    shift: torch.Tensor = None

    @property
    def shape(self):
        return self.values.shape

    def to_dense(self):
        dense = self.values.to_dense()
        return dense if self.shift is None else dense - self.shift.to_dense()


def _sparse_linear(x, weight):
    """``x.values @ weight[m] - x.shift @ weight[m]`` for every member m: ``(batch, m, out)``."""
    batch = x.shape[0]
    rows, columns = x.values._indices()
    values = x.values._values()
    if x.shift is not None:
        # The shift is one more row (index ``batch``), subtracted from the others below.
        shift_columns = x.shift._indices()[0]
        rows = torch.cat([rows, rows.new_full(shift_columns.shape, batch)])
        columns = torch.cat([columns, shift_columns])
        values = torch.cat([values, x.shift._values()])
    n_members, n_in, _ = weight.shape
    # The batch once per member, as a (n_members, batch + 1, n_in) sparse stack: a sparse
    # bmm never builds a (n_members, nnz, out) intermediate (2 GB for 1,024 rows of 500
    # non-zeros and 8 experts x 64), and duplicate entries add up.
    members = torch.arange(n_members, device=rows.device).repeat_interleave(len(values))
    stacked = torch.sparse_coo_tensor(
        torch.stack([members, rows.repeat(n_members), columns.repeat(n_members)]),
        values.repeat(n_members), (n_members, batch + 1, n_in), check_invariants=False,
    )
    summed = torch.bmm(stacked, weight)  # (n_members, batch + 1, out)
    return (summed[:, :batch] - summed[:, batch:]).transpose(0, 1)


class BatchedLinear(nn.Module):
    """``n_members`` independent linear layers applied in one ``einsum``.

    Parameters
    ----------
    n_members : int
        Number of independent layers (experts, gates or towers).
    in_features, out_features : int
        Sizes of each member's input and output.

    Notes
    -----
    The input is either shared by all members, shape ``(batch, in_features)`` (dense or
    a :class:`ShiftedSparse` batch), or given per member, shape ``(batch, n_members,
    in_features)``; the output is always ``(batch, n_members, out_features)``. Initialisation follows ``nn.Linear`` for each
    member, so a stack of one member is an ``nn.Linear`` in disguise.
    """

    def __init__(self, n_members, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_members, out_features))
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        # nn.Linear's default (kaiming_uniform with a=sqrt(5)) reduces to this bound.
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if isinstance(x, ShiftedSparse):
            out = _sparse_linear(x, self.weight)
        elif x.dim() == 2:
            out = torch.einsum("bi,mio->bmo", x, self.weight)
        else:
            out = torch.einsum("bmi,mio->bmo", x, self.weight)
        return out + self.bias


class BatchedMLP(nn.Module):
    """A stack of ``n_members`` MLPs with identical layer sizes, ReLU between layers.

    Parameters
    ----------
    n_members : int
        Number of independent MLPs.
    in_features : int
        Input size of each MLP.
    layer_sizes : sequence of int
        Output size of each layer, in order.
    activate_last : bool
        Whether the last layer is followed by a ReLU too (experts and tower bodies: yes;
        gate logits and output heads: no).
    """

    def __init__(self, n_members, in_features, layer_sizes, activate_last):
        super().__init__()
        sizes = [in_features, *layer_sizes]
        self.layers = nn.ModuleList(
            BatchedLinear(n_members, n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:])
        )
        self.activate_last = activate_last
        self.out_features = sizes[-1]

    def forward(self, x):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last or self.activate_last:
                x = torch.relu(x)
        if isinstance(x, ShiftedSparse):
            x = x.to_dense()
        if x.dim() == 2:
            # No layers at all: present the shared input per member for a uniform shape.
            x = x.unsqueeze(1)
        return x
