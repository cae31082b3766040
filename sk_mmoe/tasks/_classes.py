"""Classification kinds: class labels, their encoding, the logistic and softmax links."""

import numbers

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._state import encode_value, decode_value
from ._base import Task, plain, plain_list


class _Classification(Task):
    """Class labels; ``classes_`` sorted, training targets are indices into it."""

    is_classifier = True
    default_metric = "accuracy"

    def _fit(self, column, labelled):
        self.classes_ = _sorted_classes(labelled)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"Task {self.name_!r} ({self.kind}) has 1 class ({plain(labelled.iloc[0])!r}) "
                "among its labelled rows; a classification task needs at least 2 classes."
            )
        self._check_n_classes(n_classes)
        dtype = column.dtype
        self.label_dtype_ = dtype if isinstance(dtype, pd.CategoricalDtype) else None

    def _check_n_classes(self, n_classes):
        """Raise ValueError when this kind cannot have ``n_classes`` classes."""

    def encode(self, column):
        present = column.notna().to_numpy()
        labels = column[present].to_numpy()
        codes, unseen = self.encode_labels(labels)
        if unseen.any():
            shown = {_label_key(v): plain(v) for v in labels[unseen]}
            raise ValueError(
                f"Target column {self.name_!r} holds label(s) "
                f"{sorted(shown.values(), key=repr)} not seen at the first fit; "
                f"known classes are {plain_list(self.classes_)}."
            )
        encoded = np.full(len(column), np.nan, dtype=np.float32)
        encoded[present] = codes
        return encoded

    def encode_labels(self, labels):
        """Class indices of ``labels`` and a mask of labels unseen at fit."""
        # Compare as objects: "1" and 1 must not match, and mixed types must not crash.
        lookup = {_label_key(c): i for i, c in enumerate(self.classes_)}
        codes = np.array([lookup.get(_label_key(v), -1) for v in labels], dtype=np.int64)
        return codes, codes < 0

    def decode(self, predicted):
        return self.classes_[np.asarray(predicted).astype(np.int64)]

    def decode_targets(self, encoded):
        return self.classes_[np.asarray(encoded).astype(np.int64)]

    def predict_raw(self, raw):
        return self.proba_raw(raw).argmax(dim=1).double()

    def class_weights(self, class_weight, codes):
        """One weight per class of ``classes_`` from ``"balanced"`` or ``{class: weight}``
        (classes left out weigh 1). ``codes``: the labelled training rows' class indices,
        which ``"balanced"`` weighs as scikit-learn does, ``n / (n_classes * count)``."""
        if isinstance(class_weight, str) and class_weight == "balanced":
            counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=len(self.classes_))
            return len(codes) / (len(counts) * np.maximum(counts, 1))
        if not isinstance(class_weight, dict):
            raise ValueError(
                f"class_weight for task {self.name_!r} must be 'balanced' or a dict "
                f"{{class: weight}}; got {class_weight!r}."
            )
        weights = np.ones(len(self.classes_))
        keys = {_label_key(c): i for i, c in enumerate(self.classes_)}
        for label, weight in class_weight.items():
            if _label_key(label) not in keys:
                raise ValueError(
                    f"class_weight for task {self.name_!r} names class {plain(label)!r}, "
                    f"which is not among its classes {plain_list(self.classes_)}."
                )
            if not (isinstance(weight, numbers.Real) and np.isfinite(weight) and weight >= 0):
                raise ValueError(
                    f"class_weight for task {self.name_!r}, class {plain(label)!r}: weights "
                    f"must be finite and non-negative; got {weight!r}."
                )
            weights[keys[_label_key(label)]] = float(weight)
        return weights

    def _fitted_state(self):
        return {
            "classes": encode_value(self.classes_, f"classes of task {self.name_!r}"),
            "label_dtype": encode_value(self.label_dtype_, f"dtype of task {self.name_!r}"),
        }

    def _set_fitted_state(self, state):
        classes = decode_value(state.get("classes"), "classes")
        label_dtype = decode_value(state.get("label_dtype"), "label dtype")
        if not (isinstance(classes, np.ndarray) and len(classes) >= 2):
            return False
        if not (label_dtype is None or isinstance(label_dtype, pd.CategoricalDtype)):
            return False
        self.classes_, self.label_dtype_ = classes, label_dtype
        try:
            self._check_n_classes(len(classes))
        except ValueError:
            return False
        return True


class Binary(_Classification):
    """Two classes; logistic loss on one output, ``P(classes_[1]) = sigmoid(output)``."""

    kind = "binary"

    def _check_n_classes(self, n_classes):
        if n_classes > 2:
            raise ValueError(
                f"Task {self.name_!r} is set to 'binary' but has {n_classes} classes; "
                "use 'multiclass'."
            )

    def loss(self, raw, target):
        return nn.functional.binary_cross_entropy_with_logits(raw[:, 0], target, reduction="none")

    def predict_raw(self, raw):
        # The sign of the logit, without the sigmoid's rounding at 0.5.
        return (raw[:, 0] > 0).double()

    def proba_raw(self, raw):
        p1 = torch.sigmoid(raw[:, 0].double())
        return torch.stack([1 - p1, p1], dim=1)


class Multiclass(_Classification):
    """Two or more classes; softmax over one output per class and cross-entropy."""

    kind = "multiclass"

    @property
    def n_outputs(self):
        return len(self.classes_)

    def loss(self, raw, target):
        return nn.functional.cross_entropy(raw, target.long(), reduction="none")

    def proba_raw(self, raw):
        return torch.softmax(raw.double(), dim=1)


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
