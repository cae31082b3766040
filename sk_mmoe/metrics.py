"""Per-task scores of a fitted multi-task estimator, and scorers for model selection.

Rows whose label is missing (NaN/None) for a task are left out of that task's score.
"""


import numpy as np
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._routing import ScoreRequestMixin
from ._warnings import warn


def _accuracy(y_true, y_pred, sample_weight, classes):
    return skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight)


def _balanced_accuracy(y_true, y_pred, sample_weight, classes):
    return skm.balanced_accuracy_score(y_true, y_pred, sample_weight=sample_weight)


def _roc_auc(y_true, proba, sample_weight, classes):
    if len(classes) == 2:
        return skm.roc_auc_score(y_true == classes[1], proba[:, 1], sample_weight=sample_weight)
    return skm.roc_auc_score(
        y_true, proba, sample_weight=sample_weight, multi_class="ovr", labels=classes
    )


def _average_precision(y_true, proba, sample_weight, classes):
    return skm.average_precision_score(
        y_true == classes[1], proba[:, 1], sample_weight=sample_weight
    )


def _log_loss(y_true, proba, sample_weight, classes):
    return skm.log_loss(y_true, proba, sample_weight=sample_weight, labels=classes)


def _regression(metric):
    def score(y_true, y_pred, sample_weight, classes):
        return metric(y_true.astype(float), y_pred.astype(float), sample_weight=sample_weight)

    return score


# name: (function, task kinds it applies to, input it needs, greater is better)
METRICS = {
    "r2": (_regression(skm.r2_score), {"regression"}, "predict", True),
    "mean_squared_error": (_regression(skm.mean_squared_error), {"regression"}, "predict", False),
    "root_mean_squared_error": (
        _regression(skm.root_mean_squared_error), {"regression"}, "predict", False
    ),
    "mean_absolute_error": (_regression(skm.mean_absolute_error), {"regression"}, "predict", False),
    "accuracy": (_accuracy, {"binary", "multiclass"}, "predict", True),
    "balanced_accuracy": (_balanced_accuracy, {"binary", "multiclass"}, "predict", True),
    "roc_auc": (_roc_auc, {"binary", "multiclass"}, "proba", True),
    "average_precision": (_average_precision, {"binary"}, "proba", True),
    "log_loss": (_log_loss, {"binary", "multiclass"}, "proba", False),
}
DEFAULT_METRIC = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}


def _metric_for(task, kind, metric):
    name = metric.get(task, DEFAULT_METRIC[kind]) if isinstance(metric, dict) else metric
    name = DEFAULT_METRIC[kind] if name is None else name
    if name not in METRICS:
        raise ValueError(f"metric {name!r} for task {task!r} is unknown; allowed: {sorted(METRICS)}.")
    if kind not in METRICS[name][1]:
        allowed = sorted(m for m, spec in METRICS.items() if kind in spec[1])
        raise ValueError(
            f"metric {name!r} does not apply to task {task!r}, a {kind} task; metrics for "
            f"{kind} tasks: {allowed}. Pass a dict {{task: metric}} to choose per task."
        )
    return name


def task_scores(estimator, X, y, metric=None, sample_weight=None, tasks=None):
    """Score each task of a fitted estimator separately.

    Parameters
    ----------
    estimator : MMoERegressorClassifier or Pipeline
        A fitted estimator, or a fitted Pipeline that ends in one.
    X : array-like of shape (n_samples, n_features)
    y : array-like or DataFrame
        True targets, in the same form as at fit; missing labels are ignored.
    metric : str, dict or None, default=None
        None scores regression tasks with ``"r2"`` and classification tasks with
        ``"accuracy"``. A str applies one metric to every task; a dict
        ``{task: metric}`` chooses per task (tasks left out get the default). Names:
        ``"r2"``, ``"mean_squared_error"``, ``"root_mean_squared_error"``,
        ``"mean_absolute_error"``, ``"accuracy"``, ``"balanced_accuracy"``,
        ``"roc_auc"``, ``"average_precision"`` (binary), ``"log_loss"``.
    sample_weight : array-like of shape (n_samples,), default=None
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
    truth = encoder.select_columns(y)
    weight = _check_lengths(X, truth, sample_weight)
    chosen = model.task_names_ if tasks is None else list(tasks)
    unknown = [task for task in chosen if task not in model.task_names_]
    if unknown:
        raise ValueError(
            f"tasks {unknown} are not fitted tasks; the fitted tasks are {model.task_names_}."
        )
    kinds = dict(zip(model.task_names_, model.task_types_))
    needs = {task: METRICS[_metric_for(task, kinds[task], metric)][2] for task in chosen}
    # Predict through the public methods, so a Pipeline's preprocessing runs too.
    predicted = probas = None
    if "predict" in needs.values():
        predicted = encoder.select_columns(estimator.predict(X))
    if "proba" in needs.values():
        probas = estimator.predict_proba(X)
        probas = probas if isinstance(probas, list) else [probas]
    scores = {}
    for t, (task, kind) in enumerate(kinds.items()):
        if task not in chosen:
            continue
        name = _metric_for(task, kind, metric)
        function = METRICS[name][0]
        y_true = truth.iloc[:, t].to_numpy()
        keep = ~truth.iloc[:, t].isna().to_numpy()
        classes = model.classes_[t]
        if needs[task] == "proba":
            prediction = probas[t]
            _, unseen = encoder.encode_labels(t, y_true)
            unseen &= keep
            if unseen.any():
                warn(
                    f"Task {task!r}: {unseen.sum()} row(s) hold labels not seen at fit; "
                    f"they have no predicted probability and are left out of {name!r}.",
                    UserWarning,
                )
                keep &= ~unseen
        else:
            prediction = predicted.iloc[:, t].to_numpy()
        if not keep.any():
            raise ValueError(f"Task {task!r} has no labelled rows in y to score.")
        y_kept = y_true[keep]
        if kind != "regression":
            y_kept = _as_label_array(y_kept, classes)
        scores[task] = float(
            function(
                y_kept,
                prediction[keep],
                None if weight is None else weight[keep],
                classes,
            )
        )
    return scores


def _check_lengths(X, truth, sample_weight):
    """Refuse ``y`` or ``sample_weight`` whose length differs from ``X``'s, before predicting;
    return the weights as a float array (or None)."""
    n_rows = _num_samples(X)
    if len(truth) != n_rows:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: X has "
            f"{n_rows} rows but y has {len(truth)}."
        )
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=float)
    if weight.shape != (n_rows,):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: X has "
            f"{n_rows} rows but sample_weight has shape {weight.shape}; it needs one "
            "weight per row."
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
    return _TaskScorer(task, metric)


class _TaskScorer(ScoreRequestMixin):
    def __init__(self, task, metric):
        self.task = task
        self.metric = metric

    def __call__(self, estimator, X, y, sample_weight=None):
        score = task_scores(
            estimator,
            X,
            y,
            metric={self.task: self.metric},
            sample_weight=sample_weight,
            tasks=[self.task],
        )[self.task]
        model = _final_model(estimator)
        kind = model.task_types_[model.task_names_.index(self.task)]
        name = self.metric or DEFAULT_METRIC[kind]
        return score if METRICS[name][3] else -score

    def __repr__(self):
        return f"make_task_scorer({self.task!r}, {self.metric!r})"
