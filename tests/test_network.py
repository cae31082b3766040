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
    experts = reference_expert_loop(net.levels[0].experts, x)  # (batch, experts, hidden)
    out = net(x)
    for t in range(2):
        gate = torch.softmax(x @ net.levels[0].gates.layers[0].weight[t] + net.levels[0].gates.layers[0].bias[t], -1)
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
    assert mmoe.levels[0].gates.layers[-1].weight.shape[0] == 2  # one gate per task
    weights = omoe.gate_weights(x)
    torch.testing.assert_close(weights[:, 0], weights[:, 1])  # one shared gate
    assert bottom.levels[0].gates is None and bottom.n_experts == 1
    torch.testing.assert_close(bottom.gate_weights(x), torch.ones(9, 2, 1))


def test_gate_hidden_layers():
    net = MMoENetwork(4, [1], n_experts=3, gate_layer_sizes=(7,))
    assert [layer.weight.shape for layer in net.levels[0].gates.layers] == [(1, 4, 7), (1, 7, 3)]
    net.eval()
    torch.testing.assert_close(net.gate_weights(torch.randn(5, 4)).sum(-1), torch.ones(5, 1))


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="architecture must be one of"):
        MMoENetwork(4, [1], architecture="mixture")


# -- CGC and PLE against a plain per-expert implementation ---------------------------------

def copied_member(mlp, m):
    """Member ``m`` of a BatchedMLP as an ordinary nn.Sequential, weights copied over."""
    layers = []
    for i, batched in enumerate(mlp.layers):
        linear = torch.nn.Linear(*batched.weight.shape[1:], dtype=batched.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(batched.weight[m].T)
            linear.bias.copy_(batched.bias[m])
        layers.append(linear)
        if i < len(mlp.layers) - 1 or mlp.activate_last:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def reference_ple(net, x):
    """CGC / PLE as Tang et al. describe it, one expert, gate and task at a time."""
    n_tasks = net.n_tasks
    task_inputs, shared_input = [x] * n_tasks, x
    for level in net.levels:
        k = level.n_task_experts
        n_shared = level.experts.layers[0].weight.shape[0]
        own = [[copied_member(level.task_experts, t * k + j)(task_inputs[t]) for j in range(k)]
               for t in range(n_tasks)]
        shared = [copied_member(level.experts, s)(shared_input) for s in range(n_shared)]
        mixtures = []
        for t in range(n_tasks):
            candidates = own[t] + shared
            gate = torch.softmax(copied_member(level.gates, t)(task_inputs[t]), dim=-1)
            mixtures.append(sum(gate[:, i:i + 1] * e for i, e in enumerate(candidates)))
        if level.shared_gate is not None:
            everything = [e for experts in own for e in experts] + shared
            gate = torch.softmax(copied_member(level.shared_gate, 0)(shared_input), dim=-1)
            shared_input = sum(gate[:, i:i + 1] * e for i, e in enumerate(everything))
        task_inputs = mixtures
    outputs = []
    for t in range(n_tasks):
        tower = copied_member(net.towers, t)(task_inputs[t])
        outputs.append(tower @ net.heads.weight[t] + net.heads.bias[t])
    return torch.stack(outputs, dim=1)


@pytest.mark.parametrize("architecture, n_levels", [("cgc", 1), ("ple", 2), ("ple", 3)])
def test_cgc_and_ple_equal_a_per_expert_reference(architecture, n_levels):
    torch.manual_seed(7)
    net = MMoENetwork(5, [1, 3, 1], n_experts=3, n_task_experts=2, n_levels=n_levels,
                      expert_layer_sizes=(6, 4), gate_layer_sizes=(5,), tower_layer_sizes=(3,),
                      architecture=architecture).double()
    net.eval()
    assert len(net.levels) == n_levels
    x = torch.randn(17, 5, dtype=torch.float64)
    torch.testing.assert_close(net(x), reference_ple(net, x), atol=1e-6, rtol=1e-6)


def test_cgc_gate_weights_show_own_and_shared_experts():
    torch.manual_seed(8)
    net = MMoENetwork(4, [1, 1, 2], n_experts=2, n_task_experts=2, architecture="cgc")
    net.eval()
    # Columns: task 0's two experts, task 1's, task 2's, then the two shared ones.
    assert net.n_experts == 8
    assert net.expert_owner == [0, 0, 1, 1, 2, 2, None, None]
    weights = net.gate_weights(torch.randn(30, 4))
    torch.testing.assert_close(weights.sum(-1), torch.ones(30, 3))
    for t in range(3):
        unreachable = [e for e, owner in enumerate(net.expert_owner) if owner not in (t, None)]
        assert (weights[:, t, unreachable] == 0).all()
        assert (weights[:, t, [2 * t, 2 * t + 1, 6, 7]] > 0).all()


def test_ple_intermediate_levels_have_a_shared_gate_over_all_experts():
    net = MMoENetwork(4, [1, 1], n_experts=3, n_task_experts=2, n_levels=3,
                      expert_layer_sizes=(5,), architecture="ple")
    first, middle, last = net.levels
    assert first.shared_gate.layers[-1].weight.shape == (1, 4, 7)  # 2 tasks * 2 + 3 shared
    assert middle.shared_gate.layers[-1].weight.shape == (1, 5, 7)
    assert last.shared_gate is None  # the towers read only the tasks' mixtures
    assert last.task_experts.layers[0].weight.shape == (4, 5, 5)  # reads the level below


def test_ple_gate_dropout_reaches_every_gate():
    torch.manual_seed(9)
    net = MMoENetwork(4, [1, 1], n_experts=3, n_task_experts=1, n_levels=2,
                      gate_dropout=0.5, architecture="ple")
    net.train()
    _, _, gates = net._extract(torch.randn(200, 4))
    assert len(gates) == 3  # level 1: task gates and shared gate; level 2: task gates
    for weights in gates:
        assert (weights == 0).float().mean() > 0.2
