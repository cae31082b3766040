"""The MMoE network as a PyTorch module: batched experts, gates with gate dropout, towers.

This module imports torch only. Every group of parallel sub-networks (the experts, the
per-task gates, the per-task towers) is stored as one stack of weight tensors and applied
with one ``einsum`` per layer, so the cost does not grow with a Python loop over experts.
"""

import math

import torch
from torch import nn

ARCHITECTURES = ("mmoe", "omoe", "shared_bottom")


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
    The input is either shared by all members, shape ``(batch, in_features)``, or given
    per member, shape ``(batch, n_members, in_features)``; the output is always
    ``(batch, n_members, out_features)``. Initialisation follows ``nn.Linear`` for each
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
        if x.dim() == 2:
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
        if x.dim() == 2:
            # No layers at all: present the shared input per member for a uniform shape.
            x = x.unsqueeze(1)
        return x


def gate_dropout_mask(shape, rate, device=None, generator=None):
    """Draw which experts each gate row drops: ``True`` means dropped.

    Each entry is dropped independently with probability ``rate``; a row that would
    lose every expert keeps one, chosen uniformly, so the renormalised weights always
    exist.

    Parameters
    ----------
    shape : tuple of int
        ``(batch, n_gates, n_experts)``.
    rate : float
        Drop probability in ``[0, 1)``.
    device : torch.device, optional
    generator : torch.Generator, optional

    Returns
    -------
    mask : torch.BoolTensor of the given shape
    """
    mask = torch.rand(shape, device=device, generator=generator) < rate
    all_dropped = mask.all(dim=-1)  # (batch, n_gates)
    if all_dropped.any():
        n_experts = shape[-1]
        keep = torch.randint(n_experts, shape[:-1], device=device, generator=generator)
        restore = nn.functional.one_hot(keep, n_experts).bool() & all_dropped.unsqueeze(-1)
        mask = mask & ~restore
    return mask


class MMoENetwork(nn.Module):
    """Multi-gate Mixture-of-Experts with gate dropout, and its two baselines.

    Parameters
    ----------
    n_features : int
        Number of input features.
    task_output_sizes : sequence of int
        Output units per task: 1 for regression and binary tasks, K for K classes.
    n_experts : int, default=8
        Number of experts. Ignored by ``"shared_bottom"``, which has one bottom network.
    expert_layer_sizes : sequence of int, default=(64,)
        Hidden sizes of each expert (ReLU after every layer).
    gate_layer_sizes : sequence of int, default=()
        Hidden sizes of each gate before its softmax layer; empty is the paper's linear
        gate.
    tower_layer_sizes : sequence of int, default=(32,)
        Hidden sizes of each task's tower before its output layer.
    gate_dropout : float, default=0.1
        In training, each expert's gate weight is dropped with this probability for every
        row and gate independently, and the remaining weights renormalised (Zhao et al.,
        RecSys 2019). No effect in evaluation mode.
    architecture : {"mmoe", "omoe", "shared_bottom"}, default="mmoe"
        ``"mmoe"``: one gate per task; ``"omoe"``: one gate shared by all tasks;
        ``"shared_bottom"``: one shared network, no gates.
    embedding : nn.Module, optional
        An input layer applied to ``x`` first (e.g. ``FeatureEmbedding``); its
        ``out_features`` replaces ``n_features`` as the width the experts and gates read.

    Notes
    -----
    ``forward`` returns one tensor of shape ``(batch, n_tasks, max(task_output_sizes))``;
    task ``t`` uses the first ``task_output_sizes[t]`` entries of ``[:, t]``.
    """

    def __init__(
        self,
        n_features,
        task_output_sizes,
        n_experts=8,
        expert_layer_sizes=(64,),
        gate_layer_sizes=(),
        tower_layer_sizes=(32,),
        gate_dropout=0.1,
        architecture="mmoe",
        embedding=None,
    ):
        super().__init__()
        self.embedding = embedding
        if embedding is not None:
            n_features = embedding.out_features
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}; got {architecture!r}."
            )
        self.task_output_sizes = tuple(int(k) for k in task_output_sizes)
        self.n_tasks = len(self.task_output_sizes)
        self.architecture = architecture
        self.gate_dropout = float(gate_dropout)
        self.n_experts = 1 if architecture == "shared_bottom" else int(n_experts)

        self.experts = BatchedMLP(
            self.n_experts, n_features, expert_layer_sizes, activate_last=True
        )
        n_gates = {"mmoe": self.n_tasks, "omoe": 1, "shared_bottom": 0}[architecture]
        self.gates = None
        if n_gates:
            self.gates = BatchedMLP(
                n_gates, n_features, [*gate_layer_sizes, self.n_experts], activate_last=False
            )
        self.towers = BatchedMLP(
            self.n_tasks, self.experts.out_features, tower_layer_sizes, activate_last=True
        )
        self.heads = BatchedLinear(
            self.n_tasks, self.towers.out_features, max(self.task_output_sizes)
        )

    def _inputs(self, x):
        return x if self.embedding is None else self.embedding(x)

    def gate_weights(self, x):
        """Softmax gate weights, shape ``(batch, n_tasks, n_experts)``.

        Gate dropout is applied when the module is in training mode.
        """
        return self._gate_weights(self._inputs(x))

    def _gate_weights(self, x):
        batch = x.shape[0]
        if self.gates is None:
            return x.new_ones(batch, self.n_tasks, 1)
        logits = self.gates(x)  # (batch, n_gates, n_experts)
        if self.training and self.gate_dropout > 0 and self.n_experts > 1:
            dropped = gate_dropout_mask(logits.shape, self.gate_dropout, device=x.device)
            # Masking logits before the softmax equals dropping weights and renormalising.
            logits = logits.masked_fill(dropped, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return weights.expand(batch, self.n_tasks, self.n_experts)

    def forward(self, x):
        x = self._inputs(x)  # (batch, input width)
        expert_out = self.experts(x)  # (batch, n_experts, expert_hidden)
        weights = self._gate_weights(x)  # (batch, n_tasks, n_experts)
        mixed = torch.einsum("bte,beh->bth", weights, expert_out)  # (batch, n_tasks, hidden)
        return self.heads(self.towers(mixed))  # (batch, n_tasks, max_outputs)
