"""Per-task scores of a fitted multi-task estimator, and scorers for model selection.

Rows whose label is missing (NaN/None) for a task are left out of that task's score.
"""


import numpy as np
import torch
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._routing import ScoreRequestMixin
from ._streaming import check_source_call, source_truth
from ._warnings import warn
from .sources import is_source


def _accuracy(y_true, y_pred, sample_weight, task):
    return skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight)


def _balanced_accuracy(y_true, y_pred, sample_weight, task):
    return skm.balanced_accuracy_score(y_true, y_pred, sample_weight=sample_weight)


def _roc_auc(y_true, proba, sample_weight, task):
    classes = task.classes_
    if len(classes) == 2:
        return skm.roc_auc_score(y_true == classes[1], proba[:, 1], sample_weight=sample_weight)
    return skm.roc_auc_score(
        y_true, proba, sample_weight=sample_weight, multi_class="ovr", labels=classes
    )


def _average_precision(y_true, proba, sample_weight, task):
    return skm.average_precision_score(
        y_true == task.classes_[1], proba[:, 1], sample_weight=sample_weight
    )


def _log_loss(y_true, proba, sample_weight, task):
    return skm.log_loss(y_true, proba, sample_weight=sample_weight, labels=task.classes_)


def _quantity(metric, **task_params):
    """A regression metric; ``task_params`` maps the metric's keyword arguments to the
    task's attribute holding them (e.g. ``power="tweedie_power"``)."""

    def score(y_true, y_pred, sample_weight, task):
        kwargs = {key: getattr(task, attribute) for key, attribute in task_params.items()}
        return metric(
            y_true.astype(float), y_pred.astype(float), sample_weight=sample_weight, **kwargs
        )

    return score


def _is_quantity(task):
    return not task.is_classifier


def _is_classifier(task):
    return task.is_classifier


def _has_two_classes(task):
    return task.is_classifier and len(task.classes_) == 2


def _has_log_link(task):
    # Deviances need positive predictions, which only the log-link tasks guarantee.
    return getattr(task, "tweedie_power", None) is not None


def _is_gamma_like(task):
    return getattr(task, "tweedie_power", None) == 2.0


# name: (function, the tasks it applies to, input it needs, greater is better)
METRICS = {
    "r2": (_quantity(skm.r2_score), _is_quantity, "predict", True),
    "mean_squared_error": (_quantity(skm.mean_squared_error), _is_quantity, "predict", False),
    "root_mean_squared_error": (
        _quantity(skm.root_mean_squared_error), _is_quantity, "predict", False
    ),
    "mean_absolute_error": (_quantity(skm.mean_absolute_error), _is_quantity, "predict", False),
    "mean_pinball_loss": (
        _quantity(skm.mean_pinball_loss, alpha="quantile_level"), _is_quantity, "predict", False
    ),
    "mean_poisson_deviance": (
        _quantity(skm.mean_poisson_deviance), _has_log_link, "predict", False
    ),
    "mean_gamma_deviance": (_quantity(skm.mean_gamma_deviance), _is_gamma_like, "predict", False),
    "mean_tweedie_deviance": (
        _quantity(skm.mean_tweedie_deviance, power="tweedie_power"), _has_log_link, "predict", False
    ),
    "accuracy": (_accuracy, _is_classifier, "predict", True),
    "balanced_accuracy": (_balanced_accuracy, _is_classifier, "predict", True),
    "roc_auc": (_roc_auc, _is_classifier, "proba", True),
    "average_precision": (_average_precision, _has_two_classes, "proba", True),
    "log_loss": (_log_loss, _is_classifier, "proba", False),
}


def _metric_for(task, metric):
    """The metric name for fitted ``task`` from ``metric`` (None, a name or a dict)."""
    name = metric.get(task.name_) if isinstance(metric, dict) else metric
    name = task.default_metric if name is None else name
    if name not in METRICS:
        raise ValueError(
            f"metric {name!r} for task {task.name_!r} is unknown; allowed: {sorted(METRICS)}."
        )
    if not METRICS[name][1](task):
        allowed = sorted(m for m, spec in METRICS.items() if spec[1](task))
        raise ValueError(
            f"metric {name!r} does not apply to task {task.name_!r}, a {task.kind} task; "
            f"metrics for this task: {allowed}. Pass a dict {{task: metric}} to choose per task."
        )
    return name


def score_outputs(task, name, raw, encoded, weight=None):
    """Metric ``name`` of fitted ``task`` from raw network outputs ``(n, n_outputs)`` and
    encoded targets ``(n,)`` (NaN where missing): how validation rows are scored during
    training, where the labels are already encoded. None when no row is labelled."""
    encoded = np.asarray(encoded)
    keep = ~np.isnan(encoded)
    if not keep.any():
        return None
    raw = torch.as_tensor(raw)[torch.from_numpy(keep)]
    weight = None if weight is None else np.asarray(weight)[keep]
    if name == "accuracy" and task.is_classifier and (weight is None or weight.sum() > 0):
        # Every epoch scores this; comparing the class indices gives accuracy_score's value
        # without decoding the labels and without scikit-learn's input checks, which took
        # ~2 ms an epoch (8% of a fit on a 150-row table).
        hits = task.predict_raw(raw).numpy() == encoded[keep]
        return float(np.average(hits, weights=weight))
    function, _, needs, _ = METRICS[name]
    if needs == "proba":
        prediction = task.proba_raw(raw).numpy()
    else:
        prediction = task.decode(task.predict_raw(raw).numpy())
    return float(function(task.decode_targets(encoded[keep]), prediction, weight, task))


def greater_is_better(name):
    """Whether a higher value of metric ``name`` is better."""
    return METRICS[name][3]


def task_scores(estimator, X, y=None, metric=None, sample_weight=None, tasks=None):
    """Score each task of a fitted estimator separately.

    Parameters
    ----------
    estimator : MMoERegressorClassifier or Pipeline
        A fitted estimator, or a fitted Pipeline that ends in one.
    X : array-like of shape (n_samples, n_features), or data source
    y : array-like or DataFrame
        True targets, in the same form as at fit; missing labels are ignored. None when
        ``X`` is a data source, whose target columns (and ``sample_weight`` column) are
        read instead.
    metric : str, dict or None, default=None
        None scores each task with its kind's default: ``"r2"`` for quantities (every
        kind but binary and multiclass, as scikit-learn's regressors score whatever
        their loss) and ``"accuracy"`` for classes. A str applies one metric to every
        task; a dict ``{task: metric}`` chooses per task (tasks left out get the
        default). Names: ``"r2"``, ``"mean_squared_error"``,
        ``"root_mean_squared_error"``, ``"mean_absolute_error"``,
        ``"mean_pinball_loss"`` (at a quantile task's ``alpha``, else 0.5),
        ``"mean_poisson_deviance"``, ``"mean_tweedie_deviance"`` (at the task's power)
        and ``"mean_gamma_deviance"`` (poisson, tweedie and gamma tasks; gamma only for
        the last), ``"accuracy"``, ``"balanced_accuracy"``, ``"roc_auc"``,
        ``"average_precision"`` (two classes), ``"log_loss"``.
    sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), default=None
        Row weights, or a weight per row and task (columns in the fitted task order).
    tasks : list or None, default=None
        The tasks to score; None scores all of them.

    Returns
    -------
    scores : dict
        ``{task name: score}`` as the metric defines it (losses are not negated).

    Notes
    -----
    A label not seen at fit counts as a wrong prediction for ``accuracy``; it has no
    predicted probability, so probability metrics leave such rows out and warn.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier, task_scores
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4))
    >>> y = np.column_stack([X[:, 0] + 0.1 * rng.normal(size=200), X[:, 1] > 0])
    >>> model = MMoERegressorClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> sorted(task_scores(model, X, y, metric={1: "roc_auc"}))
    [0, 1]
    """
    model = _final_model(estimator)
    encoder = model._target_encoder
    if is_source(X):
        check_source_call(model, "task_scores", y, sample_weight)
        y, sample_weight = source_truth(X, model)
    truth = encoder.select_columns(y)
    weight = _check_lengths(X, truth, sample_weight)
    chosen = model.task_names_ if tasks is None else list(tasks)
    unknown = [task for task in chosen if task not in model.task_names_]
    if unknown:
        raise ValueError(
            f"tasks {unknown} are not fitted tasks; the fitted tasks are {model.task_names_}."
        )
    fitted = dict(zip(model.task_names_, encoder.tasks_))
    needs = {task: METRICS[_metric_for(fitted[task], metric)][2] for task in chosen}
    # Predict through the public methods, so a Pipeline's preprocessing runs too.
    predicted = probas = None
    if "predict" in needs.values():
        predicted = encoder.select_columns(estimator.predict(X))
    if "proba" in needs.values():
        probas = estimator.predict_proba(X)
        probas = probas if isinstance(probas, list) else [probas]
    scores = {}
    for t, (name, task) in enumerate(fitted.items()):
        if name not in chosen:
            continue
        metric_name = _metric_for(task, metric)
        function = METRICS[metric_name][0]
        y_true = truth.iloc[:, t].to_numpy()
        keep = ~truth.iloc[:, t].isna().to_numpy()
        if needs[name] == "proba":
            prediction = probas[t]
            _, unseen = encoder.encode_labels(t, y_true)
            unseen &= keep
            if unseen.any():
                warn(
                    f"Task {name!r}: {unseen.sum()} row(s) hold labels not seen at fit; "
                    f"they have no predicted probability and are left out of {metric_name!r}.",
                    UserWarning,
                )
                keep &= ~unseen
        else:
            prediction = predicted.iloc[:, t].to_numpy()
        if not keep.any():
            raise ValueError(f"Task {name!r} has no labelled rows in y to score.")
        y_kept = y_true[keep]
        if task.is_classifier:
            y_kept = _as_label_array(y_kept, task.classes_)
        task_weight = None if weight is None else (weight if weight.ndim == 1 else weight[:, t])
        scores[name] = float(
            function(
                y_kept,
                prediction[keep],
                None if task_weight is None else task_weight[keep],
                task,
            )
        )
    return scores


def _check_lengths(X, truth, sample_weight):
    """Refuse ``y`` or ``sample_weight`` whose length differs from ``X``'s, before predicting;
    return the weights as a float array (or None)."""
    # A source's targets are its own columns: as long as its rows by construction.
    n_rows = len(truth) if is_source(X) else _num_samples(X)
    if len(truth) != n_rows:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: X has "
            f"{n_rows} rows but y has {len(truth)}."
        )
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=float)
    if weight.shape not in ((n_rows,), (n_rows, truth.shape[1])):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: X has "
            f"{n_rows} rows but sample_weight has shape {weight.shape}; it needs one "
            f"weight per row, or shape ({n_rows}, {truth.shape[1]}) for one per row and task."
        )
    return weight


def _as_label_array(labels, classes):
    """Give true labels the classes' dtype where possible, so comparisons are exact."""
    try:
        converted = np.asarray(labels).astype(classes.dtype)
    except (TypeError, ValueError):
        return np.asarray(labels, dtype=object)
    if classes.dtype.kind in "biuf" and not np.array_equal(
        converted.astype(object), np.asarray(labels, dtype=object)
    ):
        return np.asarray(labels, dtype=object)
    return converted


def _final_model(estimator):
    """The fitted multi-task model at the end of ``estimator`` (which may be a Pipeline)."""
    model = estimator
    while isinstance(model, Pipeline):
        model = model[-1]
    check_is_fitted(model)
    if not hasattr(model, "_target_encoder"):
        raise TypeError(
            "task scores need a fitted MMoERegressorClassifier, or a Pipeline ending in "
            f"one; got {type(model).__name__}."
        )
    return model


def make_task_scorer(task, metric=None):
    """A scorer for one task, for ``GridSearchCV(scoring=..., refit=...)``.

    Parameters
    ----------
    task : str or int
        The task's name (a column of ``y``, or its index for arrays).
    metric : str or None
        A name accepted by :func:`task_scores`; None uses the task's default. Loss
        metrics (``log_loss`` and the error metrics) are negated so that greater is
        better, as in scikit-learn's ``neg_*`` scorers; ``"neg_log_loss"`` and such are
        accepted as names too.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``.

    Examples
    --------
    >>> from sk_mmoe import make_task_scorer
    >>> scoring = {"income_auc": make_task_scorer("income", "roc_auc"),
    ...            "age_r2": make_task_scorer("age", "r2")}
    """
    if metric is not None and metric.startswith("neg_"):
        metric = metric[len("neg_"):]
        if metric not in METRICS or METRICS[metric][3]:
            raise ValueError(f"metric 'neg_{metric}' is unknown; allowed losses: "
                             f"{sorted('neg_' + m for m, s in METRICS.items() if not s[3])}.")
    if metric is not None and metric not in METRICS:
        raise ValueError(f"metric {metric!r} is unknown; allowed: {sorted(METRICS)}.")
    return TaskScorer(task, metric)


class TaskScorer(ScoreRequestMixin):
    """A scorer for one task of a multi-task model; made by :func:`make_task_scorer`.

    Called as ``scorer(estimator, X, y, sample_weight=None)`` by scikit-learn's model
    selection, it predicts ``X`` and scores the task's column of ``y``. Called by a skorch
    callback (``EpochScoring(scorer, lower_is_better=False)``) with the validation
    dataset of a fit, it scores the network's outputs on those rows against their
    encoded labels; ``y`` is then ignored.
    """

    def __init__(self, task, metric):
        self.task = task
        self.metric = metric

    def metric_for(self, model):
        """The metric's name for fitted ``model`` (the task's default when None)."""
        return _metric_for(_fitted_task(model, self.task), {self.task: self.metric})

    def sign(self, model):
        """+1 when the metric grows with quality, -1 for a loss (negated, as ``neg_*``)."""
        return 1.0 if greater_is_better(self.metric_for(model)) else -1.0

    def __call__(self, estimator, X, y=None, sample_weight=None):
        from ._data import TensorBatchDataset  # the encoded rows of a fit

        if isinstance(X, TensorBatchDataset):
            model = estimator  # in training: fitted encoders, no fitted attributes yet
            t = model.task_names_.index(self.task)
            raw = model.forward(X).numpy()[:, t, : model.tasks_[t].n_outputs]
            weight = X.sample_weight
            if weight is not None:
                weight = (weight if weight.dim() == 1 else weight[:, t]).numpy()
            score = score_outputs(
                model.tasks_[t], self.metric_for(model), raw, X.y[:, t].numpy(), weight
            )
            return np.nan if score is None else self.sign(model) * score
        model = _final_model(estimator)
        score = task_scores(
            estimator,
            X,
            y,
            metric={self.task: self.metric},
            sample_weight=sample_weight,
            tasks=[self.task],
        )[self.task]
        return self.sign(model) * score

    def __repr__(self):
        return f"make_task_scorer({self.task!r}, {self.metric!r})"


def _fitted_task(model, name):
    if name not in model.task_names_:
        raise ValueError(
            f"task {name!r} is not a fitted task; the fitted tasks are {model.task_names_}."
        )
    return model.tasks_[model.task_names_.index(name)]
