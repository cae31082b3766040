"""Target encoding and decoding, the one place a user's ``y`` is read and written back.

Every target column is a task. ``TargetEncoder`` turns a user's ``y`` (1-D or 2-D array,
Series or DataFrame) into a float tensor the network trains on, and turns network outputs
back into the user's label space. The loss on the encoded targets is in ``_loss.py``.
"""

import numbers

import numpy as np
import pandas as pd
import torch

from ._frames import as_pandas
from ._task_kinds import (
    TASK_KINDS,
    TaskKindWarning,
    check_kind_fits_column,
    infer_kind_with_doubt,
    infer_task_kind,
    plain,
    plain_list,
    resolve_requested_kinds,
)
from ._state import StateError, decode_value, encode_value
from ._warnings import warn

# Pickles of models fitted before the loss moved to _loss.py name the class here.
from ._loss import MultiTaskLoss  # noqa: F401

# Beyond this magnitude a prediction a few standard deviations away could overflow float64.
_LARGEST_TARGET = np.finfo(np.float64).max / 1e3

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


class TaskSpec:
    """What the encoder learned about one task at fit."""

    def __init__(self, name, kind, classes=None, label_dtype=None, mean=0.0, scale=1.0):
        self.name = name
        self.kind = kind
        self.classes = classes
        self.label_dtype = label_dtype
        self.mean = mean
        self.scale = scale

    @property
    def n_outputs(self):
        return len(self.classes) if self.kind == "multiclass" else 1


def _check_one_label_type(labelled):
    # True == 1 for pandas' unique, so a column mixing bool with numbers would merge
    # labels at fit and then reject one of them as unseen; refuse it up front.
    if labelled.dtype != object:
        return
    examples = {}
    for value in labelled:
        examples.setdefault(_label_key(value)[0], plain(value))
    if len(examples) > 1:
        types = sorted({type(v).__name__ for v in examples.values()})
        raise ValueError(
            f"Target column {labelled.name!r} mixes label types {types} (e.g. "
            f"{', '.join(repr(v) for v in examples.values())}); use one type per column, "
            "e.g. convert it with astype(bool), astype(int) or astype(str)."
        )


def _standardisation(name, values):
    """Mean and standard deviation of a regression column, free of overflow and underflow."""
    peak = float(np.abs(values).max())
    if peak > _LARGEST_TARGET:
        raise ValueError(
            f"Target column {name!r} holds values up to {peak:.3g} in magnitude; regression "
            f"targets must stay below {_LARGEST_TARGET:.3g} so that standardised values and "
            "predictions stay finite. Rescale the column (divide it by a power of ten)."
        )
    if peak == 0:
        return 0.0, 1.0
    # Squares overflow beyond ~1e154 and underflow below ~1e-154: compute the moments of
    # the values divided by their largest magnitude, then scale them back.
    unit = values / peak
    scale = float(unit.std()) * peak
    return float(unit.mean()) * peak, scale if scale > 0 else 1.0


def _sorted_classes(labelled):
    _check_one_label_type(labelled)
    try:
        classes = np.sort(pd.unique(labelled.to_numpy()))
    except TypeError as exc:
        types = sorted({type(v).__name__ for v in labelled})
        raise ValueError(
            f"Target column {labelled.name!r} mixes label types {types}, which cannot be "
            "ordered; use one type per column."
        ) from exc
    values = classes.tolist()
    if classes.dtype.kind in "OU" and values and all(isinstance(v, str) for v in values):
        # String classes as scikit-learn's classifiers keep them: an object array of str
        # (not numpy's fixed-width strings, whose elements print as np.str_('...')).
        return np.array([str(v) for v in values], dtype=object)
    if classes.dtype == object:
        # An object column of one label type (e.g. True/False with None for missing)
        # gets that type's dtype, so that predictions and metrics see bool or int.
        typed = np.array(values)
        if typed.dtype != object and len({type(v) for v in values}) == 1:
            return typed
    return classes


class TargetEncoder:
    """Encode multi-task targets for training and decode predictions.

    Parameters
    ----------
    tasks : "auto", str, list or dict
        Task kinds: ``"auto"`` (see :func:`infer_task_kind`), one kind for every column,
        one per column, or ``{column: kind}`` (columns left out are inferred).

    Attributes
    ----------
    specs_ : list of TaskSpec
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
        requested = resolve_requested_kinds(self.tasks, names)
        self.specs_ = [self._fit_column(name, kind, frame[name]) for name, kind in zip(names, requested)]
        return self

    def _fit_column(self, name, requested, column):
        labelled = column[column.notna()]
        if len(labelled) == 0:
            raise ValueError(
                f"Target column {name!r} has no labels at all (every value is missing); "
                "drop the column or provide labels."
            )
        if requested == "auto":
            kind, doubt = infer_kind_with_doubt(column)
        else:
            kind, doubt = requested, None
        check_kind_fits_column(name, kind, column)
        if doubt is not None:
            warn(f"Target column {name!r} " + doubt.replace("%r", repr(name)), TaskKindWarning)
        if kind == "regression":
            values = labelled.to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                raise ValueError(f"Target column {name!r} contains infinity; regression targets must be finite.")
            mean, scale = _standardisation(name, values)
            return TaskSpec(name, kind, mean=mean, scale=scale)
        classes = _sorted_classes(labelled)
        dtype = column.dtype if isinstance(column.dtype, pd.CategoricalDtype) else None
        return TaskSpec(name, kind, classes=classes, label_dtype=dtype)

    @property
    def names(self):
        return [spec.name for spec in self.specs_]

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
        if frame.shape[1] != len(self.specs_):
            raise ValueError(
                f"y has {frame.shape[1]} column(s) but the model was fitted on "
                f"{len(self.specs_)} task(s) {self.names}."
            )
        frame = frame.copy(deep=False)
        frame.columns = self.names
        return frame

    def transform(self, y):
        """Encode ``y`` as float32 ``(n_samples, n_tasks)``: standardised values for
        regression, class indices for classification, NaN where the label is missing.

        Raises
        ------
        ValueError
            If a classification column holds a label not seen at fit.
        """
        frame = self.select_columns(y, allow_extra=False)
        encoded = np.full(frame.shape, np.nan, dtype=np.float32)
        for t, spec in enumerate(self.specs_):
            column = frame.iloc[:, t]
            present = column.notna().to_numpy()
            if spec.kind == "regression":
                check_kind_fits_column(spec.name, "regression", column)
                values = column[present].to_numpy(dtype=np.float64)
                with np.errstate(over="ignore", invalid="ignore"):
                    standardised = ((values - spec.mean) / spec.scale).astype(np.float32)
                if not np.isfinite(standardised).all():
                    raise ValueError(
                        f"Target column {spec.name!r} holds values (up to "
                        f"{np.abs(values).max():.3g}) too far from those of the first fit "
                        f"(mean {spec.mean:.3g}, standard deviation {spec.scale:.3g}) to be "
                        "standardised; call fit to rescale, or rescale the column."
                    )
                encoded[present, t] = standardised
                continue
            labels = column[present].to_numpy()
            codes, unseen = self.encode_labels(t, labels)
            if unseen.any():
                shown = {_label_key(v): plain(v) for v in labels[unseen]}
                raise ValueError(
                    f"Target column {spec.name!r} holds label(s) "
                    f"{sorted(shown.values(), key=repr)} not seen at the first fit; "
                    f"known classes are {plain_list(spec.classes)}."
                )
            encoded[present, t] = codes
        return encoded

    def encode_labels(self, t, labels):
        """Class indices of ``labels`` for task ``t`` and a mask of labels unseen at fit."""
        classes = self.specs_[t].classes
        # Compare as objects: "1" and 1 must not match, and mixed types must not crash.
        lookup = {_label_key(c): i for i, c in enumerate(classes)}
        codes = np.array([lookup.get(_label_key(v), -1) for v in labels], dtype=np.int64)
        return codes, codes < 0

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
        columns = []
        for t, spec in enumerate(self.specs_):
            out = outputs[:, t, : spec.n_outputs]
            if spec.kind == "regression":
                columns.append(out[:, 0].astype(np.float64) * spec.scale + spec.mean)
            elif spec.kind == "binary":
                columns.append(spec.classes[(out[:, 0] > 0).astype(np.int64)])
            else:
                columns.append(spec.classes[out.argmax(axis=1)])
        return columns

    def probabilities(self, outputs):
        """Per-task class probabilities (``None`` for regression tasks)."""
        probas = []
        for t, spec in enumerate(self.specs_):
            out = torch.as_tensor(outputs[:, t, : spec.n_outputs], dtype=torch.float64)
            if spec.kind == "regression":
                probas.append(None)
            elif spec.kind == "binary":
                p1 = torch.sigmoid(out[:, 0])
                probas.append(torch.stack([1 - p1, p1], dim=1).numpy())
            else:
                probas.append(torch.softmax(out, dim=1).numpy())
        return probas

    def assemble(self, columns, index=None):
        """Shape per-task predictions like the ``y`` seen at fit."""
        if self.layout_ == "frame":
            data = {}
            for spec, col in zip(self.specs_, columns):
                series = pd.Series(col, index=index)
                if spec.label_dtype is not None:
                    series = series.astype(spec.label_dtype)
                data[spec.name] = series
            return pd.DataFrame(data, index=index)
        if self.layout_ == "series":
            series = pd.Series(columns[0], index=index, name=self.specs_[0].name)
            dtype = self.specs_[0].label_dtype
            return series.astype(dtype) if dtype is not None else series
        if self.layout_ == "1d":
            return columns[0]
        return _stack_columns(columns, keep_types=getattr(self, "object_array_", False))

    def get_state(self):
        """The fitted encoding as JSON-able data (see :mod:`sk_mmoe._state`)."""
        specs = [
            {
                "name": encode_value(spec.name, "task name"),
                "kind": spec.kind,
                "classes": encode_value(spec.classes, f"classes of task {spec.name!r}"),
                "label_dtype": encode_value(spec.label_dtype, f"dtype of task {spec.name!r}"),
                "mean": spec.mean,
                "scale": spec.scale,
            }
            for spec in self.specs_
        ]
        return {"tasks": encode_value(self.tasks, "tasks"), "layout": self.layout_, "specs": specs}

    @classmethod
    def from_state(cls, state):
        """Rebuild a fitted encoder from :meth:`get_state`'s data, checking every field."""
        try:
            encoder = cls(decode_value(state["tasks"], "tasks"))
            encoder.layout_ = state["layout"]
            encoder.specs_ = [_spec_from_state(spec) for spec in state["specs"]]
        except (KeyError, TypeError) as exc:
            raise StateError(f"target encoding: missing or malformed field ({exc!r}).") from None
        if encoder.layout_ not in ("frame", "series", "1d", "2d") or not encoder.specs_:
            raise StateError(f"target encoding: invalid layout {encoder.layout_!r} or no tasks.")
        return encoder


def _spec_from_state(state):
    name = decode_value(state["name"], "task name")
    kind = state["kind"]
    classes = decode_value(state["classes"], f"classes of task {name!r}")
    label_dtype = decode_value(state["label_dtype"], f"dtype of task {name!r}")
    mean, scale = state["mean"], state["scale"]
    numbers_ok = all(isinstance(v, (int, float)) and np.isfinite(v) for v in (mean, scale))
    if kind == "regression":
        valid = classes is None and label_dtype is None and numbers_ok and scale > 0
    else:
        valid = (
            kind in TASK_KINDS
            and isinstance(classes, np.ndarray)
            and len(classes) >= 2
            and (kind == "multiclass" or len(classes) == 2)
            and (label_dtype is None or isinstance(label_dtype, pd.CategoricalDtype))
        )
    if not valid:
        raise StateError(f"target encoding: task {name!r} has an invalid stored spec ({kind!r}).")
    return TaskSpec(name, kind, classes=classes, label_dtype=label_dtype, mean=mean, scale=scale)


def _label_key(value):
    # Compare numpy scalars as the Python values they hold; keep bool apart from int,
    # which would otherwise collide (True == 1).
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, numbers.Number):
        return ("number", value)
    return (type(value).__name__, value)


def _stack_columns(columns, keep_types=False):
    kinds = {np.asarray(c).dtype.kind for c in columns}
    numeric = kinds <= set("biuf") and not (keep_types and len(kinds) > 1)
    dtype = np.result_type(*columns) if numeric or len(kinds) == 1 else object
    return np.column_stack([np.asarray(c, dtype=dtype) for c in columns])
