import numpy as np
import pytest
import torch

from sk_mmoe import _embeddings as embeddings
from sk_mmoe._embeddings import FeatureEmbedding
from sk_mmoe._layers import ShiftedSparse


@pytest.fixture
def sparse_product(monkeypatch):
    """Every sparse batch takes the sparse product, however small."""
    monkeypatch.setattr(embeddings, "MAX_DENSIFIED_BATCH", 0)


@pytest.mark.parametrize("missing", [[False, False, False], [True, False, True]])
def test_a_sparse_batch_is_embedded_as_its_dense_form(missing, sparse_product):
    embedding = FeatureEmbedding([0.5, 0.0, -2.0], [2.0, 1.0, 4.0], missing)
    dense = torch.tensor([[1.0, 0.0, np.nan], [0.0, 1.0, 3.0], [np.nan, 0.0, 0.0]])
    out = embedding(dense.to_sparse())
    assert isinstance(out, ShiftedSparse)
    torch.testing.assert_close(out.to_dense(), embedding(dense))


def test_a_numeric_embedding_densifies_only_the_batch():
    edges = [np.array([-1.0, 0.0, 1.0])] * 2
    embedding = FeatureEmbedding([0.0, 0.0], [1.0, 1.0], [False, False],
                                 numeric_embedding="piecewise_linear", bin_edges=edges)
    dense = torch.tensor([[0.5, 0.0], [0.0, -0.3]])
    torch.testing.assert_close(embedding(dense.to_sparse()), embedding(dense))


def test_zero_mean_columns_give_an_unshifted_sparse_batch(sparse_product):
    # One-hot and other 0/1 columns keep mean 0: the batch carries no dense part at all.
    embedding = FeatureEmbedding([0.0, 0.0], [1.0, 1.0], [False, False])
    out = embedding(torch.tensor([[1.0, 0.0], [0.0, 1.0]]).to_sparse())
    assert out.shift is None
    shifted = FeatureEmbedding([0.0, 3.0], [1.0, 2.0], [False, False])
    assert shifted(torch.tensor([[1.0, 0.0]]).to_sparse()).shift._indices().tolist() == [[1]]


def test_a_small_sparse_batch_is_densified_and_a_wide_one_is_not():
    embedding = FeatureEmbedding([0.5] * 4, [2.0] * 4, [False] * 4)
    small = torch.eye(4).to_sparse()
    assert not isinstance(embedding(small), ShiftedSparse)
    torch.testing.assert_close(embedding(small), embedding(small.to_dense()))
    n_columns = embeddings.MAX_DENSIFIED_BATCH // 2 + 1
    wide = FeatureEmbedding([0.0] * n_columns, [1.0] * n_columns, [False] * n_columns)
    batch = torch.sparse_coo_tensor(torch.tensor([[0, 1], [5, 7]]), torch.ones(2), (2, n_columns))
    assert isinstance(wide(batch), ShiftedSparse)


def test_large_category_tables_train_sparsely_unless_nccl():
    rows = embeddings.MIN_SPARSE_TABLE_ROWS
    assert not embeddings.sparse_category_table(rows - 1)
    assert embeddings.sparse_category_table(rows)
    assert not embeddings.sparse_category_table(10**6, nccl=True)


def test_a_sparse_table_gives_the_dense_output_and_a_sparse_gradient():
    x = torch.tensor([[0.5, 2.0, 3.0], [1.5, 4.0, 2.0]])  # 1 numeric, 2 code columns
    layers = []
    for sparse in (False, True):
        torch.manual_seed(0)
        layers.append(FeatureEmbedding([0.0], [1.0], [False], [5, 6], sparse_categories=sparse))
    dense, sparse = layers
    torch.testing.assert_close(sparse(x), dense(x), rtol=0, atol=0)
    for layer in layers:
        layer(x).square().sum().backward()
    assert sparse.categories.weight.grad.is_sparse
    torch.testing.assert_close(sparse.categories.weight.grad.to_dense(),
                               dense.categories.weight.grad)
