"""The base class of task kinds, and what a column's values are."""

import copy

import numpy as np
import pandas as pd

from .._state import StateError, decode_value, encode_value


def plain(value):
    """A label as the Python value it holds, so messages show ``'no'``, not ``np.str_('no')``."""
    return value.item() if isinstance(value, np.generic) else value


def plain_list(values):
    """``values`` as a list of Python values, for messages."""
    return [plain(v) for v in values]


def column_values_kind(values):
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



class Task:
    """Base class of a task kind.

    A task object given in ``tasks=`` is a specification and is never changed; fitting
    returns a copy that has learned the column's encoding (``name_`` and the kind's own
    fitted attributes, e.g. ``classes_`` or ``scale_``).

    Class attributes
    ----------------
    kind : str
        The name ``tasks=`` accepts and ``task_types_`` shows.
    is_classifier : bool
        Whether predictions are class labels (and ``predict_proba`` applies).
    default_metric : str
        The metric of :func:`sk_mmoe.task_scores` and ``score``: ``"r2"`` for quantities,
        ``"accuracy"`` for classes, as scikit-learn's regressors and classifiers score.
    uncertainty_factor : float
        Kendall et al.'s factor on ``exp(-s)`` for learned task weights: 1/2 for a
        Gaussian likelihood (squared error), 1 otherwise.
    """

    kind = None
    is_classifier = False
    default_metric = "r2"
    uncertainty_factor = 1.0

    def _params(self):
        """The constructor's parameters, by name."""
        return {}

    def __repr__(self):
        params = ", ".join(f"{key}={value!r}" for key, value in self._params().items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other):
        # Tasks of one kind with the same parameters configure the same network.
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self):
        return hash((type(self).__name__, tuple(self._params().items())))

    # -- fitting ---------------------------------------------------------------------

    def fit(self, name, column):
        """A fitted copy of this task for the target ``column`` (a Series; NaN or None
        marks a missing label). Raises ValueError naming the column when its values
        cannot be this kind's targets."""
        labelled = column[column.notna()]
        if len(labelled) == 0:
            raise ValueError(
                f"Target column {name!r} has no labels at all (every value is missing); "
                "drop the column or provide labels."
            )
        task = copy.copy(self)
        task.name_ = name
        task._fit(column, labelled)
        return task

    def _fit(self, column, labelled):
        raise NotImplementedError

    @property
    def n_outputs(self):
        """Width of the network's output for this task."""
        return 1

    def encode(self, column):
        """The column as float32 training targets, NaN where the label is missing."""
        raise NotImplementedError

    # -- the link and the loss, on raw network outputs of shape (n, n_outputs) ---------

    def loss(self, raw, target):
        """Per-row loss ``(batch,)`` of raw outputs ``(batch, n_outputs)`` against encoded
        targets ``(batch,)``. Missing labels arrive as 0 and are masked (and the rows
        weighted) by :class:`sk_mmoe._loss.MultiTaskLoss`, once for all tasks."""
        raise NotImplementedError

    def predict_raw(self, raw):
        """Predictions as a float tensor ``(n,)``: values in the target's units, or class
        indices into ``classes_``."""
        raise NotImplementedError

    def proba_raw(self, raw):
        """Class probabilities ``(n, n_classes)``, or None for a quantity."""
        return None

    def decode(self, predicted):
        """Predictions of :meth:`predict_raw` (as numpy) in the user's label space.

        It is the identity for quantities and ``classes_[index]`` for classes: the ONNX
        export (:func:`sk_mmoe.export_onnx`) rebuilds exactly these two, and refuses a
        task whose ``decode`` does anything else."""
        return predicted

    def decode_targets(self, encoded):
        """Encoded targets (non-missing) back in the user's label space."""
        raise NotImplementedError

    # -- persistence -------------------------------------------------------------------

    def get_state(self):
        """The fitted task as JSON-able data (see :mod:`sk_mmoe._state`)."""
        return {
            "task": encode_value(self, "task"),
            "name": encode_value(self.name_, "task name"),
            "fitted": self._fitted_state(),
        }

    @staticmethod
    def from_state(state):
        """Rebuild a fitted task from :meth:`get_state`'s data, checking every field."""
        task = decode_value(state["task"], "task")
        if not isinstance(task, Task) or not isinstance(state["fitted"], dict):
            raise StateError(f"target encoding: malformed stored task {state['task']!r}.")
        task.name_ = decode_value(state["name"], "task name")
        if not task._set_fitted_state(state["fitted"]):
            raise StateError(
                f"target encoding: task {task.name_!r} has an invalid stored state ({task!r})."
            )
        return task

    def _check_params(self):
        """Raise ValueError for invalid constructor parameters (called at fit)."""


