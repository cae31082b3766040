"""Gate arithmetic shared by every architecture: softmax with temperature, the two gate
dropout modes, and the importance (balancing) loss.

This module imports torch only.
"""

import torch
from torch import nn

GATE_DROPOUT_MODES = ("renormalize", "scale")


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


def dropped_gate_weights(logits, dropped, rate, mode):
    """Gate weights with the experts in ``dropped`` removed, in one of the two modes.

    ``"renormalize"`` masks the dropped logits before the softmax, which equals dropping
    the weights and renormalising the rest to sum to 1 (Zhao et al., RecSys 2019, as
    this library has always read it). A dropped expert's logit then gets no gradient
    from that row. ``"scale"`` is ordinary inverted dropout on the softmax output: the
    dropped weights become 0 and the kept ones are divided by ``1 - rate``, so rows no
    longer sum to 1 but their expectation is the undropped softmax; a dropped expert's
    logit still gets gradient through the kept experts' softmax terms, which pushes it
    down when they are the ones that help.

    Parameters
    ----------
    logits : torch.Tensor of shape (batch, n_gates, n_experts)
    dropped : torch.BoolTensor of the same shape
    rate : float
        The drop probability the mask was drawn with.
    mode : {"renormalize", "scale"}

    Returns
    -------
    weights : torch.Tensor of the same shape

    Examples
    --------
    >>> import torch
    >>> from sk_mmoe._gates import dropped_gate_weights
    >>> logits = torch.zeros(1, 1, 4)
    >>> dropped = torch.tensor([[[True, False, False, False]]])
    >>> dropped_gate_weights(logits, dropped, 0.5, "renormalize").tolist()
    [[[0.0, 0.3333333432674408, 0.3333333432674408, 0.3333333432674408]]]
    >>> dropped_gate_weights(logits, dropped, 0.5, "scale").tolist()
    [[[0.0, 0.5, 0.5, 0.5]]]
    """
    if mode == "renormalize":
        return torch.softmax(logits.masked_fill(dropped, float("-inf")), dim=-1)
    if mode == "scale":
        return torch.softmax(logits, dim=-1).masked_fill(dropped, 0.0) / (1.0 - rate)
    raise ValueError(f"gate_dropout_mode must be one of {GATE_DROPOUT_MODES}; got {mode!r}.")


def gate_softmax(logits, *, temperature=1.0, dropout=0.0, mode="renormalize", training=False):
    """``softmax(logits / temperature)`` over the last axis, with gate dropout in training.

    Parameters
    ----------
    logits : torch.Tensor of shape (batch, n_gates, n_experts)
    temperature : float, default=1.0
        Above 1 flattens the weights, below 1 sharpens them.
    dropout : float, default=0.0
        Drop probability of each expert per row and gate, in training only.
    mode : {"renormalize", "scale"}, default="renormalize"
        See :func:`dropped_gate_weights`.
    training : bool, default=False

    Returns
    -------
    weights : torch.Tensor of the same shape
    """
    logits = logits / temperature
    n_experts = logits.shape[-1]
    if not training or dropout <= 0 or n_experts == 1:
        return torch.softmax(logits, dim=-1)
    if mode == "renormalize":
        dropped = gate_dropout_mask(logits.shape, dropout, device=logits.device)
    else:
        # Literal dropout: a row may lose every expert, whose mixture is then 0.
        dropped = torch.rand(logits.shape, device=logits.device) < dropout
    return dropped_gate_weights(logits, dropped, dropout, mode)


def importance_loss(gate_weights, reduce=None):
    """Squared coefficient of variation of each expert's importance, averaged over gates.

    The importance of an expert is the sum of its gate weights over the batch (Shazeer
    et al., ICLR 2017, "Outrageously Large Neural Networks", eq. 6); the loss is
    ``CV(importance)^2 = var / mean^2`` (population variance), 0 when every expert gets
    the same total weight. Shazeer et al.'s second, *load* loss counts how often each
    expert is among a noisy top-k; with dense softmax gates every expert is always
    used, so load and importance coincide and only importance is computed.

    Parameters
    ----------
    gate_weights : sequence of torch.Tensor, each (batch, n_gates, n_experts)
        The training-time weights of every gate (groups may differ in ``n_experts``).
    reduce : callable, optional
        Maps the list of per-gate importances to their sums over the ranks of a
        distributed fit (:meth:`sk_mmoe._distributed.Run.global_sum`), so that the loss
        is the global batch's.

    Returns
    -------
    loss : torch.Tensor, a scalar
        The mean of the per-gate values over all gates.

    Examples
    --------
    >>> import torch
    >>> from sk_mmoe._gates import importance_loss
    >>> uniform = torch.full((8, 1, 4), 0.25)
    >>> float(importance_loss([uniform]))
    0.0
    >>> one_expert = torch.tensor([[[1.0, 0.0]]]).expand(8, 1, 2)
    >>> float(importance_loss([one_expert]))
    1.0
    """
    importances = [weights.sum(dim=0) for weights in gate_weights]  # (n_gates, n_experts)
    if reduce is not None:
        importances = reduce(importances)
    per_gate = []
    for importance in importances:
        mean = importance.mean(dim=-1)
        variance = importance.var(dim=-1, correction=0)
        per_gate.append(variance / mean.clamp_min(1e-12) ** 2)
    return torch.cat(per_gate).mean()
