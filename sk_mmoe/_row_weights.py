"""The weight of each row in each task's loss: ``sample_weight`` times the class weights
(``class_weight``) of the row's label."""

from numbers import Real

import numpy as np
import torch

from ._data import check_sample_weight


def row_task_weights(sample_weight, y_encoded, targets, class_weight, class_tables=None):
    """The weights of the rows in each task's loss: ``sample_weight`` (per row, or per row
    and task) times the class weights of each row's label; None when all are 1.

    The class weights come from ``class_tables`` (see :func:`class_weight_tables`) when
    given, else from these rows' labels."""
    n_samples, n_tasks = y_encoded.shape
    weights = check_sample_weight(sample_weight, n_samples, n_tasks)
    if class_tables is None:
        class_tables = class_weight_tables(class_weight, targets, y_encoded)
    if not class_tables:
        return weights
    factors = np.ones((n_samples, n_tasks), dtype=np.float32)
    for t, table in class_tables.items():
        labelled = ~np.isnan(y_encoded[:, t])
        factors[labelled, t] = table[y_encoded[labelled, t].astype(np.int64)]
    factors = torch.from_numpy(factors)
    if weights is None:
        return factors
    return factors * (weights if weights.dim() == 2 else weights.unsqueeze(1))


def class_weight_tables(class_weight, targets, y_encoded):
    """``{task index: weight of each class code}`` for ``class_weight``, "balanced" counted
    on the labels of ``y_encoded``."""
    tables = {}
    for t, spec in class_weight_values(class_weight, targets.tasks_).items():
        labelled = ~np.isnan(y_encoded[:, t])
        tables[t] = targets.tasks_[t].class_weights(spec, y_encoded[labelled, t].astype(np.int64))
    return tables


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
