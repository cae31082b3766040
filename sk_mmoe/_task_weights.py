"""Learned task weights: homoscedastic uncertainty weighting (Kendall et al., CVPR 2018).

This module imports torch only.
"""

import torch
from torch import nn

class UncertaintyWeights(nn.Module):
    """Combine per-task losses with a learned log-variance per task.

    With ``s_t = log sigma_t^2`` learned by the optimizer with the network, the
    training loss is ``sum_t c_t * exp(-s_t) * loss_t + s_t / 2``, with ``c_t = 1/2`` for
    regression tasks and ``c_t = 1`` for binary and multiclass tasks (Kendall, Gal and
    Cipolla, CVPR 2018, eqs. 7 and 10). A task with a larger loss learns a larger
    ``s_t`` and a smaller weight ``c_t * exp(-s_t)``; at the optimum of ``s_t`` the
    weight is ``1 / (2 loss_t)`` for either kind.

    Parameters
    ----------
    factors : sequence of float
        ``c_t`` of each task, its ``uncertainty_factor`` (:mod:`sk_mmoe.tasks`): Kendall et
        al.'s factor on ``exp(-s)``, 1/2 for a Gaussian likelihood (squared error), whose
        density gives ``1 / (2 sigma^2)``, and 1 for the other losses.

    Attributes
    ----------
    log_variance : torch.nn.Parameter of shape (n_tasks,)
        ``s_t``, starting at 0 (weights 1/2 and 1).

    Examples
    --------
    >>> import torch
    >>> from sk_mmoe._task_weights import UncertaintyWeights
    >>> weighting = UncertaintyWeights([0.5, 1.0])
    >>> weighting.weights().tolist()
    [0.5, 1.0]
    >>> weighting(torch.tensor([2.0, 0.5])).detach().item()
    1.5
    """

    def __init__(self, factors):
        super().__init__()
        factors = [float(f) for f in factors]
        self.log_variance = nn.Parameter(torch.zeros(len(factors)))
        self.register_buffer("factors", torch.tensor(factors, dtype=torch.float32))

    def weights(self):
        """The current weight ``c_t * exp(-s_t)`` of each task's loss, shape (n_tasks,)."""
        return self.factors * torch.exp(-self.log_variance)

    def forward(self, per_task, labelled=None):
        """The combined loss; ``labelled`` (n_tasks,) bool leaves out the ``s_t / 2`` of
        tasks without a label in the batch, whose loss is 0 and which would otherwise
        drive ``s_t`` down with nothing to weigh."""
        terms = self.weights() * per_task + 0.5 * self.log_variance
        if labelled is not None:
            terms = terms * labelled.to(terms.dtype)
        return terms.sum()
