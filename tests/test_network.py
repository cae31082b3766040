import pytest
import torch

from sk_mmoe._network import BatchedMLP, MMoENetwork, gate_dropout_mask


def reference_expert_loop(mlp, x):
    """Each member's MLP computed on its own, as peer libraries do with a Python loop."""
    outputs = []
    for m in range(mlp.layers[0].weight.shape[0]):
        h = x
        for i, layer in enumerate(mlp.layers):
            h = h @ layer.weight[m] + layer.bias[m]
            if i < len(mlp.layers) - 1 or mlp.activate_last:
                h = torch.relu(h)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def test_batched_experts_equal_a_per_expert_loop():
    torch.manual_seed(0)
    experts = BatchedMLP(5, 7, [16, 8], activate_last=True)
    x = torch.randn(32, 7)
    torch.testing.assert_close(experts(x), reference_expert_loop(experts, x))


def test_batched_mlp_on_per_member_input_equals_loop():
    torch.manual_seed(1)
    towers = BatchedMLP(3, 4, [6], activate_last=False)
    x = torch.randn(10, 3, 4)
    expected = torch.stack(
        [x[:, m] @ towers.layers[0].weight[m] + towers.layers[0].bias[m] for m in range(3)], 1
    )
    torch.testing.assert_close(towers(x), expected)


def test_network_forward_equals_manual_mixture():
    torch.manual_seed(2)
    net = MMoENetwork(6, [1, 3], n_experts=4, expert_layer_sizes=(8,), tower_layer_sizes=(5,))
    net.eval()
    x = torch.randn(20, 6)
    experts = reference_expert_loop(net.experts, x)  # (batch, experts, hidden)
    out = net(x)
    for t in range(2):
        gate = torch.softmax(x @ net.gates.layers[0].weight[t] + net.gates.layers[0].bias[t], -1)
        mixed = (gate.unsqueeze(-1) * experts).sum(1)
        tower = torch.relu(mixed @ net.towers.layers[0].weight[t] + net.towers.layers[0].bias[t])
        head = tower @ net.heads.weight[t] + net.heads.bias[t]
        size = net.task_output_sizes[t]
        torch.testing.assert_close(out[:, t, :size], head[:, :size])


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_gate_dropout_mask_drops_each_expert_at_the_rate(rate):
    torch.manual_seed(0)
    mask = gate_dropout_mask((20000, 2, 8), rate)
    per_expert = mask.float().mean(dim=(0, 1))
    # All-dropped rows keep one expert, which lowers the rate by under rate**8.
    assert torch.allclose(per_expert, torch.full((8,), rate), atol=0.01)
    per_row = mask.float().mean(dim=-1)
    assert abs(per_row.mean().item() - rate) < 0.005
    assert per_row.std() > 0  # rows drop different numbers of experts


def test_gate_dropout_never_drops_every_expert():
    torch.manual_seed(0)
    mask = gate_dropout_mask((50000, 3, 2), 0.9)
    assert not mask.all(dim=-1).any()
    assert mask.any(dim=-1).float().mean() > 0.9  # the rate is still applied


def test_gate_dropout_renormalises_the_kept_weights():
    torch.manual_seed(3)
    net = MMoENetwork(5, [1, 1], n_experts=6, gate_dropout=0.5)
    x = torch.randn(300, 5)
    net.eval()
    full = net.gate_weights(x)
    net.train()
    torch.manual_seed(4)
    dropped = net.gate_weights(x)
    torch.testing.assert_close(dropped.sum(-1), torch.ones(300, 2))
    kept = dropped > 0
    assert (~kept).float().mean() > 0.3  # about half the entries are dropped
    expected = torch.where(kept, full, torch.zeros_like(full))
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(dropped, expected)


def test_gate_dropout_is_identity_in_eval_mode():
    torch.manual_seed(5)
    with_dropout = MMoENetwork(5, [1, 2], n_experts=4, gate_dropout=0.5)
    without = MMoENetwork(5, [1, 2], n_experts=4, gate_dropout=0.0)
    without.load_state_dict(with_dropout.state_dict())
    with_dropout.eval()
    without.eval()
    x = torch.randn(50, 5)
    torch.testing.assert_close(with_dropout(x), without(x))
    torch.testing.assert_close(with_dropout(x), with_dropout(x))


def test_architectures_share_one_code_path():
    x = torch.randn(9, 4)
    mmoe = MMoENetwork(4, [1, 3], n_experts=5, architecture="mmoe")
    omoe = MMoENetwork(4, [1, 3], n_experts=5, architecture="omoe")
    bottom = MMoENetwork(4, [1, 3], n_experts=5, architecture="shared_bottom")
    for net in (mmoe, omoe, bottom):
        net.eval()
        assert net(x).shape == (9, 2, 3)
    assert mmoe.gates.layers[-1].weight.shape[0] == 2  # one gate per task
    weights = omoe.gate_weights(x)
    torch.testing.assert_close(weights[:, 0], weights[:, 1])  # one shared gate
    assert bottom.gates is None and bottom.n_experts == 1
    torch.testing.assert_close(bottom.gate_weights(x), torch.ones(9, 2, 1))


def test_gate_hidden_layers():
    net = MMoENetwork(4, [1], n_experts=3, gate_layer_sizes=(7,))
    assert [layer.weight.shape for layer in net.gates.layers] == [(1, 4, 7), (1, 7, 3)]
    net.eval()
    torch.testing.assert_close(net.gate_weights(torch.randn(5, 4)).sum(-1), torch.ones(5, 1))


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="architecture must be one of"):
        MMoENetwork(4, [1], architecture="mixture")
