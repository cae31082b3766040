import numpy as np
import pytest
import torch

from sk_mmoe._embeddings import FeatureEmbedding
from sk_mmoe._layers import ShiftedSparse


@pytest.mark.parametrize("missing", [[False, False, False], [True, False, True]])
def test_a_sparse_batch_is_embedded_as_its_dense_form(missing):
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


def test_zero_mean_columns_give_an_unshifted_sparse_batch():
    # One-hot and other 0/1 columns keep mean 0: the batch carries no dense part at all.
    embedding = FeatureEmbedding([0.0, 0.0], [1.0, 1.0], [False, False])
    out = embedding(torch.tensor([[1.0, 0.0], [0.0, 1.0]]).to_sparse())
    assert out.shift is None
    shifted = FeatureEmbedding([0.0, 3.0], [1.0, 2.0], [False, False])
    assert shifted(torch.tensor([[1.0, 0.0]]).to_sparse()).shift._indices().tolist() == [[1]]
