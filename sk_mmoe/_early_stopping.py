"""Early stopping, in one place: when it is on, which rows it holds out, what it watches
(``scoring``), the per-task validation metrics it records, and when training ended too soon.

The estimator decides ``uses_early_stopping`` at each training call, builds the callbacks
with :func:`early_stopping_callbacks`, and warns with :func:`warn_if_not_converged`.
"""

from numbers import Real

import numpy as np
from skorch.callbacks import Callback
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._training_log import LoggedEarlyStopping
from ._warnings import warn
from ._data import RowOutputs
from .metrics import TaskScorer, make_task_scorer, score_outputs

# Below this many training rows, "auto" trains without a hold-out: a 10% share would be
# under 10 rows. From 100 rows on, stopping on a hold-out beat fixed epochs on the
# validation rows of the panel's small tables (benchmarks/results/quality_selection.md).
EARLY_STOPPING_MIN_ROWS = 100
# Relative improvement over the last epochs that counts as "still improving".
CONVERGENCE_TOL = 1e-3
# The history key early stopping watches when ``scoring`` is not "loss".
SCORE_KEY = "valid_score"


def uses_early_stopping(early_stopping, n_samples, has_eval_set, partial_fit=False, source=False):
    """Whether to hold out validation rows and stop on them. ``partial_fit`` never holds
    rows out unless asked to (``early_stopping=True``): its calls see a stream. A data
    source (``source=True``) has no rows to hold out: it stops on an ``eval_set`` only."""
    if source and not has_eval_set:
        if early_stopping is True:
            raise ValueError(
                "early_stopping=True holds out validation_fraction of the training rows, "
                "which a data source cannot do (it is read as a stream, not indexed). Pass "
                "the validation rows as eval_set= (a source of their own, e.g. separate "
                "Parquet files, or (X_val, y_val) in memory), or set early_stopping=False."
            )
        return False
    if partial_fit:
        return early_stopping is True
    if early_stopping == "auto":
        return has_eval_set or n_samples >= EARLY_STOPPING_MIN_ROWS
    return bool(early_stopping)


def stratification_labels(y_encoded, tasks):
    """Labels to stratify the validation split on: the first classification task's codes.

    A missing label is its own stratum; with no classification task, None (random split).
    """
    for t, task in enumerate(tasks):
        if task.is_classifier:
            codes = y_encoded[:, t]
            return np.where(np.isnan(codes), -1, codes).astype(np.int64)
    return None


def validation_split(n_samples, validation_fraction, strata, seed):
    """Row indices ``(train, valid)`` for early stopping, stratified where possible."""
    n_valid = int(np.ceil(validation_fraction * n_samples))
    if n_samples - n_valid < 1:
        raise ValueError(
            f"early stopping holds out validation_fraction={validation_fraction} of "
            f"{n_samples} rows, leaving none to train on; use more rows, a smaller "
            "validation_fraction or early_stopping=False."
        )
    rows = np.arange(n_samples)
    if strata is not None:
        try:
            return train_test_split(rows, test_size=n_valid, stratify=strata, random_state=seed)
        except ValueError:
            # A class with a single row cannot be stratified; fall back to a random split.
            pass
    return train_test_split(rows, test_size=n_valid, random_state=seed)


def scoring_terms(scoring, model):
    """``scoring`` as ``[(TaskScorer, weight), ...]``, checked against the fitted tasks of
    ``model``; None for ``"loss"``.

    Raises
    ------
    ValueError
        Naming what was given and what is allowed, for an unknown form, task or metric.
    """
    if isinstance(scoring, str) and scoring == "loss":
        return None
    if isinstance(scoring, TaskScorer):
        terms = [(scoring, 1.0)]
    elif isinstance(scoring, dict) and scoring:
        terms = []
        for task, spec in scoring.items():
            metric, weight = spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, 1.0)
            if not (metric is None or isinstance(metric, str)):
                raise ValueError(
                    f"scoring[{task!r}] must be a metric name, None (the task's default) or "
                    f"(metric, weight); got {spec!r}."
                )
            if not (isinstance(weight, Real) and np.isfinite(weight) and weight > 0):
                raise ValueError(f"scoring[{task!r}]: the weight must be a positive number; got {weight!r}.")
            terms.append((make_task_scorer(task, metric), float(weight)))
    else:
        raise ValueError(
            "scoring must be 'loss', a task scorer (make_task_scorer(task, metric)), or a "
            "non-empty dict {task: metric} or {task: (metric, weight)}; got "
            f"{scoring!r}."
        )
    for scorer, _ in terms:
        scorer.metric_for(model)  # raises for an unknown task or a metric it cannot take
    return terms


class ValidationScores(Callback):
    """Per-task metrics of the validation rows, recorded in ``history_`` every epoch.

    Each task's default metric (R² for quantities, accuracy for classes) and each metric
    named by ``scoring`` is recorded as ``valid_<task>_<metric>``, from the network's
    outputs of the epoch's validation pass (no second pass). With ``scoring`` other than
    ``"loss"``, ``valid_score`` is the weighted mean of the signed scores (losses negated,
    so greater is better), which early stopping then watches.
    """

    def __init__(self, terms=None):
        self.terms = terms

    def initialize(self):
        self.outputs_ = None
        return self

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        # One tensor for the pass's outputs (see RowOutputs: no heap growth per batch).
        self.outputs_ = None if dataset_valid is None else RowOutputs(len(dataset_valid))

    def on_batch_end(self, net, batch=None, y_pred=None, training=None, **kwargs):
        if not training and y_pred is not None and self.outputs_ is not None:
            self.outputs_.add(y_pred)

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None or self.outputs_ is None or not self.outputs_.filled:
            return
        raw = self.outputs_.result().numpy()
        self.outputs_ = None
        targets = dataset_valid.y.numpy()
        weight = dataset_valid.sample_weight
        weight = None if weight is None else weight.numpy()
        wanted = {t: {task.default_metric} for t, task in enumerate(net.tasks_)}
        for scorer, _ in self.terms or ():
            wanted[net.task_names_.index(scorer.task)].add(scorer.metric_for(net))
        values = {}
        for t, task in enumerate(net.tasks_):
            task_weight = None if weight is None else (weight if weight.ndim == 1 else weight[:, t])
            for name in sorted(wanted[t]):
                value = score_outputs(
                    task, name, raw[:, t, : task.n_outputs], targets[:, t], task_weight
                )
                values[t, name] = np.nan if value is None else value
                net.history.record(f"valid_{task.name_}_{name}", values[t, name])
        if self.terms:
            total = sum(
                weight * scorer.sign(net) * values[net.task_names_.index(scorer.task), scorer.metric_for(net)]
                for scorer, weight in self.terms
            )
            net.history.record(SCORE_KEY, total / sum(weight for _, weight in self.terms))


def monitored(scoring):
    """``(history key, lower is better)`` of what early stopping watches."""
    if isinstance(scoring, str) and scoring == "loss":
        return "valid_loss", True
    return SCORE_KEY, False


def early_stopping_callbacks(estimator, stops_early):
    """``[(name, callback)]`` to insert before the printed log: the validation metrics,
    and (when ``stops_early``) the stopper, which restores the best epoch's weights."""
    if not stops_early:
        return []
    terms = scoring_terms(estimator.scoring, estimator)
    key, lower_is_better = monitored(estimator.scoring)
    stopper = LoggedEarlyStopping(
        monitor=key,
        lower_is_better=lower_is_better,
        patience=estimator.n_iter_no_change,
        load_best=True,
    )
    return [("validation_scores", ValidationScores(terms)), ("early_stopping", stopper)]


def warn_if_not_converged(history, max_epochs, n_iter_no_change, early_stopping, scoring="loss"):
    """Raise ``ConvergenceWarning`` when training ended at ``max_epochs`` still improving.

    The value watched is the validation loss (or score, with ``scoring``) with early
    stopping, else the training loss. It was still improving when its best over the last
    ``n_iter_no_change`` epochs (all but the first, when ``max_epochs`` is not larger)
    beat the best before them by more than 0.1%; a single epoch always warns, as nothing
    tells that it was enough.
    """
    n_epochs = len(history)
    if n_epochs < max_epochs:
        return
    key, lower_is_better = monitored(scoring) if early_stopping else ("train_loss", True)
    what = {"valid_loss": "validation loss", SCORE_KEY: "validation score"}.get(key, "training loss")
    window = min(n_iter_no_change, n_epochs - 1)
    if window == 0:
        warn(
            f"Training stopped at max_epochs={max_epochs} after a single epoch, so nothing "
            f"shows whether the {what} had stopped improving. Increase max_epochs to let "
            "it converge.",
            ConvergenceWarning,
        )
        return
    values = np.asarray([epoch.get(key, np.nan) for epoch in history], dtype=float)
    losses = values if lower_is_better else -values
    recent, before = np.nanmin(losses[-window:]), np.nanmin(losses[:-window])
    if not recent < before - CONVERGENCE_TOL * abs(before):
        return
    shown = (before, recent) if lower_is_better else (-before, -recent)
    warn(
        f"Training stopped at max_epochs={max_epochs} while the {what} was still "
        f"improving ({shown[0]:.4g} -> {shown[1]:.4g} over the last {window} "
        "epochs). Increase max_epochs (or lr) to let it converge.",
        ConvergenceWarning,
    )
