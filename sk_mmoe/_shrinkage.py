"""Shrinking quantity predictions toward the training mean, by a factor chosen on the
validation rows.

Why: early stopping keeps the epoch where the *summed* validation loss is lowest. A task
with little signal (outpatient visits, card spending) is by then often fitting noise while
the others still improve, and predicts worse than its training mean would (test R² a little
below 0 on real tables: ``benchmarks/results/targets.md``). A network output of 0 is that
baseline for every quantity kind (the standardised mean for squared error, the mean under a
log link, the median for the robust losses), so scaling a task's output layer by a factor
``s`` in [0, 1] moves its predictions toward the baseline. ``s`` is the value that minimises
the task's own training loss on the validation rows early stopping already holds out: a task
whose predictions beat the baseline there keeps ``s`` near 1, one that does not falls back
toward its mean. Class tasks are left alone (scaling logits would change calibrated
probabilities, not move toward a baseline).
"""

import numpy as np
import torch

from ._data import split_targets

# Factors tried, from the baseline (0) to the trained output (1): a step of 0.01 moves a
# prediction by at most 1% of its distance to the baseline, far below the noise of
# choosing on a few hundred validation rows.
SHRINKAGE_GRID = np.linspace(0.0, 1.0, 101)


def validation_shrinkage(batches, criterion):
    """Per-task factors in [0, 1] (1 for class tasks) that minimise each quantity task's
    loss on validation rows.

    Parameters
    ----------
    batches : iterable of (raw, y_true)
        The trained network's outputs on the validation rows, ``(batch, n_tasks,
        max_outputs)``, with the batch's target tensor (encoded targets, then weight
        columns); batch by batch, so that the rows never need to be held at once.
    criterion : sk_mmoe._loss.MultiTaskLoss

    Returns
    -------
    numpy.ndarray of shape (n_tasks,)
    """
    tasks = criterion.tasks
    loss_sums = np.zeros((len(SHRINKAGE_GRID), len(tasks)))
    label_weights = np.zeros(len(tasks))
    with torch.no_grad():
        for raw, y_true in batches:
            targets, sample_weight = split_targets(y_true.to(raw.device), len(tasks))
            for g, factor in enumerate(SHRINKAGE_GRID):
                sums, weights = criterion.per_task_sums(raw * float(factor), targets, sample_weight)
                loss_sums[g] += sums.double().cpu().numpy()
            label_weights += weights.double().cpu().numpy()
    factors = np.ones(len(tasks))
    for t, task in enumerate(tasks):
        if task.is_classifier or not label_weights[t] > 0:
            continue
        losses = loss_sums[:, t] / label_weights[t]
        # The largest factor within float noise of the lowest loss: no shrinking unless it
        # lowers the loss. (Shrinking only on one standard error of evidence was tried: on
        # the validation rows of benchmarks/targets.py it shrank almost nothing and lost
        # the gain of benchmarks/results/targets_selection_no_shrinkage.md. Shrinking the
        # other way, by the factor's own standard error (positive-part James-Stein), was
        # tried too: on the same validation rows deviance rose on 7 of 9 count and amount
        # tasks, and on the Affairs table of benchmarks/target_storage.py --rows valid mean
        # R² fell on all three columns (affairs -0.015 -> -0.023, rating -0.001 -> -0.016),
        # since there the training mean itself scores below 0; both runs predate the small
        # tables' weight decay.)
        lowest = losses.min()
        near = np.flatnonzero(losses <= lowest + 1e-7 * max(abs(lowest), 1.0))
        factors[t] = SHRINKAGE_GRID[near[-1]]
    return factors


def scale_task_outputs(module, factors):
    """Multiply each task's output layer (weights and bias) by its factor, in place, so
    that every way of reading the network (predict, gate diagnostics, ONNX export) sees
    the shrunk outputs."""
    heads = module.heads
    scale = torch.as_tensor(factors, dtype=heads.weight.dtype, device=heads.weight.device)
    with torch.no_grad():
        heads.weight.mul_(scale[:, None, None])
        heads.bias.mul_(scale[:, None])
