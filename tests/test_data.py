import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sk_mmoe._data import RowOutputs, SparseRows, TensorBatchDataset, split_targets


@pytest.fixture
def matrix():
    rng = np.random.RandomState(0)
    X = sp.random(40, 9, density=0.25, format="csr", random_state=rng, dtype=np.float32)
    X[5] = 0.0  # an empty row
    X.eliminate_zeros()
    return X


@pytest.mark.parametrize(
    "index", [slice(None), slice(3, 17), torch.tensor([5, 0, 39, 5, 12]), torch.tensor([], dtype=torch.long)]
)
def test_rows_of_sparse_features_match_the_dense_rows(matrix, index):
    rows = SparseRows.from_scipy(matrix)
    dense = torch.from_numpy(matrix.toarray())
    torch.testing.assert_close(rows[index].to_dense(), dense[index])
    torch.testing.assert_close(rows.take(index)[:].to_dense(), dense[index])


def test_a_subset_keeps_features_sparse_and_aligned(matrix):
    y = torch.arange(40.0).unsqueeze(1)
    dataset = TensorBatchDataset(SparseRows.from_scipy(matrix), y, torch.ones(40))
    subset = dataset.subset(torch.tensor([7, 2, 30]))
    assert isinstance(subset.X, SparseRows) and len(subset) == 3
    X, packed = subset.batch(slice(None))
    targets, weights = split_targets(packed, n_tasks=1)
    torch.testing.assert_close(X.to_dense(), torch.from_numpy(matrix[[7, 2, 30]].toarray()))
    assert targets[:, 0].tolist() == [7.0, 2.0, 30.0] and weights.tolist() == [1.0] * 3


def test_a_subset_shares_X_and_gathers_its_rows_per_batch():
    X = torch.arange(20.0).reshape(10, 2)
    dataset = TensorBatchDataset(X, torch.arange(10.0).unsqueeze(1))
    subset = dataset.subset(torch.tensor([8, 3, 5]))
    assert subset.X is X and len(subset) == 3  # no copy of X
    nested = subset.subset(torch.tensor([2, 0]))
    features, targets = nested.batch(slice(None))
    assert features.tolist() == [[10.0, 11.0], [16.0, 17.0]]
    assert targets[:, 0].tolist() == [5.0, 8.0]


def test_row_outputs_fill_one_tensor_in_row_order():
    outputs = RowOutputs(5)
    outputs.add(torch.ones(2, 3, 1))
    outputs.add(torch.full((3, 3, 1), 2.0, requires_grad=True))
    result = outputs.result()
    assert result.shape == (5, 3, 1) and not result.requires_grad
    assert result[:, 0, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
