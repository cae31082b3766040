"""Task kinds as objects: what a target column is, and how the network learns and predicts it.

Each kind owns everything that depends on it: the labels it accepts and how it encodes them
for training, its output width, its link from the network's raw outputs to predictions and
probabilities, its per-row loss, its default metric, and decoding back to the user's labels.
The rest of the package asks the task object, so that a new kind is one class here (as
scikit-learn's ``sklearn/_loss/loss.py`` pairs each loss with its link).

``tasks=`` takes the names in :data:`TASK_KINDS` or task objects (for kinds with
parameters); a fitted model lists its fitted task objects in ``tasks_``.

Examples
--------
>>> import numpy as np
>>> import pandas as pd
>>> from sk_mmoe import MMoERegressorClassifier
>>> from sk_mmoe.tasks import Quantile
>>> rng = np.random.RandomState(0)
>>> X = rng.normal(size=(200, 3))
>>> y = pd.DataFrame({"visits": rng.poisson(np.exp(X[:, 0])), "upper": X[:, 1]})
>>> model = MMoERegressorClassifier(
...     tasks={"visits": "poisson", "upper": Quantile(0.9)}, max_epochs=3, random_state=0
... ).fit(X, y)
>>> model.tasks_
[Poisson(), Quantile(alpha=0.9)]
>>> bool((model.predict(X)["visits"] > 0).all())
True
"""

import copy
import numbers

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._state import StateError, decode_value, encode_value

# Beyond this magnitude a prediction a few standard deviations away could overflow float64.
_LARGEST_TARGET = np.finfo(np.float64).max / 1e3

__all__ = [
    "AbsoluteError",
    "Binary",
    "Gamma",
    "Huber",
    "Multiclass",
    "Poisson",
    "Quantile",
    "Regression",
    "TASK_KINDS",
    "Task",
    "Tweedie",
    "get_task",
]


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
        """Predictions of :meth:`predict_raw` (as numpy) in the user's label space."""
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


def get_task(value, where="tasks"):
    """The task object for a name in :data:`TASK_KINDS` or a :class:`Task` (returned as is)."""
    if isinstance(value, Task):
        value._check_params()
        return value
    if isinstance(value, str) and value in TASK_KINDS:
        return TASK_KINDS[value]()
    raise ValueError(
        f"{where}: {value!r} is not a task kind; allowed are the names "
        f"{sorted(TASK_KINDS)} and task objects such as Quantile(0.9) or Tweedie(power=1.5) "
        "from sk_mmoe.tasks."
    )


# -- quantities ----------------------------------------------------------------------------


class _Quantity(Task):
    """A numeric target, trained on ``(y - location_) / scale_``."""

    def _fit(self, column, labelled):
        values = self._checked_values(labelled)
        self.location_, self.scale_ = self._scaling(values)

    def _checked_values(self, column):
        """The labelled values as float64, refused when this kind cannot learn them."""
        name = self.name_
        if column_values_kind(column) not in ("float", "integer"):
            example = plain(column.iloc[0]) if len(column) else None
            raise ValueError(
                f"Task {name!r} is set to {self.kind!r} but its column holds non-numeric "
                f"values (e.g. {example!r}, dtype {column.dtype}); {self.kind} needs numbers. "
                "Allowed kinds for this column: 'binary' or 'multiclass'."
            )
        values = column.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"Target column {name!r} contains infinity; {self.kind} targets must be finite.")
        peak = float(np.abs(values).max()) if len(values) else 0.0
        if peak > _LARGEST_TARGET:
            raise ValueError(
                f"Target column {name!r} holds values up to {peak:.3g} in magnitude; targets "
                f"must stay below {_LARGEST_TARGET:.3g} so that standardised values and "
                "predictions stay finite. Rescale the column (divide it by a power of ten)."
            )
        self._check_range(values)
        return values

    def _check_range(self, values):
        """Raise ValueError when values fall outside the kind's support."""

    def _scaling(self, values):
        return _mean_and_std(values)

    def encode(self, column):
        present = column.notna().to_numpy()
        values = self._checked_values(column[present])
        encoded = np.full(len(column), np.nan, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = ((values - self.location_) / self.scale_).astype(np.float32)
        if not np.isfinite(scaled).all():
            raise ValueError(
                f"Target column {self.name_!r} holds values (up to {np.abs(values).max():.3g}) "
                f"too far from those of the first fit (location {self.location_:.3g}, scale "
                f"{self.scale_:.3g}) to be standardised; call fit to rescale, or rescale the column."
            )
        encoded[present] = scaled
        return encoded

    def predict_raw(self, raw):
        return raw[:, 0].double() * self.scale_ + self.location_

    def decode_targets(self, encoded):
        return np.asarray(encoded, dtype=np.float64) * self.scale_ + self.location_

    def _fitted_state(self):
        return {"location": self.location_, "scale": self.scale_}

    def _set_fitted_state(self, state):
        location, scale = state.get("location"), state.get("scale")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                   for v in (location, scale)) or scale <= 0:
            return False
        self.location_, self.scale_ = float(location), float(scale)
        return True


def _mean_and_std(values):
    """Mean and standard deviation, free of overflow and underflow (1 when constant)."""
    peak = float(np.abs(values).max())
    if peak == 0:
        return 0.0, 1.0
    # Squares overflow beyond ~1e154 and underflow below ~1e-154: compute the moments of
    # the values divided by their largest magnitude, then scale them back.
    unit = values / peak
    scale = float(unit.std()) * peak
    return float(unit.mean()) * peak, scale if scale > 0 else 1.0


def _median_and_spread(values):
    """Median and a robust standard deviation (IQR / 1.349), for losses meant to resist
    outliers: a heavy tail must not set the unit the loss measures residuals in."""
    location = float(np.median(values))
    q25, q75 = np.percentile(values, [25, 75])
    spread = float(q75 - q25) / 1.349
    if not spread > 0:
        spread = _mean_and_std(values)[1]
    return location, spread


class Regression(_Quantity):
    """Squared error on the standardised target; predicts the conditional mean.

    Examples
    --------
    >>> from sk_mmoe.tasks import get_task
    >>> get_task("regression")
    Regression()
    """

    kind = "regression"
    uncertainty_factor = 0.5

    def loss(self, raw, target):
        return (raw[:, 0] - target).square()


class Huber(_Quantity):
    """Huber loss, squared for small residuals and linear beyond ``delta``: robust to a
    heavy-tailed target while still aiming at its centre.

    The target is centred on its median and scaled by a robust standard deviation
    (interquartile range / 1.349), so ``delta`` is in those units: 1.0 treats residuals
    beyond about one typical deviation as outliers.

    Parameters
    ----------
    delta : float > 0, default=1.0
    """

    kind = "huber"

    def __init__(self, delta=1.0):
        self.delta = delta

    def _params(self):
        return {"delta": self.delta}

    def _check_params(self):
        if not (isinstance(self.delta, numbers.Real) and np.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"Huber: delta must be a positive number; got {self.delta!r}.")

    def _scaling(self, values):
        return _median_and_spread(values)

    def loss(self, raw, target):
        return nn.functional.huber_loss(raw[:, 0], target, reduction="none", delta=float(self.delta))


class Quantile(_Quantity):
    """Pinball (quantile) loss; predicts the ``alpha`` quantile of the target given ``X``,
    e.g. ``Quantile(0.9)`` for an upper bound that 90% of rows fall below.

    Parameters
    ----------
    alpha : float in (0, 1), default=0.5
    """

    kind = "quantile"

    def __init__(self, alpha=0.5):
        self.alpha = alpha

    def _params(self):
        return {"alpha": self.alpha}

    def _check_params(self):
        if not (isinstance(self.alpha, numbers.Real) and 0 < self.alpha < 1):
            raise ValueError(f"Quantile: alpha must be in (0, 1); got {self.alpha!r}.")

    @property
    def quantile_level(self):
        return float(self.alpha)

    def _scaling(self, values):
        return _median_and_spread(values)

    def loss(self, raw, target):
        residual = target - raw[:, 0]
        return torch.maximum(self.alpha * residual, (self.alpha - 1) * residual)


class AbsoluteError(Quantile):
    """Absolute error; predicts the conditional median (``Quantile(0.5)``, scaled so the
    loss is the mean absolute error in robust standard deviations)."""

    kind = "absolute_error"

    def __init__(self):
        self.alpha = 0.5

    def _params(self):
        return {}

    def loss(self, raw, target):
        return (target - raw[:, 0]).abs()


class _LogLink(_Quantity):
    """A non-negative target with a log link: the network outputs ``log(mean / scale_)``,
    ``scale_`` being the training mean, so an untrained network predicts that mean and
    the loss has the same size whatever the target's unit."""

    tweedie_power = None

    def _scaling(self, values):
        mean = float(values.mean())
        if not mean > 0:
            raise ValueError(
                f"Target column {self.name_!r} has mean {mean:g}; a {self.kind} task "
                "needs a positive mean (a log link cannot fit an all-zero target)."
            )
        return 0.0, mean

    def _check_range(self, values):
        low = float(values.min())
        if low < 0 or (self._positive_only and low == 0):
            need = "positive values (> 0)" if self._positive_only else "non-negative values (>= 0)"
            raise ValueError(
                f"Target column {self.name_!r} holds {low:g}; a {self.kind} task needs "
                f"{need}. Use 'regression' (or 'huber') for targets that can be negative."
            )

    _positive_only = False

    def predict_raw(self, raw):
        return torch.exp(raw[:, 0].double()) * self.scale_


class Poisson(_LogLink):
    """Poisson deviance with a log link, for counts (visits, purchases, claims);
    predictions are never negative.

    The loss of a row is ``exp(f) - y f`` on ``y`` divided by the training mean, which is
    half the Poisson deviance less a term that depends on ``y`` alone.
    """

    kind = "poisson"
    tweedie_power = 1.0

    def loss(self, raw, target):
        f = raw[:, 0]
        return torch.exp(f) - target * f


class Gamma(_LogLink):
    """Gamma deviance with a log link, for positive amounts whose spread grows with their
    size (costs, durations, prices); every target must be > 0."""

    kind = "gamma"
    tweedie_power = 2.0
    _positive_only = True

    def loss(self, raw, target):
        f = raw[:, 0]
        return target * torch.exp(-f) + f


class Tweedie(_LogLink):
    """Tweedie deviance with a log link and ``1 < power < 2``: a compound Poisson-gamma
    model for non-negative amounts with many exact zeros (insurance claims, spend).

    Parameters
    ----------
    power : float in (1, 2), default=1.5
        Nearer 1 behaves like Poisson, nearer 2 like gamma; use ``"poisson"`` or
        ``"gamma"`` for the ends.
    """

    kind = "tweedie"

    def __init__(self, power=1.5):
        self.power = power

    def _params(self):
        return {"power": self.power}

    def _check_params(self):
        if not (isinstance(self.power, numbers.Real) and 1 < self.power < 2):
            raise ValueError(
                f"Tweedie: power must be in (1, 2); got {self.power!r}. Use 'poisson' for "
                "power 1 and 'gamma' for power 2."
            )

    @property
    def tweedie_power(self):
        return float(self.power)

    def loss(self, raw, target):
        f, p = raw[:, 0], float(self.power)
        return -target * torch.exp(f * (1 - p)) / (1 - p) + torch.exp(f * (2 - p)) / (2 - p)


# -- classes -------------------------------------------------------------------------------


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


#: The names ``tasks=`` accepts, and the class each one builds.
TASK_KINDS = {
    task.kind: task
    for task in (Regression, Binary, Multiclass, Poisson, Gamma, Tweedie, Huber, AbsoluteError, Quantile)
}
