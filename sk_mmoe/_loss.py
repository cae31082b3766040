"""The masked multi-task training loss: per-task losses on encoded targets, weighted and summed.

It reads what ``TargetEncoder`` (``_tasks.py``) produces: standardised regression values and
class indices, NaN where a label is missing.
"""

import torch
from torch import nn

from ._task_weights import UncertaintyWeights


class MultiTaskLoss(nn.Module):
    """Sum over tasks of the weighted, label-masked per-task losses.

    Each task's per-row loss is its task object's (:mod:`sk_mmoe.tasks`): squared error of
    the standardised target for regression, the logistic loss for binary tasks, ... A row
    whose label is missing (NaN) for a task does not count towards that task; a batch with
    no label for a task adds 0 for it.

    Parameters
    ----------
    tasks : sequence of fitted Task
    task_weights : sequence of float or "uncertainty"
        Fixed weights, or ``"uncertainty"`` for weights learned with the network
        (:class:`sk_mmoe._task_weights.UncertaintyWeights`, in the attribute
        ``uncertainty``, whose parameters the optimizer trains).
    """

    def __init__(self, tasks, task_weights):
        super().__init__()
        self.tasks = list(tasks)
        self.uncertainty = None
        if isinstance(task_weights, str) and task_weights == "uncertainty":
            self.uncertainty = UncertaintyWeights([task.uncertainty_factor for task in self.tasks])
            task_weights = [1.0] * len(self.tasks)
        self.register_buffer("task_weights", torch.as_tensor(task_weights, dtype=torch.float32))

    def per_task(self, outputs, targets, sample_weight=None):
        """Per-task mean losses, shape ``(n_tasks,)``.

        outputs: ``(batch, n_tasks, max_outputs)``; targets: ``(batch, n_tasks)``
        with NaN for a missing label; sample_weight: ``(batch,)``, ``(batch, n_tasks)``
        (a weight per row and task) or None.
        """
        return self.task_means(*self.per_task_sums(outputs, targets, sample_weight))

    def per_task_sums(self, outputs, targets, sample_weight=None):
        """Per-task weighted loss sums and labelled weights, each of shape ``(n_tasks,)``.

        Their ratio is :meth:`per_task`; distributed training divides each rank's sums by
        the whole global batch's labelled weights.
        """
        # Every op here runs once per training step; on a busy machine each one costs a
        # meeting of torch's threads, so the masking and weighting are done for all tasks
        # at once rather than per task.
        weights = self.label_weights(targets, sample_weight, outputs.dtype)
        safe_targets = targets.nan_to_num(0.0)
        row_losses = [
            task.loss(outputs[:, t, : task.n_outputs], safe_targets[:, t])
            for t, task in enumerate(self.tasks)
        ]
        weighted = (torch.stack(row_losses, dim=1) * weights).sum(dim=0)
        return weighted, weights.sum(dim=0)

    @staticmethod
    def label_weights(targets, sample_weight=None, dtype=None):
        """Each row's weight in each task's loss, ``(batch, n_tasks)``: its sample weight
        (``(batch,)`` or ``(batch, n_tasks)``) where the task has a label, 0 where it is
        missing."""
        weights = targets.isnan().logical_not_().to(dtype or targets.dtype)
        if sample_weight is not None:
            weights = weights * (sample_weight if sample_weight.dim() == 2 else sample_weight.unsqueeze(1))
        return weights

    @staticmethod
    def task_means(weighted_sums, label_weights):
        """Each task's mean loss from its weighted sum and labelled weight."""
        # Clamping keeps a batch without any label for a task at exactly 0 instead of 0/0.
        return weighted_sums / label_weights.clamp_min(1e-12)

    def combine(self, per_task, labelled=None):
        """The training loss: per-task losses weighted by ``task_weights`` and summed.

        ``labelled``, ``(n_tasks,)`` bool, says which tasks have a label in the batch;
        only learned (uncertainty) weights use it.
        """
        if self.uncertainty is not None:
            return self.uncertainty(per_task, labelled)
        return per_task @ self.task_weights

    def effective_weights(self):
        """The weight of each task's loss in the training loss now, shape (n_tasks,)."""
        if self.uncertainty is not None:
            return self.uncertainty.weights().detach()
        return self.task_weights.clone()

    def forward(self, outputs, targets, sample_weight=None):
        return self.combine(self.per_task(outputs, targets, sample_weight))
