"""Gate diagnostics: expert utilisation, polarization measures, and the history callback.

A gate *polarizes* when its softmax puts almost all weight on one expert; experts that no
gate uses are *dead*. These measures make both visible, per epoch in ``history_`` and on
any data afterwards.
"""

from numbers import Integral

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from ._warnings import warn

# A gate whose mean weight on one expert exceeds this is polarized.
POLARIZED_SHARE = 0.9
# An expert whose mean weight is below this for every task is dead.
DEAD_EXPERT_WEIGHT = 0.01


class GatePolarizationWarning(UserWarning):
    """A gate collapsed onto one expert, or most experts are used by no task.

    Examples
    --------
    To silence it (the measures stay in ``history_``):

    >>> import warnings
    >>> from sk_mmoe.diagnostics import GatePolarizationWarning
    >>> warnings.filterwarnings("ignore", category=GatePolarizationWarning)
    >>> warnings.resetwarnings()
    """


def _gate_weights(estimator, X):
    """Gate weights of a fitted model, or of a Pipeline ending in one (X is transformed)."""
    while isinstance(estimator, Pipeline):
        X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    return estimator.gate_weights(X)


def expert_utilization(estimator, X):
    """Mean gate weight of each expert for each task, on ``X``.

    Parameters
    ----------
    estimator : MMoERegressorClassifier or Pipeline
        A fitted model, or a fitted Pipeline that ends in one.
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    utilization : ndarray of shape (n_tasks, n_experts)
        Each row sums to 1. The columns are those of the model's ``gate_weights``; its
        ``expert_labels_`` says which are shared and which belong to a task.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier
    >>> from sk_mmoe.diagnostics import expert_utilization
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> model = MMoERegressorClassifier(n_experts=4, max_epochs=2, random_state=0)
    >>> model.fit(X, X[:, :2]).gate_weights(X).shape
    (100, 2, 4)
    >>> expert_utilization(model, X).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    >>> cgc = MMoERegressorClassifier(architecture="cgc", n_experts=2, n_task_experts=1,
    ...                               max_epochs=2, random_state=0).fit(X, X[:, :2])
    >>> cgc.expert_labels_
    [0, 1, 'shared', 'shared']
    >>> float(expert_utilization(cgc, X)[0, 1])  # task 0 cannot reach task 1's expert
    0.0
    """
    return _gate_weights(estimator, X).mean(axis=0)


def normalized_entropy(utilization):
    """Entropy of each task's mean utilisation over the experts, divided by log(n_experts).

    ``H_t = -sum_e u_te log u_te / log E``: 1 when a task spreads its weight evenly over all
    E experts, 0 when it puts everything on one. With one expert it is 1 by convention.

    Parameters
    ----------
    utilization : array-like of shape (n_tasks, n_experts)

    Returns
    -------
    entropy : ndarray of shape (n_tasks,)

    Examples
    --------
    >>> from sk_mmoe.diagnostics import normalized_entropy
    >>> normalized_entropy([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]).tolist()
    [1.0, 0.0]
    """
    u = np.asarray(utilization, dtype=float)
    n_experts = u.shape[-1]
    if n_experts == 1:
        return np.ones(u.shape[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(u > 0, u * np.log(u), 0.0)
    entropy = -terms.sum(axis=-1) / np.log(n_experts)
    return entropy + 0.0  # a one-expert gate gives -0.0; report it as 0.0


def polarized_row_share(gate_weights, threshold=POLARIZED_SHARE):
    """Share of rows whose largest gate weight exceeds ``threshold``, per task.

    Parameters
    ----------
    gate_weights : array-like of shape (n_samples, n_tasks, n_experts)
    threshold : float, default=0.9

    Returns
    -------
    share : ndarray of shape (n_tasks,)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mmoe.diagnostics import polarized_row_share
    >>> weights = np.array([[[0.95, 0.05]], [[0.5, 0.5]]])  # 2 rows, 1 task, 2 experts
    >>> polarized_row_share(weights).tolist()
    [0.5]
    """
    return (np.asarray(gate_weights).max(axis=-1) > threshold).mean(axis=0)


def dead_experts(utilization, threshold=DEAD_EXPERT_WEIGHT):
    """Indices of experts whose mean utilisation is below ``threshold`` for every task.

    Parameters
    ----------
    utilization : array-like of shape (n_tasks, n_experts)
    threshold : float, default=0.01

    Returns
    -------
    experts : list of int

    Examples
    --------
    >>> from sk_mmoe.diagnostics import dead_experts
    >>> dead_experts([[0.7, 0.295, 0.005], [0.5, 0.498, 0.002]])
    [2]
    """
    u = np.asarray(utilization)
    return np.flatnonzero((u < threshold).all(axis=0)).tolist()


def polarized_tasks(utilization, threshold=POLARIZED_SHARE):
    """Indices of tasks whose gate puts more than ``threshold`` of its mean weight on one
    expert.

    Parameters
    ----------
    utilization : array-like of shape (n_tasks, n_experts)
    threshold : float, default=0.9

    Returns
    -------
    tasks : list of int

    Examples
    --------
    >>> from sk_mmoe.diagnostics import polarized_tasks
    >>> polarized_tasks([[0.97, 0.02, 0.01], [0.4, 0.3, 0.3]])
    [0]
    """
    u = np.asarray(utilization)
    if u.shape[-1] == 1:
        return []
    return np.flatnonzero(u.max(axis=-1) > threshold).tolist()


def polarization_warning_message(task_names, utilization, gate_balance):
    """The text of the end-of-fit warning, or None when the gates look healthy.

    It warns when a task's gate is polarized (:func:`polarized_tasks`) or when more than
    half of the experts are dead (:func:`dead_experts`); dead experts are named alongside
    a polarized gate. Without a balancing loss (``gate_balance=0``) it suggests one: in
    our remedies study (20 paired seeds per setting, standardised inputs) it was the one
    remedy that prevented collapse in every seed.

    Examples
    --------
    >>> from sk_mmoe.diagnostics import polarization_warning_message
    >>> message = polarization_warning_message(["income"], [[0.95, 0.05]], gate_balance=0.0)
    >>> print(message)  # doctest: +NORMALIZE_WHITESPACE
    Gate polarization: the gate of task 'income' puts 95% of its weight on expert 0.
    Set gate_balance (e.g. 0.1) to keep the experts in use; a polarized gate did not cost
    accuracy in our study.
    >>> polarization_warning_message(["income"], [[0.6, 0.4]], gate_balance=0.0) is None
    True
    """
    utilization = np.asarray(utilization)
    if utilization.shape[-1] == 1:
        return None
    polarized = polarized_tasks(utilization)
    dead = dead_experts(utilization)
    # A few unused experts are common and harmless (with 8 or more experts nearly every
    # fit has one); the warning speaks up when most of the configured experts are unused.
    if len(dead) <= utilization.shape[-1] / 2:
        dead = [] if not polarized else dead
    if not polarized and not dead:
        return None
    parts = []
    for t in polarized:
        expert = int(utilization[t].argmax())
        parts.append(
            f"the gate of task {task_names[t]!r} puts {utilization[t, expert]:.0%} of its "
            f"weight on expert {expert}"
        )
    if dead:
        parts.append(
            f"expert(s) {dead} get under {DEAD_EXPERT_WEIGHT:.0%} of every task's weight"
        )
    advice = []
    if polarized and gate_balance == 0:
        # The model standardises numeric columns itself (unscaled inputs were the first
        # study's cause of collapse); with standardised inputs only the balancing loss
        # prevented collapse in every seed, and collapse itself did not cost accuracy.
        advice.append(
            "set gate_balance (e.g. 0.1) to keep the experts in use; a polarized gate did "
            "not cost accuracy in our study"
        )
    if dead:
        n_used = utilization.shape[-1] - len(dead)
        advice.append(f"fewer experts (n_experts={max(n_used, 1)}) may do as well")
    message = "Gate polarization: " + "; ".join(parts) + "."
    if not advice:
        return message
    advice = "; ".join(advice)
    return f"{message} {advice[0].upper() + advice[1:]}."


class GateUtilization(Callback):
    """Record gate diagnostics in ``history`` at the end of every epoch.

    The gates are evaluated (no dropout) on the validation rows when there are any, else
    on up to ``max_rows`` training rows spread evenly over the data. Per epoch it records
    ``gate_utilization`` (n_tasks × n_experts mean weights), ``gate_entropy`` (per task,
    see :func:`normalized_entropy`), ``gate_polarized_rows`` (per task, see
    :func:`polarized_row_share`) and ``dead_experts``, and, when the estimator's
    ``gate_balance`` is positive, ``gate_balance_loss``, the epoch's mean over its
    training batches. For ``"cgc"`` and ``"ple"`` the gates measured are those of the
    last level, which feed the towers. At the end of training it issues a
    :class:`GatePolarizationWarning` when a gate has polarized, or when more than half of
    the experts are dead (a few dead experts are common with many experts and are only
    recorded).

    Parameters
    ----------
    max_rows : int, default=2048
        Rows evaluated per epoch, which bounds the cost.
    warn : bool, default=True
        Whether to warn at the end of training.

    Examples
    --------
    It is on by default; to record on fewer rows, or to silence the warning:

    >>> from sk_mmoe import MMoERegressorClassifier
    >>> model = MMoERegressorClassifier(callbacks__gate_utilization__max_rows=512)
    >>> quiet = MMoERegressorClassifier(callbacks__gate_utilization__warn=False)
    """

    def __init__(self, max_rows=2048, warn=True):
        self.max_rows = max_rows
        self.warn = warn

    def initialize(self):
        rows = self.max_rows
        if not isinstance(rows, Integral) or isinstance(rows, bool) or rows < 1:
            raise ValueError(
                "GateUtilization's max_rows (callbacks__gate_utilization__max_rows) must be "
                f"an integer >= 1; got {self.max_rows!r}."
            )
        return super().initialize()

    def _rows(self, dataset_train, dataset_valid):
        dataset = dataset_valid if dataset_valid is not None and len(dataset_valid) else dataset_train
        if hasattr(dataset, "first_rows"):
            # A data source is not indexed: its first rows stand for it.
            return dataset.first_rows(self.max_rows)
        n_rows = len(dataset)
        index = slice(None)
        if n_rows > self.max_rows:
            index = torch.linspace(0, n_rows - 1, self.max_rows).long()
        return dataset.batch(index)[0]

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        module = net.module_
        was_training = module.training
        module.eval()
        with torch.no_grad():
            X = self._rows(dataset_train, dataset_valid).to(net.device)
            weights = module.gate_weights(X).cpu().numpy()
        module.train(was_training)
        utilization = weights.mean(axis=0)
        net.history.record("gate_utilization", utilization.tolist())
        net.history.record("gate_entropy", normalized_entropy(utilization).tolist())
        net.history.record("gate_polarized_rows", polarized_row_share(weights).tolist())
        net.history.record("dead_experts", dead_experts(utilization))
        balance = [b["gate_balance_loss"] for b in net.history[-1]["batches"]
                   if "gate_balance_loss" in b]
        if balance:
            net.history.record("gate_balance_loss", float(np.mean(balance)))

    def on_train_end(self, net, **kwargs):
        if not self.warn or not net.history or "gate_utilization" not in net.history[-1]:
            return
        # After early stopping the network holds the best epoch's weights: judge those.
        # Whether this call stopped early is the estimator's decision (early_stopping may
        # be "auto", and partial_fit never holds rows out unless it is True).
        best = [epoch for epoch in net.history if epoch.get("valid_loss_best")]
        if getattr(net, "_stops_early", False) and best:
            record = best[-1]
        else:
            record = net.history[-1]
        message = polarization_warning_message(
            net.task_names_, record["gate_utilization"], net.gate_balance
        )
        if message:
            warn(message, GatePolarizationWarning)
