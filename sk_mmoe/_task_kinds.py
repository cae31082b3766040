"""What ``tasks="auto"`` infers from a target column, and how ``tasks=`` maps to task objects.

The rule lives here alone, so that the estimator, its docstring and the README describe one
behaviour. It returns task objects of :mod:`sk_mmoe.tasks`; no kind name is compared here.
"""

import numpy as np

from .tasks import (  # noqa: F401 (plain, plain_list: re-exported for messages)
    Binary,
    Multiclass,
    Regression,
    Task,
    column_values_kind,
    get_task,
    plain,
    plain_list,
)

# Whole numbers are read as class codes only when they look like them: at most this many
# distinct values, consecutive, and each value common (see _looks_like_codes).
MAX_CODE_CLASSES = 10
# A code's share of the labelled rows must reach this fraction of an even share (1 / k):
# a count's tail (8 hospital stays, 9 doctor visits) is far rarer than any class of a
# labelled data set one would train a classifier on.
MIN_CODE_SHARE = 0.5


class TaskKindWarning(UserWarning):
    """A task kind was inferred for a column whose values fit two kinds.

    A numeric column of whole numbers may hold class codes or a quantity (a count, a
    score); the warning names the column, the kind chosen, the alternative and the
    ``tasks=`` argument that settles it.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier, TaskKindWarning
    >>> X = np.random.RandomState(0).normal(size=(90, 2))
    >>> visits = np.random.RandomState(1).poisson(2.0, size=90)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = MMoERegressorClassifier(max_epochs=1).fit(X, visits)
    >>> caught[0].category is TaskKindWarning, model.task_types_
    (True, ['regression'])
    >>> MMoERegressorClassifier(tasks="poisson", max_epochs=1).fit(X, visits).task_types_
    ['poisson']
    """


def _classes(n_classes):
    return Binary() if n_classes <= 2 else Multiclass()


def _looks_like_codes(unique, counts, integer_storage, n_labelled):
    """``None`` when whole numbers look like class codes, else the reason they do not."""
    n_classes = len(unique)
    if not integer_storage:
        return "floats without a missing value were stored as floats, as quantities are"
    if n_classes > MAX_CODE_CLASSES:
        return f"more than {MAX_CODE_CLASSES} distinct values"
    if unique[-1] - unique[0] + 1 != n_classes:
        return "the values are not consecutive codes"
    rarest = int(np.argmin(counts))
    if counts[rarest] < MIN_CODE_SHARE * n_labelled / n_classes:
        share = counts[rarest] / n_labelled
        return (
            f"value {unique[rarest]:g} holds only {100 * share:.2g}% of the labelled rows, like the "
            "tail of a count"
        )
    return None


def _whole_number_task(column, labelled, unique, counts, stored_as_float):
    """``(task, doubt)`` for a column of whole numbers with at least 3 distinct values."""
    # pandas stores integers with a missing value as float64: such floats are integers.
    integer_storage = not stored_as_float or bool(column.isna().any())
    reason = _looks_like_codes(unique, counts, integer_storage, len(labelled))
    shown = ", ".join(f"{v:g}" for v in unique[:3]) + (", ..." if len(unique) > 3 else "")
    values = f"whole numbers ({shown}; {len(unique)} distinct values)"
    if reason is None:
        return Multiclass(), (
            f"holds {values} and was inferred as 'multiclass': few consecutive codes, each "
            "common, as class labels are. If it is a quantity (a count or a score), pass "
            "tasks={%r: 'regression'} (or 'poisson' for a count); pass "
            "tasks={%r: 'multiclass'} to keep this choice without the warning."
        )
    return Regression(), (
        f"holds {values} and was inferred as 'regression', a quantity such as a count or "
        f"a score ({reason}). If they are class labels, pass tasks={{%r: 'multiclass'}}; "
        "for a count, tasks={%r: 'poisson'} fits a count loss; pass "
        "tasks={%r: 'regression'} to keep this choice without the warning."
    )


def infer_task(values):
    """``(task, doubt)``: the inferred task object and, for an ambiguous column, a message
    template (``%r`` stands for the column's name) saying what was chosen and how to
    choose otherwise."""
    values_kind = column_values_kind(values)
    labelled = values[values.notna()]
    if values_kind not in ("float", "integer"):
        return _classes(labelled.nunique()), None
    numbers = labelled.to_numpy(dtype=float)
    unique, counts = np.unique(numbers, return_counts=True)
    whole = np.isfinite(unique).all() and np.array_equal(unique, np.round(unique))
    stored_as_float = values_kind == "float"
    if len(unique) < 2 and not stored_as_float:
        return Binary(), None  # one integer label: refused with "1 class", as labels are
    if not whole or len(unique) < 2:
        return Regression(), None
    if len(unique) == 2:
        return Binary(), None
    if stored_as_float and 2 * len(unique) > len(numbers):
        # A handful of rows with distinct whole numbers says nothing: a quantity.
        return Regression(), None
    return _whole_number_task(values, labelled, unique, counts, stored_as_float)


def infer_task_kind(values):
    """Infer the task kind of one target column (missing labels ignored).

    The rule, applied to the non-missing values:

    - bool, string, object or category values: ``"binary"`` with two classes,
      ``"multiclass"`` with more;
    - numbers with a fractional part, or a single distinct value: ``"regression"``;
    - whole numbers with two distinct values: ``"binary"``;
    - whole numbers with three or more distinct values are ambiguous (class codes, or
      a count or score): ``"multiclass"`` when they look like class codes, i.e. stored
      as integers (an int column, or floats with a missing value, as pandas stores
      integers with NaN), at most 10 distinct values, consecutive (such as 0, 1, 2 or
      1..5), and each value holding at least half of an even share of the rows;
      otherwise ``"regression"``. Fitting then issues a :class:`TaskKindWarning`
      naming the column, the kind chosen and the ``tasks=`` argument for either kind.

    The rule errs towards ``"regression"`` because the two mistakes differ: class codes
    read as a quantity show at once (predictions such as 1.7, no ``predict_proba``),
    while a count read as classes predicts plausible whole numbers that can be worse
    than the training mean.

    Parameters
    ----------
    values : pandas.Series
        One target column, missing labels included.

    Returns
    -------
    kind : {"regression", "binary", "multiclass"}

    Examples
    --------
    >>> import pandas as pd
    >>> from sk_mmoe import infer_task_kind
    >>> infer_task_kind(pd.Series([1.5, 2.0, 0.3]))
    'regression'
    >>> infer_task_kind(pd.Series([0.0, 1.0, None]))
    'binary'
    >>> infer_task_kind(pd.Series([2, 0, 1, 0, 2, 1]))  # species codes
    'multiclass'
    >>> infer_task_kind(pd.Series([0] * 60 + [1] * 25 + [2] * 10 + [3] * 4 + [8]))  # stays
    'regression'
    >>> infer_task_kind(pd.Series(["low", "mid", "high"]))
    'multiclass'
    """
    return infer_task(values)[0].kind


def per_task_values(param, value, names, default):
    """One entry per task from a per-task parameter: a list in column order, or a dict
    ``{column: value}`` that leaves the columns it omits at ``default``."""
    if isinstance(value, dict):
        unknown = [key for key in value if key not in names]
        if unknown:
            raise ValueError(
                f"{param} names unknown task(s) {unknown}; the target columns are {list(names)}."
            )
        return [value.get(name, default) for name in names]
    values = list(value)
    if len(values) != len(names):
        raise ValueError(
            f"{param} has {len(values)} entries but y has {len(names)} columns "
            f"{list(names)}; give one per column, or a dict {{column: value}}."
        )
    return values


def resolve_requested_tasks(tasks, names):
    """Map the ``tasks`` parameter to one task object (or None, to infer) per column."""
    if isinstance(tasks, (str, Task)):
        requested = [tasks] * len(names)
    else:
        requested = per_task_values("tasks", tasks, names, "auto")
    return [
        None if isinstance(kind, str) and kind == "auto" else get_task(kind, f"tasks: task {name!r}")
        for name, kind in zip(names, requested)
    ]


def check_target_column(name, column):
    """Refuse target values no task kind can learn (complex numbers), or that scikit-learn's
    metrics refuse (bytes labels: scoring would fail in the middle of training)."""
    if column_values_kind(column) == "complex":
        raise ValueError(f"Task {name!r}: complex values are not supported as targets.")
    if column.dtype.kind == "S" or (
        column.dtype == object and any(isinstance(v, bytes) for v in column.dropna().head(1000))
    ):
        example = next(v for v in column.dropna() if isinstance(v, bytes))
        raise ValueError(
            f"Task {name!r} holds bytes labels (e.g. {example!r}); scikit-learn's metrics do not "
            "support bytes, so they cannot be scored. Decode them to str first, e.g. "
            "y.astype(str) for a numpy array or y[col].str.decode('utf-8') for a pandas column."
        )
