"""The MMoE family as one PyTorch module: batched experts, gates, towers.

This module imports torch only. Every group of parallel sub-networks (the shared experts,
the task-specific experts of all tasks, the per-task gates, the per-task towers) is stored
as one stack of weight tensors and applied with one ``einsum`` per layer (``_layers.py``),
so the cost does not grow with a Python loop over experts. All five architectures are
stacks of the same :class:`ExtractionLevel`: MMoE is one level without task-specific
experts, CGC one level with them, PLE several levels with a shared gate between them.
"""

import torch
from torch import nn

from ._gates import GATE_DROPOUT_MODES, gate_dropout_mask, gate_softmax, importance_loss
from ._layers import BatchedLinear, BatchedMLP, ShiftedSparse

ARCHITECTURES = ("mmoe", "omoe", "shared_bottom", "cgc", "ple")

__all__ = ["ARCHITECTURES", "BatchedLinear", "BatchedMLP", "ExtractionLevel", "MMoENetwork",
           "gate_dropout_mask"]


class ExtractionLevel(nn.Module):
    """One level of experts and gates: task-specific experts, shared experts, their gates.

    The level's experts are numbered task 0's ``n_task_experts`` experts first, then
    task 1's, ..., then the ``n_shared_experts`` shared ones. Task ``t``'s gate mixes its
    own experts and the shared ones (all experts when there are no task-specific ones);
    the optional shared gate (PLE's intermediate levels) mixes every expert of the level.

    Parameters
    ----------
    in_features : int
        Input size of the experts and gates.
    n_tasks : int
    n_task_experts : int
        Experts owned by each task (0 for MMoE and OMoE).
    n_shared_experts : int
        Experts shared by all tasks.
    expert_layer_sizes, gate_layer_sizes : sequence of int
    n_task_gates : int
        ``n_tasks`` (one gate per task), 1 (one gate shared by all tasks, OMoE) or 0 (no
        gate: the single shared expert feeds every task, shared-bottom).
    shared_gate : bool
        Whether the level also outputs a shared mixture for the next level.

    Notes
    -----
    ``forward(task_input, shared_input, gate)`` takes the tasks' inputs, ``(batch,
    in_features)`` at the first level or ``(batch, n_tasks, in_features)`` above it, the
    shared input ``(batch, in_features)`` and the function that turns logits into gate
    weights. It returns the per-task mixtures ``(batch, n_tasks, hidden)``, the shared
    mixture ``(batch, hidden)`` or None, each task's weights over all the level's experts
    ``(batch, n_tasks, n_experts)`` (0 for experts the task's gate cannot reach), and the
    list of every gate's weights over the experts it can reach, for the balancing loss.
    """

    def __init__(self, in_features, n_tasks, n_task_experts, n_shared_experts,
                 expert_layer_sizes, gate_layer_sizes, n_task_gates, shared_gate):
        super().__init__()
        self.n_tasks = n_tasks
        self.n_task_experts = n_task_experts
        self.n_experts = n_tasks * n_task_experts + n_shared_experts
        self.task_experts = None
        if n_task_experts:
            self.task_experts = BatchedMLP(
                n_tasks * n_task_experts, in_features, expert_layer_sizes, activate_last=True
            )
        self.experts = BatchedMLP(n_shared_experts, in_features, expert_layer_sizes,
                                  activate_last=True)
        self.out_features = self.experts.out_features
        self.gates = None
        if n_task_gates:
            self.gates = BatchedMLP(
                n_task_gates, in_features,
                [*gate_layer_sizes, n_task_experts + n_shared_experts], activate_last=False,
            )
        self.shared_gate = None
        if shared_gate:
            self.shared_gate = BatchedMLP(
                1, in_features, [*gate_layer_sizes, self.n_experts], activate_last=False
            )
        own = n_tasks * n_task_experts
        reachable = [
            [t * n_task_experts + j for j in range(n_task_experts)]
            + [own + s for s in range(n_shared_experts)]
            for t in range(n_tasks)
        ]
        # (n_tasks, n_task_experts + n_shared_experts): the level's expert behind each of
        # task t's gate columns. Rebuilt from the sizes, so not part of the state dict.
        self.register_buffer("reachable", torch.tensor(reachable), persistent=False)

    def expert_owner(self):
        """The task owning each of the level's experts, None for a shared expert."""
        own = [t for t in range(self.n_tasks) for _ in range(self.n_task_experts)]
        return own + [None] * (self.n_experts - len(own))

    def _spread(self, weights):
        """Gate weights over reachable experts -> over all experts, 0 where unreachable."""
        batch = weights.shape[0]
        if self.task_experts is None:
            return weights.expand(batch, self.n_tasks, self.n_experts)
        index = self.reachable.expand(batch, *self.reachable.shape)
        full = weights.new_zeros(batch, self.n_tasks, self.n_experts)
        return full.scatter(-1, index, weights)

    def forward(self, task_input, shared_input, gate, mix=True):
        batch = shared_input.shape[0]
        gates_seen = []
        if self.gates is None:
            weights = torch.ones(batch, self.n_tasks, 1, device=self.experts.layers[0].weight.device)
        else:
            reached = gate(self.gates(task_input))  # (batch, n_task_gates, n_reachable)
            gates_seen.append(reached)
            weights = self._spread(reached)  # (batch, n_tasks, n_experts)
        if not mix:
            return None, None, weights, gates_seen
        experts = self.experts(shared_input)  # (batch, n_shared_experts, hidden)
        if self.task_experts is not None:
            if isinstance(task_input, torch.Tensor) and task_input.dim() == 3:
                # Each task's experts read that task's mixture from the level below.
                task_input = task_input.repeat_interleave(self.n_task_experts, dim=1)
            own = self.task_experts(task_input)  # (batch, n_tasks * n_task_experts, hidden)
            experts = torch.cat([own, experts], dim=1)  # (batch, n_experts, hidden)
        mixed = torch.einsum("bte,beh->bth", weights, experts)  # (batch, n_tasks, hidden)
        shared = None
        if self.shared_gate is not None:
            shared_weights = gate(self.shared_gate(shared_input))  # (batch, 1, n_experts)
            gates_seen.append(shared_weights)
            shared = torch.einsum("be,beh->bh", shared_weights[:, 0], experts)
        return mixed, shared, weights, gates_seen


def _level_plan(architecture, n_tasks, n_experts, n_task_experts, n_levels):
    """Per level: (n_task_experts, n_shared_experts, n_task_gates, shared_gate)."""
    if architecture == "mmoe":
        return [(0, n_experts, n_tasks, False)]
    if architecture == "omoe":
        return [(0, n_experts, 1, False)]
    if architecture == "shared_bottom":
        return [(0, 1, 0, False)]
    if architecture == "cgc":
        return [(n_task_experts, n_experts, n_tasks, False)]
    return [(n_task_experts, n_experts, n_tasks, True)] * (n_levels - 1) + [
        (n_task_experts, n_experts, n_tasks, False)
    ]


class MMoENetwork(nn.Module):
    """Multi-gate Mixture-of-Experts, its baselines, and CGC / PLE, on one code path.

    Parameters
    ----------
    n_features : int
        Number of input features.
    task_output_sizes : sequence of int
        Output units per task: 1 for regression and binary tasks, K for K classes.
    n_experts : int, default=8
        Number of experts shared by all tasks (per level for ``"ple"``). Ignored by
        ``"shared_bottom"``, which has one bottom network.
    expert_layer_sizes : sequence of int, default=(64,)
        Hidden sizes of each expert (ReLU after every layer).
    gate_layer_sizes : sequence of int, default=()
        Hidden sizes of each gate before its softmax layer; empty is the paper's linear
        gate.
    tower_layer_sizes : sequence of int, default=(32,)
        Hidden sizes of each task's tower before its output layer.
    gate_dropout : float, default=0.1
        In training, each expert is dropped from each gate with this probability for
        every row independently (Zhao et al., RecSys 2019). No effect in evaluation mode.
    architecture : {"mmoe", "omoe", "shared_bottom", "cgc", "ple"}, default="mmoe"
        ``"mmoe"``: one gate per task over the shared experts; ``"omoe"``: one gate
        shared by all tasks; ``"shared_bottom"``: one shared network, no gates;
        ``"cgc"``: each task owns ``n_task_experts`` experts and its gate mixes them with
        the shared ones (Tang et al., RecSys 2020); ``"ple"``: ``n_levels`` CGC levels,
        the intermediate ones with a shared gate over all their experts.
    n_task_experts : int, default=1
        Experts owned by each task (per level), for ``"cgc"`` and ``"ple"`` only.
    n_levels : int, default=2
        Extraction levels of ``"ple"``; ignored otherwise (``"cgc"`` is one level).
    gate_dropout_mode : {"renormalize", "scale"}, default="renormalize"
        How a dropped expert leaves a gate; see :func:`sk_mmoe._gates.dropped_gate_weights`.
    gate_temperature : float, default=1.0
        Every gate computes ``softmax(logits / gate_temperature)``.
    gate_balance : float, default=0.0
        Coefficient of the importance loss (:func:`sk_mmoe._gates.importance_loss`) over
        all gates. When positive, each training-mode ``forward`` leaves the scaled loss
        in the attribute ``auxiliary_loss`` for the training objective to add.

    Attributes
    ----------
    levels : torch.nn.ModuleList of ExtractionLevel
    n_experts : int
        Experts of the last level: the columns of :meth:`gate_weights`.
    expert_owner : list
        The task index owning each of those experts, None for a shared expert.
    embedding : nn.Module, optional
        An input layer applied to ``x`` first (e.g. ``FeatureEmbedding``); its
        ``out_features`` replaces ``n_features`` as the width the experts and gates read.
    importance_reduce : callable or None
        None, except while a distributed fit trains the network: then it sums the gates'
        importances over the ranks (the ``reduce`` of
        :func:`sk_mmoe._gates.importance_loss`).

    Notes
    -----
    ``forward`` returns one tensor of shape ``(batch, n_tasks, max(task_output_sizes))``;
    task ``t`` uses the first ``task_output_sizes[t]`` entries of ``[:, t]``.
    """

    importance_reduce = None

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
        n_task_experts=1,
        n_levels=2,
        gate_dropout_mode="renormalize",
        gate_temperature=1.0,
        gate_balance=0.0,
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
        if gate_dropout_mode not in GATE_DROPOUT_MODES:
            raise ValueError(
                f"gate_dropout_mode must be one of {GATE_DROPOUT_MODES}; got "
                f"{gate_dropout_mode!r}."
            )
        self.task_output_sizes = tuple(int(k) for k in task_output_sizes)
        self.n_tasks = len(self.task_output_sizes)
        self.architecture = architecture
        self.gate_dropout = float(gate_dropout)
        self.gate_dropout_mode = gate_dropout_mode
        self.gate_temperature = float(gate_temperature)
        self.gate_balance = float(gate_balance)

        plan = _level_plan(architecture, self.n_tasks, int(n_experts), int(n_task_experts),
                           int(n_levels))
        levels, in_features = [], n_features
        for level_task_experts, n_shared, n_task_gates, shared_gate in plan:
            levels.append(ExtractionLevel(
                in_features, self.n_tasks, level_task_experts, n_shared, expert_layer_sizes,
                gate_layer_sizes, n_task_gates, shared_gate,
            ))
            in_features = levels[-1].out_features
        self.levels = nn.ModuleList(levels)
        self.n_experts = self.levels[-1].n_experts
        self.expert_owner = self.levels[-1].expert_owner()
        self.towers = BatchedMLP(self.n_tasks, in_features, tower_layer_sizes, activate_last=True)
        self.heads = BatchedLinear(
            self.n_tasks, self.towers.out_features, max(self.task_output_sizes)
        )

    def _inputs(self, x):
        if self.embedding is not None:
            return self.embedding(x)
        if x.is_sparse:
            return ShiftedSparse(x)
        return x

    def _gate(self, logits):
        return gate_softmax(logits, temperature=self.gate_temperature,
                            dropout=self.gate_dropout, mode=self.gate_dropout_mode,
                            training=self.training)

    def _extract(self, x, mix_last=True):
        """Run the levels: last mixtures, last task-gate weights, every gate's weights."""
        task_input, shared_input, gates_seen = x, x, []
        last = len(self.levels) - 1
        for i, level in enumerate(self.levels):
            task_input, shared_input, weights, seen = level(
                task_input, shared_input, self._gate, mix=mix_last or i < last
            )
            gates_seen += seen
        return task_input, weights, gates_seen

    def gate_weights(self, x):
        """Each task's gate weights over the last level's experts, ``(batch, n_tasks,
        n_experts)``; 0 for experts the task's gate cannot reach (other tasks' own
        experts in ``"cgc"`` and ``"ple"``).

        Gate dropout is applied when the module is in training mode.
        """
        return self._extract(self._inputs(x), mix_last=False)[1]

    def forward(self, x):
        x = self._inputs(x)  # (batch, input width)
        mixed, _, gates_seen = self._extract(x)  # mixed: (batch, n_tasks, hidden)
        if self.training and self.gate_balance > 0 and gates_seen:
            self.auxiliary_loss = self.gate_balance * importance_loss(
                gates_seen, reduce=self.importance_reduce
            )
        return self.heads(self.towers(mixed))  # (batch, n_tasks, max_outputs)
