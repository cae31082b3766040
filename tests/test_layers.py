import pytest
import torch

from sk_mmoe._layers import BatchedLinear, BatchedMLP, ShiftedSparse


def random_sparse(rows, columns, density, seed):
    generator = torch.Generator().manual_seed(seed)
    dense = torch.randn(rows, columns, generator=generator)
    dense[torch.rand(rows, columns, generator=generator) > density] = 0.0
    return dense


def test_a_sparse_batch_gives_the_dense_output_and_gradient():
    torch.manual_seed(0)
    layer = BatchedLinear(4, 30, 5)
    values = random_sparse(16, 30, 0.1, seed=1)
    shift = random_sparse(1, 30, 0.5, seed=4)[0]

    dense_out = layer(values - shift)
    dense_out.square().sum().backward()
    dense_grad = layer.weight.grad.clone()
    layer.weight.grad = None

    sparse_out = layer(ShiftedSparse(values.to_sparse(), shift.to_sparse()))
    sparse_out.square().sum().backward()
    torch.testing.assert_close(sparse_out, dense_out)
    torch.testing.assert_close(layer.weight.grad, dense_grad)


def test_duplicate_entries_of_an_uncoalesced_batch_add_up():
    layer = BatchedLinear(2, 3, 4)
    indices = torch.tensor([[0, 0, 1], [2, 2, 0]])
    uncoalesced = torch.sparse_coo_tensor(
        indices, torch.tensor([1.0, 2.0, 5.0]), (2, 3), check_invariants=False
    )
    assert not uncoalesced.is_coalesced()
    expected = layer(torch.tensor([[0.0, 0.0, 3.0], [5.0, 0.0, 0.0]]))
    torch.testing.assert_close(layer(ShiftedSparse(uncoalesced)), expected)


@pytest.mark.parametrize("layer_sizes", [[8, 3], []])
def test_an_mlp_reads_a_sparse_batch_like_its_dense_form(layer_sizes):
    torch.manual_seed(2)
    mlp = BatchedMLP(3, 12, layer_sizes, activate_last=False)
    values = random_sparse(6, 12, 0.3, seed=3)
    shift = torch.randn(12)
    torch.testing.assert_close(
        mlp(ShiftedSparse(values.to_sparse(), shift.to_sparse())), mlp(values - shift)
    )


def test_the_cost_follows_the_non_zeros_not_the_width():
    # A 10**6-wide batch with 20 stored entries: the intermediate is (members, nnz, out),
    # a dense batch would be 4 MB per row.
    layer = BatchedLinear(2, 10**6, 3)
    indices = torch.stack([torch.arange(20) % 4, torch.arange(20) * 49_999])
    batch = torch.sparse_coo_tensor(indices, torch.ones(20), (4, 10**6))
    out = layer(ShiftedSparse(batch))
    expected = torch.stack(
        [layer.weight[:, indices[1][indices[0] == row]].sum(1) for row in range(4)]
    ) + layer.bias
    torch.testing.assert_close(out, expected)
