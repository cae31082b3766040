"""Target encoding and decoding, the one place a user's ``y`` is read and written back.

Every target column is a task. ``TargetEncoder`` turns a user's ``y`` (1-D or 2-D array,
Series or DataFrame) into a float tensor the network trains on, and turns network outputs
back into the user's label space. The loss on the encoded targets is in ``_loss.py``.
"""

import numpy as np
import pandas as pd
import torch

from ._frames import as_pandas
from ._task_kinds import (
    TaskKindWarning,
    check_target_column,
    infer_task,
    infer_task_kind,
    resolve_requested_tasks,
)
from ._state import StateError, decode_value, encode_value
from ._warnings import warn
from .tasks import TASK_KINDS, Regression, Task

# Pickles of models fitted before the loss moved to _loss.py name the class here.
from ._loss import MultiTaskLoss  # noqa: F401

__all__ = ["TASK_KINDS", "TargetEncoder", "TaskKindWarning", "infer_task_kind"]


def _as_frame(y):
    """Return ``(frame, layout)`` for any accepted ``y``; the caller's object is untouched."""
    y = as_pandas(y, "y")
    if isinstance(y, pd.DataFrame):
        if y.shape[1] == 0:
            raise ValueError("y has 0 columns; at least one target column is required.")
        return y, "frame"
    if isinstance(y, pd.Series):
        name = 0 if y.name is None else y.name
        return y.to_frame(name=name), "series"
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None."
        )
    array = np.asarray(y)
    if array.dtype.kind == "c":
        raise ValueError("Complex data not supported for y; got a complex array.")
    if array.ndim == 1:
        return pd.DataFrame({0: array}), "1d"
    if array.ndim == 2:
        if array.shape[1] == 0:
            raise ValueError("y has 0 columns; at least one target column is required.")
        return pd.DataFrame(array), "2d"
    raise ValueError(
        f"y must be 1-D or 2-D (one column per task); got an array with shape {array.shape}."
    )


class TargetEncoder:
    """Encode multi-task targets for training and decode predictions.

    Each column's task object (:mod:`sk_mmoe.tasks`) does the work for its kind; this
    class maps between the user's ``y`` and the columns.

    Parameters
    ----------
    tasks : "auto", str, Task, list or dict
        Task kinds: ``"auto"`` (see :func:`infer_task_kind`), one kind for every column,
        one per column, or ``{column: kind}`` (columns left out are inferred); a kind is
        a name of :data:`sk_mmoe.tasks.TASK_KINDS` or a task object.

    Attributes
    ----------
    tasks_ : list of Task
        The fitted task of each column.
    layout_ : {"frame", "series", "1d", "2d"}
        The form ``y`` had at fit, which predictions take back.
    object_array_ : bool
        Whether ``y`` was a 2-D object array, whose predictions keep each column's types.
    """

    def __init__(self, tasks="auto"):
        self.tasks = tasks

    def fit(self, y):
        frame, self.layout_ = _as_frame(y)
        # An object array keeps each column's label type in predictions (bool stays bool
        # beside a float column instead of becoming 0.0/1.0).
        self.object_array_ = self.layout_ == "2d" and np.asarray(y).dtype == object
        names = list(frame.columns)
        if len(set(names)) != len(names):
            raise ValueError(f"y has duplicated column names {names}; task names must be unique.")
        requested = resolve_requested_tasks(self.tasks, names)
        self.tasks_ = [
            self._fit_column(name, task, frame[name]) for name, task in zip(names, requested)
        ]
        return self

    @staticmethod
    def _fit_column(name, task, column):
        check_target_column(name, column)
        doubt = None
        if task is None and column.notna().any():
            task, doubt = infer_task(column)
        # A column without any label has nothing to infer from; fitting it refuses it.
        fitted = (task or Regression()).fit(name, column)
        if doubt is not None:
            warn(f"Target column {name!r} " + doubt.replace("%r", repr(name)), TaskKindWarning)
        return fitted

    @property
    def names(self):
        return [task.name_ for task in self.tasks_]

    def select_columns(self, y, allow_extra=True):
        """Return ``y`` as a frame whose columns line up with the fitted tasks.

        With ``allow_extra=False`` a DataFrame column that is not a fitted task is an
        error instead of being left out.
        """
        frame, layout = _as_frame(y)
        if layout == "frame" and self.layout_ == "frame":
            missing = [name for name in self.names if name not in frame.columns]
            if missing:
                raise ValueError(
                    f"y is missing the task column(s) {missing}; the model was fitted on "
                    f"{self.names}."
                )
            extra = [name for name in frame.columns if name not in self.names]
            if extra and not allow_extra:
                raise ValueError(
                    f"y has column(s) {extra} that are not tasks of the fitted model "
                    f"{self.names}; the tasks are fixed when the network is first trained. "
                    "Drop the column(s), or call fit (with warm_start=False) to train a new "
                    "network on the new set of tasks."
                )
            return frame[self.names]
        if frame.shape[1] != len(self.tasks_):
            raise ValueError(
                f"y has {frame.shape[1]} column(s) but the model was fitted on "
                f"{len(self.tasks_)} task(s) {self.names}."
            )
        frame = frame.copy(deep=False)
        frame.columns = self.names
        return frame

    def transform(self, y):
        """Encode ``y`` as float32 ``(n_samples, n_tasks)``, each column as its task
        encodes it (e.g. standardised values, class indices), NaN where a label is missing.

        Raises
        ------
        ValueError
            If a column holds a value its task cannot take (a label not seen at fit, a
            negative count, ...).
        """
        frame = self.select_columns(y, allow_extra=False)
        encoded = np.full(frame.shape, np.nan, dtype=np.float32)
        for t, task in enumerate(self.tasks_):
            column = frame.iloc[:, t]
            check_target_column(task.name_, column)
            encoded[:, t] = task.encode(column)
        return encoded

    def encode_labels(self, t, labels):
        """Class indices of ``labels`` for classification task ``t`` and a mask of labels
        unseen at fit."""
        return self.tasks_[t].encode_labels(labels)

    def decode(self, outputs):
        """Per-task predictions in the original label space.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_tasks, max_outputs)
            Raw network outputs.

        Returns
        -------
        list of ndarray, one per task
        """
        return [
            task.decode(task.predict_raw(self._raw(outputs, t)).numpy())
            for t, task in enumerate(self.tasks_)
        ]

    def probabilities(self, outputs):
        """Per-task class probabilities (``None`` for tasks without classes)."""
        probas = []
        for t, task in enumerate(self.tasks_):
            proba = task.proba_raw(self._raw(outputs, t))
            probas.append(None if proba is None else proba.numpy())
        return probas

    def _raw(self, outputs, t):
        return torch.as_tensor(outputs[:, t, : self.tasks_[t].n_outputs])

    def assemble(self, columns, index=None):
        """Shape per-task predictions like the ``y`` seen at fit."""
        if self.layout_ == "frame":
            data = {}
            for task, col in zip(self.tasks_, columns):
                series = pd.Series(col, index=index)
                if task.is_classifier and task.label_dtype_ is not None:
                    series = series.astype(task.label_dtype_)
                data[task.name_] = series
            return pd.DataFrame(data, index=index)
        if self.layout_ == "series":
            series = pd.Series(columns[0], index=index, name=self.tasks_[0].name_)
            dtype = getattr(self.tasks_[0], "label_dtype_", None)
            return series.astype(dtype) if dtype is not None else series
        if self.layout_ == "1d":
            return columns[0]
        return _stack_columns(columns, keep_types=getattr(self, "object_array_", False))

    def get_state(self):
        """The fitted encoding as JSON-able data (see :mod:`sk_mmoe._state`)."""
        return {
            "tasks": encode_value(self.tasks, "tasks"),
            "layout": self.layout_,
            "task_states": [task.get_state() for task in self.tasks_],
        }

    @classmethod
    def from_state(cls, state):
        """Rebuild a fitted encoder from :meth:`get_state`'s data, checking every field."""
        try:
            encoder = cls(decode_value(state["tasks"], "tasks"))
            encoder.layout_ = state["layout"]
            encoder.tasks_ = [Task.from_state(task) for task in state["task_states"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise StateError(f"target encoding: missing or malformed field ({exc!r}).") from None
        if encoder.layout_ not in ("frame", "series", "1d", "2d") or not encoder.tasks_:
            raise StateError(f"target encoding: invalid layout {encoder.layout_!r} or no tasks.")
        return encoder


def _stack_columns(columns, keep_types=False):
    kinds = {np.asarray(c).dtype.kind for c in columns}
    numeric = kinds <= set("biuf") and not (keep_types and len(kinds) > 1)
    dtype = np.result_type(*columns) if numeric or len(kinds) == 1 else object
    return np.column_stack([np.asarray(c, dtype=dtype) for c in columns])
