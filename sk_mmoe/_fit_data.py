"""The inputs of a training call (X, y, sample_weight, class_weight, eval_set) as the datasets
skorch reads.

At the first training call (``reset=True``) the feature and target encoders are fitted here
and returned; the estimator keeps them and sets the attributes they determine. Later calls,
and the ``eval_set``, are encoded with the estimator's fitted encoders.
"""

from numbers import Real

import numpy as np
import torch

from ._data import TensorBatchDataset, check_sample_weight
from ._features import FeatureEncoder
from ._tasks import TargetEncoder


def training_dataset(estimator, X, y, sample_weight, *, reset):
    """``(dataset, feature_encoder, target_encoder)`` for the training rows; with
    ``reset=True`` the encoders are new and fitted on these rows, else the estimator's."""
    if reset:
        features = FeatureEncoder()
        X_tensor = features.fit_transform(estimator, X, numeric_embedding=estimator.numeric_embedding)
        targets = TargetEncoder(estimator.tasks).fit(y)
    else:
        features, targets = estimator._feature_encoder, estimator._target_encoder
        X_tensor = features.transform(estimator, X)
    y_encoded = targets.transform(y)
    _check_same_rows(X_tensor, y_encoded, "X", "y")
    weights = _row_task_weights(sample_weight, y_encoded, targets, estimator.class_weight)
    return TensorBatchDataset(X_tensor, torch.from_numpy(y_encoded), weights), features, targets


def eval_set_dataset(estimator, eval_set):
    """``fit``'s ``eval_set``, encoded as the training rows were; None when not given."""
    if eval_set is None:
        return None
    if not isinstance(eval_set, (tuple, list)) or len(eval_set) not in (2, 3):
        raise ValueError(
            "eval_set must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val); "
            f"got {type(eval_set).__name__}"
            + (f" of length {len(eval_set)}" if isinstance(eval_set, (tuple, list)) else "")
            + "."
        )
    X_val, y_val, *weight = eval_set
    targets = estimator._target_encoder
    X_tensor = estimator._feature_encoder.transform(estimator, X_val)
    y_encoded = targets.transform(y_val)
    _check_same_rows(X_tensor, y_encoded, "X_val", "y_val", context="eval_set: ")
    weights = _row_task_weights(
        weight[0] if weight else None, y_encoded, targets, estimator.class_weight
    )
    return TensorBatchDataset(X_tensor, torch.from_numpy(y_encoded), weights)


def _check_same_rows(X_tensor, y_encoded, X_name, y_name, context=""):
    if y_encoded.shape[0] != X_tensor.shape[0]:
        raise ValueError(
            f"{context}{X_name} has {X_tensor.shape[0]} rows but {y_name} has "
            f"{y_encoded.shape[0]}; they must have the same number of rows."
        )


def _row_task_weights(sample_weight, y_encoded, targets, class_weight):
    """The weights of the rows in each task's loss: ``sample_weight`` (per row, or per row
    and task) times the class weights of each row's label; None when all are 1."""
    n_samples, n_tasks = y_encoded.shape
    weights = check_sample_weight(sample_weight, n_samples, n_tasks)
    per_task = class_weight_values(class_weight, targets.tasks_)
    if not per_task:
        return weights
    factors = np.ones((n_samples, n_tasks), dtype=np.float32)
    for t, task in enumerate(targets.tasks_):
        if t not in per_task:
            continue
        labelled = ~np.isnan(y_encoded[:, t])
        codes = y_encoded[labelled, t].astype(np.int64)
        factors[labelled, t] = task.class_weights(per_task[t], codes)[codes]
    factors = torch.from_numpy(factors)
    if weights is None:
        return factors
    return factors * (weights if weights.dim() == 2 else weights.unsqueeze(1))


def class_weight_values(class_weight, tasks):
    """``class_weight`` as ``{task index: "balanced" or {class: weight}}``.

    Accepted forms: None; ``"balanced"`` for every classification task; a dict
    ``{task: "balanced" or {class: weight}}``; and, when exactly one task has classes,
    scikit-learn's ``{class: weight}`` for it.
    """
    if class_weight is None:
        return {}
    classifiers = [t for t, task in enumerate(tasks) if task.is_classifier]
    names = [task.name_ for task in tasks]
    if isinstance(class_weight, str) and class_weight == "balanced":
        return {t: "balanced" for t in classifiers}
    if not isinstance(class_weight, dict):
        raise ValueError(
            "class_weight must be None, 'balanced', {task: 'balanced' or {class: weight}}, or "
            f"{{class: weight}} for a single classification task; got {class_weight!r}."
        )
    if class_weight and all(isinstance(v, Real) and not isinstance(v, bool) for v in class_weight.values()):
        if len(classifiers) != 1:
            raise ValueError(
                f"class_weight {class_weight!r} gives weights per class, which needs exactly "
                f"one classification task; this model has {len(classifiers)} "
                f"({[names[t] for t in classifiers]}). Use {{task: {{class: weight}}}}."
            )
        return {classifiers[0]: class_weight}
    resolved = {}
    for name, spec in class_weight.items():
        if name not in names:
            raise ValueError(
                f"class_weight names unknown task {name!r}; the tasks are {names}."
            )
        t = names.index(name)
        if not tasks[t].is_classifier:
            raise ValueError(
                f"class_weight names task {name!r}, a {tasks[t].kind} task without classes; "
                f"only classification tasks take class weights ({[names[c] for c in classifiers]})."
            )
        resolved[t] = spec
    return resolved
