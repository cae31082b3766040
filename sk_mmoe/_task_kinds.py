"""Task kinds: what ``tasks="auto"`` infers from a target column, and what a kind accepts.

The rule lives here alone, so that the estimator, its docstring and the README describe one
behaviour; :mod:`sk_mmoe._tasks` encodes the columns once their kinds are known.
"""

import numpy as np
import pandas as pd

TASK_KINDS = ("regression", "binary", "multiclass")

# Integer targets are classes by scikit-learn's convention; past this many classes the
# column is more likely a count or a measurement, so the user is told how to say so.
MANY_CLASSES_WARNING = 20


class TaskKindWarning(UserWarning):
    """A task kind was inferred that the user may not have meant.

    Examples
    --------
    Integers are class labels by scikit-learn's convention; many distinct values suggest
    a quantity instead:

    >>> import warnings
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier, TaskKindWarning
    >>> X, years = np.random.RandomState(0).normal(size=(90, 2)), np.arange(90) % 30
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = MMoERegressorClassifier(max_epochs=1).fit(X, years)
    >>> caught[0].category is TaskKindWarning, model.task_types_
    (True, ['multiclass'])
    >>> MMoERegressorClassifier(tasks="regression", max_epochs=1).fit(X, years).task_types_
    ['regression']
    """


def plain(value):
    """A label as the Python value it holds, so messages show ``'no'``, not ``np.str_('no')``."""
    return value.item() if isinstance(value, np.generic) else value


def plain_list(values):
    """``values`` as a list of Python values, for messages."""
    return [plain(v) for v in values]


def _column_values_kind(values):
    """Classify a column's values as "bool", "integer", "float", "complex" or "label".

    Object columns are judged by what they hold, so a numpy object array that mixes a
    float column with a string column still has a numeric column.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "label"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex"
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    return {
        "boolean": "bool",
        "integer": "integer",
        "floating": "float",
        "mixed-integer-float": "float",
        "decimal": "float",
        "complex": "complex",
    }.get(inferred, "label")


def _float_kind(column, labelled):
    """``(kind, doubt)`` for a float column; ``doubt`` is None or what to tell the user."""
    values = labelled.to_numpy(dtype=float)
    unique = np.unique(values)
    whole = np.isfinite(unique).all() and np.array_equal(unique, np.round(unique))
    if not whole or len(unique) < 2:
        return "regression", None
    if len(unique) == 2 and set(unique.tolist()) == {0.0, 1.0}:
        return "binary", None
    n_classes = len(unique)
    # Few distinct values, each seen twice on average, as class labels are; a handful of
    # rows with distinct whole numbers says nothing, and stays regression.
    if n_classes > MANY_CLASSES_WARNING or 2 * n_classes > len(values):
        return "regression", None
    shown = ", ".join(f"{v:g}" for v in unique[:3]) + (", ..." if n_classes > 3 else "")
    # Class codes are dense (0, 1, 2 or 1..5); measurements such as grams or prices spread
    # over a range far wider than their number of distinct values.
    if unique[-1] - unique[0] + 1 <= 2 * n_classes:
        kind = "binary" if n_classes == 2 else "multiclass"
        # Missing values explain the floats: pandas stores integer labels with a NaN as
        # float64. Without any, the column was floats to begin with, so say what we chose.
        if column.isna().any():
            return kind, None
        return kind, (
            f"holds whole-number floats with {n_classes} distinct values ({shown}) and was "
            f"inferred as {kind!r}, like integer class labels. If it is a quantity, pass "
            "tasks={%r: 'regression'}."
        )
    return "regression", (
        f"holds whole-number floats with only {n_classes} distinct values ({shown}) and "
        "was inferred as 'regression', as they look like measurements. If they are "
        "class labels, pass tasks={%r: 'multiclass'}."
    )


def _integer_kind(labelled):
    n_classes = labelled.nunique()
    kind = "binary" if n_classes <= 2 else "multiclass"
    if n_classes > MANY_CLASSES_WARNING:
        return kind, (
            f"holds integers with {n_classes} distinct values and was inferred as "
            f"{kind!r}. If it is a quantity, pass tasks={{%r: 'regression'}}."
        )
    return kind, None


def infer_kind_with_doubt(values):
    """``(kind, doubt)``: the inferred kind and, in the ambiguous zone, a message template
    (with ``%r`` for the column's name) saying what was chosen and how to override it."""
    kind = _column_values_kind(values)
    labelled = values[values.notna()]
    if kind == "float":
        return _float_kind(values, labelled)
    if kind == "integer":
        return _integer_kind(labelled)
    return ("binary" if labelled.nunique() <= 2 else "multiclass"), None


def infer_task_kind(values):
    """Infer the task kind of one target column (missing labels ignored).

    The rule, applied to the non-missing values:

    - bool, string, object or category values: ``"binary"`` with two classes,
      ``"multiclass"`` with more;
    - integer values: the same (scikit-learn's convention for integer labels); with more
      than 20 distinct values a :class:`TaskKindWarning` says how to ask for regression;
    - float values with a fractional part: ``"regression"``;
    - whole-number floats (``0.0, 1.0, 2.0``), as pandas stores integer labels that have a
      missing value: classification, like integers, when they are few (at most 20
      distinct values, and at most half as many as labelled rows) and dense class codes
      (their range spans at most twice as many integers as there are distinct values),
      e.g. {0, 1, 2} or {1, ..., 5}; otherwise ``"regression"``, as for measurements
      such as grams, prices or years. Exactly {0, 1} is always ``"binary"``.

    In the ambiguous zone fitting issues a :class:`TaskKindWarning` naming the column and
    the ``tasks`` override: few dense whole-number floats without any missing value
    (classification chosen; with a missing value the floats are explained by pandas'
    storage of integers), and few repeated whole-number floats that are not dense codes
    (regression chosen).

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
    >>> infer_task_kind(pd.Series([2.0, 0.0, None, 1.0, 0.0, 2.0, 1.0]))  # ints with a NaN
    'multiclass'
    >>> infer_task_kind(pd.Series([1200.0, 1350.0, 980.0]))  # grams
    'regression'
    >>> infer_task_kind(pd.Series(["low", "mid", "high"]))
    'multiclass'
    """
    return infer_kind_with_doubt(values)[0]


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


def resolve_requested_kinds(tasks, names):
    """Map the ``tasks`` parameter to one requested kind (or "auto") per column."""
    if isinstance(tasks, str):
        requested = [tasks] * len(names)
    else:
        requested = per_task_values("tasks", tasks, names, "auto")
    for name, kind in zip(names, requested):
        if kind != "auto" and kind not in TASK_KINDS:
            raise ValueError(
                f"tasks: task {name!r} has kind {kind!r}; allowed kinds are "
                f"{('auto',) + TASK_KINDS}."
            )
    return requested


def check_kind_fits_column(name, kind, column):
    """Raise a ValueError naming the column when its values cannot be a ``kind`` task."""
    values_kind = _column_values_kind(column)
    labelled = column[column.notna()]
    if kind == "regression" and values_kind not in ("float", "integer"):
        example = plain(labelled.iloc[0]) if len(labelled) else None
        raise ValueError(
            f"Task {name!r} is set to 'regression' but its column holds non-numeric "
            f"values (e.g. {example!r}, dtype {column.dtype}); regression needs numbers. "
            "Allowed kinds for this column: 'binary' or 'multiclass'."
        )
    if values_kind == "complex":
        raise ValueError(f"Task {name!r}: complex values are not supported as targets.")
    if kind == "regression":
        return
    n_classes = labelled.nunique()
    if n_classes < 2:
        raise ValueError(
            f"Task {name!r} ({kind}) has 1 class ({plain(labelled.iloc[0])!r}) among its "
            "labelled rows; a classification task needs at least 2 classes."
        )
    if kind == "binary" and n_classes > 2:
        raise ValueError(
            f"Task {name!r} is set to 'binary' but has {n_classes} classes; "
            "use 'multiclass'."
        )
