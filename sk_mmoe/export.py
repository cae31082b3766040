"""Export a fitted model for serving: one ONNX graph from raw features to per-task outputs.

:func:`export_onnx` writes the whole inference path, the feature encoding included
(standardisation, NaN imputation and missing flags, the categorical level lookup with
unseen and missing levels, the periodic and piecewise-linear numeric embeddings), so
that onnxruntime (or any ONNX runtime with the ``ai.onnx.ml`` domain) serves a model
without Python. :func:`onnx_inputs` turns ``X`` as ``predict`` takes it into the
graph's inputs.

The graph's contract
--------------------
Inputs, one row per sample (``batch`` is any number of rows):

- A model fitted on a DataFrame with string column names, or with categorical columns,
  has one 1-D input per column of ``X``, named after it (``x0``, ``x1``, ... when the
  names were not strings): ``double`` for a numeric column (NaN for a missing value;
  bool columns as 0/1), ``string`` for a categorical column. A categorical value is the
  ``str`` of its level (``"3"`` for a category level 3); ``missing_category`` (the empty
  string by default) is a missing value, and any other string a level unseen at fit.
- A model fitted on an array or a sparse matrix has one input ``X`` of shape
  ``(batch, n_features)``, ``double``. Sparse rows enter in dense form: ONNX runtimes
  do not take sparse inputs, and ``predict`` densifies small batches too.

Outputs, per task, named after the task (``str(name)``):

- ``<task>``: the prediction, as ``predict`` gives it: ``double`` values for a quantity
  (every kind of :mod:`sk_mmoe.tasks` but ``binary`` and ``multiclass``, each through
  its own link); for a classification task the class label itself, a tensor of the
  labels' type (``string``, ``int64``, ``double`` or ``bool``).
- ``<task>_proba``, classification tasks only: ``double`` probabilities of shape
  ``(batch, n_classes)``, columns in the order of ``model.classes_[t]``.

The model's metadata (``metadata_props["sk_mmoe"]``, JSON) lists the inputs with their
kind and levels, ``missing_category``, and each task's kind, output names and classes.
A prediction equals ``predict`` up to float32 rounding (about 1e-6 relative).
"""

import copy
import json
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from ._data import SparseRows
from ._features import FIRST_LEVEL_CODE, MISSING_CODE, UNKNOWN_CODE, _scipy_view

__all__ = ["export_onnx", "onnx_inputs"]

_RESERVED_PREFIX = "sk_mmoe/"


class _InputColumn(NamedTuple):
    """One per-column graph input: ``position`` is the column's place in ``X``, ``index``
    its place in the encoded tensor; ``levels`` (the strings of its levels) is None for
    a numeric column."""

    name: str
    position: int
    index: int
    levels: list = None
    missing: str = ""


def _check_model(model, caller):
    from ._estimator import MMoERegressorClassifier

    if not isinstance(model, MMoERegressorClassifier):
        hint = ""
        if hasattr(model, "steps"):
            hint = (" For a Pipeline, export its last step (pipe[-1]) and run the steps "
                    "before it first, as their own ONNX graph or in Python.")
        raise TypeError(
            f"{caller} takes a fitted MMoERegressorClassifier; got {type(model).__name__}.{hint}"
        )
    check_is_fitted(model)


def _level_strings(name, levels, missing_category):
    """The strings that stand for a categorical column's levels in the graph."""
    strings = [str(level) for level in levels]
    seen = {}
    for level, string in zip(levels, strings):
        if string in seen:
            raise ValueError(
                f"X column {name!r}: levels {seen[string]!r} and {level!r} are both "
                f"{string!r} as strings, so a string input cannot tell them apart. Give the "
                "column levels with distinct strings (e.g. astype(str)) and fit again."
            )
        seen[string] = level
    if missing_category in seen:
        raise ValueError(
            f"X column {name!r} has a level {seen[missing_category]!r}, which is the "
            f"missing_category {missing_category!r} that marks a missing value; pass "
            "another missing_category (a string no categorical column has as a level)."
        )
    return strings


def _input_columns(model, missing_category=""):
    """The per-column inputs of ``model``'s graph in ``X``'s column order, or None when
    the graph takes one matrix ``X``."""
    if not isinstance(missing_category, str):
        raise TypeError(f"missing_category must be a str; got {missing_category!r}.")
    encoder = model._feature_encoder
    names = getattr(model, "feature_names_in_", None)
    if names is None and not encoder.categorical_columns_:
        return None
    if names is None:
        names = [f"x{j}" for j in range(model.n_features_in_)]
    columns = {
        j: _InputColumn(str(names[j]), j, k) for k, j in enumerate(encoder.numeric_columns_)
    }
    offset = len(columns)
    for k, (j, levels) in enumerate(zip(encoder.categorical_columns_, encoder.categories_)):
        strings = _level_strings(str(names[j]), levels, missing_category)
        columns[j] = _InputColumn(str(names[j]), j, offset + k, strings, missing_category)
    return [columns[j] for j in sorted(columns)]


def _task_links(model):
    """The fitted task objects, checked to decode as the graph does.

    The graph calls each task's torch link, ``predict_raw`` (and ``proba_raw`` for a
    classification task), so a new kind of task exports with its link; what follows the
    link in ``predict`` (``decode``) must be the identity, or the lookup of a class index
    in ``classes_``, which the graph does in ONNX.
    """
    from .tasks import Binary, Task

    for task in model.tasks_:
        graph_decode = Binary.decode if task.is_classifier else Task.decode
        if type(task).decode is not graph_decode:
            raise ValueError(
                f"Task {task.name_!r} ({task!r}) turns its predictions into labels in Python "
                f"({type(task).__name__}.decode), which an ONNX graph cannot follow; "
                "export_onnx supports tasks whose decode is the identity or the class "
                "lookup in classes_."
            )
    return list(model.tasks_)


def _output_names(tasks, columns):
    """Each task's output names, checked to be unique beside the input names."""
    names, taken = [], {"X"} if columns is None else {c.name for c in columns}
    for name in taken:
        if name.startswith(_RESERVED_PREFIX):
            raise ValueError(
                f"X column {name!r} starts with 'sk_mmoe/', which the graph keeps for its own "
                "values; rename the column and fit again."
            )
    for task in tasks:
        wanted = [str(task.name_)] + ([f"{task.name_}_proba"] if task.is_classifier else [])
        for name in wanted:
            if name in taken or name.startswith(_RESERVED_PREFIX):
                raise ValueError(
                    f"The ONNX output {name!r} of task {task.name_!r} would have the name of "
                    "another input or output (or one starting with 'sk_mmoe/'); rename the "
                    "task column or the feature column and fit again."
                )
            taken.add(name)
        names.append(wanted)
    return names


def _label_value(value):
    return value.item() if isinstance(value, np.generic) else value


def _metadata(model, columns, tasks, output_names, missing_category):
    if columns is None:
        inputs = [{"name": "X", "kind": "matrix", "n_features": int(model.n_features_in_)}]
    else:
        inputs = [
            {"name": c.name, "kind": "numeric"} if c.levels is None
            else {"name": c.name, "kind": "categorical", "levels": c.levels}
            for c in columns
        ]
    outputs = [
        {
            "task": _label_value(task.name_),
            "kind": task.kind,
            "spec": repr(task),
            "prediction": names[0],
            "probabilities": names[1] if task.is_classifier else None,
            "classes": [_label_value(c) for c in task.classes_] if task.is_classifier else None,
        }
        for task, names in zip(tasks, output_names)
    ]
    return json.dumps(
        {"inputs": inputs, "missing_category": missing_category, "outputs": outputs},
        default=str,
    )


def _import_onnx():
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise ImportError(
            f"export_onnx needs onnx and onnxscript ({exc.name} is missing); install the "
            "onnx extra: pip install 'sk-mmoe[onnx]'."
        ) from exc
    import onnx

    return onnx


def export_onnx(model, path, *, missing_category=""):
    """Write ``model``'s whole inference path as an ONNX graph to ``path``.

    Parameters
    ----------
    model : MMoERegressorClassifier
        A fitted model.
    path : str or path-like
        Where to write the ``.onnx`` file.
    missing_category : str, default=""
        The string that marks a missing value in a categorical input. It must not be the
        string of a level seen at fit.

    Returns
    -------
    onnx.ModelProto
        The model written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    TypeError
        If ``model`` is not an ``MMoERegressorClassifier`` or ``missing_category`` not a str.
    ValueError
        If a part of the model has no ONNX form: two levels of a categorical column with
        the same string, a level equal to ``missing_category``, class labels of a type
        without an ONNX tensor type (e.g. bytes), a task whose ``decode`` is neither the
        identity nor a lookup in ``classes_``, or an input or output name taken twice.
    ImportError
        If onnx or onnxscript is not installed.

    See Also
    --------
    onnx_inputs : the graph's inputs for an ``X`` as ``predict`` takes it.

    Notes
    -----
    The module docstring (:mod:`sk_mmoe.export`) describes the inputs and outputs.
    Exporting needs the ``onnx`` extra (``pip install 'sk-mmoe[onnx]'``): onnx, and
    onnxscript for ``torch.onnx``'s exporter; serving needs only an ONNX runtime.

    Examples
    --------
    >>> import numpy as np, onnxruntime, tempfile, os
    >>> from sk_mmoe import MMoERegressorClassifier, export_onnx, onnx_inputs
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.normal(size=(100, 3)), rng.normal(size=(100, 2))
    >>> model = MMoERegressorClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> _ = export_onnx(model, path)
    >>> session = onnxruntime.InferenceSession(path)
    >>> [o.name for o in session.get_outputs()]
    ['0', '1']
    >>> first, second = session.run(None, onnx_inputs(model, X[:5]))
    >>> bool(np.allclose(first, model.predict(X[:5])[:, 0], rtol=1e-5))
    True
    """
    _check_model(model, "export_onnx")
    onnx = _import_onnx()
    from . import _onnx_graph as graph

    columns = _input_columns(model, missing_category)
    tasks = _task_links(model)
    output_names = _output_names(tasks, columns)
    for task in tasks:
        if task.is_classifier and graph.label_array(task.classes_) is None:
            classes = np.asarray(task.classes_)
            raise ValueError(
                f"Task {task.name_!r} has class labels of dtype {classes.dtype} (e.g. "
                f"{_label_value(classes[0])!r}), which have no ONNX tensor type; ONNX outputs "
                "str, int, float or bool labels. Convert the labels (e.g. astype(str)) and "
                "fit again."
            )
    encoder = model._feature_encoder
    n_encoded = len(encoder.numeric_columns_) + len(encoder.categorical_columns_)
    # The network's outputs, in ServingModule's order, and where each one goes.
    routes = [
        (name, task.classes_ if task.is_classifier and k == 0 else None)
        for task, names in zip(tasks, output_names)
        for k, name in enumerate(names)
    ]
    network_outputs = [f"sk_mmoe/out{i}" for i in range(len(routes))]
    serving = graph.ServingModule(copy.deepcopy(model.module_).to("cpu"), tasks)
    with torch.no_grad():
        network_model = graph.export_network(serving, n_encoded, network_outputs)
    whole = graph.join(
        graph.encoding_graph(columns, n_encoded, network_model),
        network_model,
        graph.labels_graph(
            [(out, name, classes) for out, (name, classes) in zip(network_outputs, routes)],
            network_model,
        ),
    )
    whole.producer_name = "sk-mmoe"
    onnx.helper.set_model_props(
        whole, {"sk_mmoe": _metadata(model, columns, tasks, output_names, missing_category)}
    )
    onnx.checker.check_model(whole)
    onnx.save(whole, path)
    return whole


def onnx_inputs(model, X, *, missing_category=""):
    """The inputs of ``model``'s ONNX graph (see :func:`export_onnx`) for ``X``.

    ``X`` is checked and read as ``predict`` reads it; the result is what a serving
    client sends: ``{input name: ndarray}``, ``float64`` for numbers (NaN for missing
    values), ``str`` objects for categorical columns (``missing_category`` for missing
    values, the value's ``str`` for a level unseen at fit).

    Parameters
    ----------
    model : MMoERegressorClassifier
        The fitted model that was exported.
    X : array-like, sparse matrix or DataFrame
        As ``predict`` takes it. A sparse matrix comes back dense.
    missing_category : str, default=""
        As given to :func:`export_onnx`.

    Returns
    -------
    dict of str to ndarray
    """
    _check_model(model, "onnx_inputs")
    columns = _input_columns(model, missing_category)
    encoded = model._feature_encoder.transform(model, X)
    if isinstance(encoded, SparseRows):
        dense = _scipy_view(encoded).toarray()
    else:
        dense = encoded.numpy()
    if columns is None:
        return {"X": dense.astype(np.float64)}
    inputs = {}
    for column in columns:
        values = dense[:, column.index]
        if column.levels is None:
            inputs[column.name] = values.astype(np.float64)
        else:
            inputs[column.name] = _category_strings(column, values.astype(np.int64), X)
    return inputs


def _category_strings(column, codes, X):
    """The strings of one categorical column: its levels' strings, ``missing`` for a
    missing value, and for an unseen value its ``str`` unless that is taken."""
    table = np.empty(FIRST_LEVEL_CODE + len(column.levels), dtype=object)
    table[UNKNOWN_CODE], table[MISSING_CODE] = "", column.missing
    table[FIRST_LEVEL_CODE:] = column.levels
    strings = table[codes]
    unseen = np.flatnonzero(codes == UNKNOWN_CODE)
    taken = set(column.levels) | {column.missing}
    original = X.iloc[:, column.position].to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else None
    for row in unseen:
        string = str(original[row]) if original is not None else ""
        while string in taken:
            # Its str is a fitted level's (e.g. "1" beside a level 1): any other string
            # is unseen to the graph too.
            string += "\x00"
        strings[row] = string
    return strings
