"""Parameter rules that single-value constraints cannot state: layer sizes, routed batch
sizes, callback lists, and which parameters may change between training calls on one network.

``partial_fit``, and ``fit`` with ``warm_start=True``, continue training the network that is
already built. The rule for parameters changed with ``set_params`` in between:

- parameters read at every training call apply: ``lr``, ``max_epochs``, ``batch_size``,
  ``steps_per_epoch``, ``optimizer__*``, ``iterator_*__*``, ``callbacks__*``,
  ``random_state``, ``validation_fraction``, ``shrink_quantities``, ``verbose``;
- parameters of a component that can be rebuilt without touching the network apply by
  rebuilding it (:data:`REBUILT_ON_CHANGE`): a new ``optimizer`` starts with fresh state,
  ``n_iter_no_change`` rebuilds the callbacks; ``early_stopping`` is decided at each call
  and the callbacks follow it;
- training-time settings the built network or loss reads at every step
  (:data:`APPLIED_IN_PLACE`: ``gate_dropout``, ``gate_dropout_mode``, ``gate_temperature``,
  ``gate_balance``, and ``task_weights`` given as numbers) are set on them in place, as
  scikit-learn's ``partial_fit`` uses new hyper-parameters;
- parameters that would change the network's shape, its input encoding, the kind of a
  task, the trained parameters of the loss (``task_weights="uncertainty"``) or the device
  (:data:`STRUCTURAL_PARAMS`) are refused with an error naming them and telling to call
  ``fit``.
"""

from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import Callback
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

from ._task_kinds import per_task_values

BATCH_SIZE = [
    Interval(Integral, 1, None, closed="left"),
    Options(Integral, {-1}),
    StrOptions({"auto"}),
]
# An int is one hidden layer; a sequence, one layer per entry (checked by layer_sizes).
LAYER_SIZES = ["array-like", Interval(Integral, 1, None, closed="left")]

# Baked into the network or its loss when they are built: the network's shape and input
# encoding, the kinds of the tasks, where the weights live. A new architecture parameter
# joins the rule by being added here.
STRUCTURAL_PARAMS = frozenset(
    {
        "tasks",
        "n_experts",
        "expert_layer_sizes",
        "gate_layer_sizes",
        "tower_layer_sizes",
        "architecture",
        "n_task_experts",
        "n_levels",
        "numeric_embedding",
        "device",
    }
)

# Read by the built network (MMoENetwork attributes of the same name) or loss at every
# training step: a change is set on them in place. task_weights applies in place between
# lists of numbers; to or from "uncertainty" it adds or removes trained parameters of the
# loss, and is refused as a structural change.
APPLIED_IN_PLACE = ("gate_dropout", "gate_dropout_mode", "gate_temperature", "gate_balance",
                    "task_weights")

# Read only when a component is built: parameter -> the component rebuilt when it changes.
REBUILT_ON_CHANGE = {
    "optimizer": "optimizer",
    "n_iter_no_change": "callbacks",
    "distributed": "callbacks",
    "scoring": "callbacks",
}
# Every parameter whose built value remember_build records.
_RECORDED = STRUCTURAL_PARAMS | set(APPLIED_IN_PLACE) | set(REBUILT_ON_CHANGE)


def layer_sizes(name, value, allow_empty):
    """``value`` of the layer-size parameter ``name`` as a tuple of positive ints, checked."""
    sizes = [value] if isinstance(value, Integral) else list(value)
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(f"{name} must hold positive integers; got {value!r}.")
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must hold at least one layer size; got {value!r}.")
    return tuple(int(s) for s in sizes)


def check_routed_batch_sizes(estimator):
    """``iterator_train__batch_size`` and ``iterator_valid__batch_size`` obey ``batch_size``'s
    constraint (they replace it for their iterator)."""
    routed = {
        f"{prefix}__batch_size": estimator.get_params_for(prefix)["batch_size"]
        for prefix in ("iterator_train", "iterator_valid")
        if "batch_size" in estimator.get_params_for(prefix)
    }
    constraints = {name: BATCH_SIZE for name in routed}
    validate_parameter_constraints(constraints, routed, caller_name=type(estimator).__name__)


def check_callbacks(callbacks):
    """Each entry of a ``callbacks`` list is a skorch Callback (instance or class) or a
    ``(name, callback)`` pair."""
    if not isinstance(callbacks, list):
        return
    for i, entry in enumerate(callbacks):
        named = isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
        callback = entry[1] if named else entry
        is_callback = isinstance(callback, Callback) or (
            isinstance(callback, type) and issubclass(callback, Callback)
        )
        if not is_callback:
            raise InvalidParameterError(
                f"callbacks[{i}] must be a skorch Callback (an instance or a class) or a "
                f"(name, callback) pair; got {entry!r} ({type(entry).__name__})."
            )


def task_weight_values(task_weights, names):
    """``task_weights`` resolved to one float per task in ``names``, checked."""
    if task_weights is None:
        weights = [1.0] * len(names)
    else:
        weights = per_task_values("task_weights", task_weights, names, 1.0)
    if not all(isinstance(w, Real) for w in weights):
        raise ValueError(
            f"task_weights must hold numbers, one per task {names}; got {task_weights!r}."
        )
    weights = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() == 0:
        raise ValueError(
            f"task_weights must be finite, non-negative and not all zero; got "
            f"{weights.tolist()}."
        )
    return weights


def _comparable(value):
    # Lists, tuples and arrays of the same numbers configure the same network.
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((repr(k), _comparable(v)) for k, v in value.items())))
    return value.item() if isinstance(value, np.generic) else value


def _same(a, b):
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


def remember_build(estimator, names=None):
    """Record the values the network, loss and rebuildable components were built with."""
    built = getattr(estimator, "_built_with", {})
    names = _RECORDED if names is None else names
    built.update(
        {name: _comparable(getattr(estimator, name)) for name in names if hasattr(estimator, name)}
    )
    estimator._built_with = built


def changed_since_build(estimator, names):
    """The parameters among ``names`` whose value differs from the one built with."""
    built = getattr(estimator, "_built_with", {})
    return sorted(
        name
        for name in names
        if name in built and not _same(built[name], _comparable(getattr(estimator, name)))
    )


def prepare_continuation(estimator, caller):
    """Before continuing training: refuse structural changes, rebuild what can be rebuilt.

    Raises
    ------
    ValueError
        If a parameter in :data:`STRUCTURAL_PARAMS` changed since the network was built;
        the message names each one with its old and new value.
    """
    structural = changed_since_build(estimator, STRUCTURAL_PARAMS)
    in_place = changed_since_build(estimator, APPLIED_IN_PLACE)
    if "task_weights" in in_place and "uncertainty" in (
        estimator._built_with["task_weights"], estimator.task_weights
    ):
        structural = sorted(structural + ["task_weights"])
        in_place.remove("task_weights")
    if structural:
        built = estimator._built_with
        changes = ", ".join(
            f"{name} ({built[name]!r} -> {_comparable(getattr(estimator, name))!r})"
            for name in structural
        )
        raise ValueError(
            f"{caller} continues training the network already built, but set_params "
            f"changed {changes} since it was built; these shape the network, its input "
            "encoding, the tasks' kinds or the loss's trained parameters (or move it to "
            "another device) and cannot apply to it. Call fit (with warm_start=False) to "
            "train a new network with them, or set them back."
        )
    _apply_in_place(estimator, in_place)
    rebuilt = changed_since_build(estimator, REBUILT_ON_CHANGE)
    components = {REBUILT_ON_CHANGE[name] for name in rebuilt}
    if "optimizer" in components:
        estimator.initialize_optimizer()
    if "callbacks" in components:
        estimator._initialize_callbacks()
    remember_build(estimator, rebuilt + in_place)


def _apply_in_place(estimator, names):
    """Set the changed training-time settings ``names`` on the built network and loss."""
    values = {name: getattr(estimator, name) for name in names}
    if "task_weights" in values:
        # Checked before anything is set, so a refused value leaves the model as it was.
        values["task_weights"] = task_weight_values(values["task_weights"], estimator.task_names_)
    for name, value in values.items():
        if name == "task_weights":
            buffer = estimator.criterion_.task_weights
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype))
        elif name == "gate_dropout_mode":
            estimator.module_.gate_dropout_mode = value
        else:
            setattr(estimator.module_, name, float(value))
