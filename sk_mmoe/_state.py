"""A JSON codec for the values a fitted model's state holds, that executes nothing on load.

Fitted components (the target encoder, and any feature encoder) describe themselves with
``get_state()`` as plain data and rebuild with ``from_state(state)``; this module turns the
values inside such states (tuples, numpy arrays with their dtype, category dtypes, the
optimizer class, learning-rate schedules) into JSON and back. Decoding only builds numbers,
strings, lists, arrays and a fixed set of known objects: no import, no pickle, no ``eval``.
"""

import numbers

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import GradientNormClipping, LRScheduler
from skorch.callbacks import lr_scheduler as skorch_lr_scheduler

# numpy dtype kinds an array may be stored with: bool, integers, floats, unicode, object.
_ARRAY_KINDS = "biufUO"


# skorch callbacks a saved model may hold: their parameters are plain values (and a
# scheduler class), and everything else they need is rebuilt from the optimizer's state
# and the history when training continues. Others (EarlyStopping, Checkpoint, user
# classes) are refused by name.
SAVEABLE_CALLBACKS = {cls.__name__: cls for cls in (LRScheduler, GradientNormClipping)}


def _scheduler_class(name):
    """The scheduler class skorch's ``LRScheduler(policy=name)`` would use, or None."""
    policy = getattr(skorch_lr_scheduler, name, None)
    schedulers = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if isinstance(policy, type) and issubclass(policy, schedulers):
        return policy
    return None


class StateError(ValueError):
    """A stored state is malformed: tampered with, truncated or from another format."""


def encode_value(value, where="value"):
    """``value`` as JSON-able data; raises TypeError naming ``where`` for what cannot be stored."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biufU":
        return encode_value(value.item(), where)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v, where) for v in value]}
    if isinstance(value, list):
        return [encode_value(v, where) for v in value]
    if isinstance(value, dict):
        return {"dict": [[encode_value(k, where), encode_value(v, where)] for k, v in value.items()]}
    if isinstance(value, np.ndarray) and value.dtype.kind in _ARRAY_KINDS and value.ndim == 1:
        return {"ndarray": [encode_value(v, where) for v in value.tolist()], "dtype": value.dtype.str}
    if isinstance(value, pd.CategoricalDtype):
        categories = encode_value(np.asarray(value.categories), where)
        return {"categorical": categories, "ordered": bool(value.ordered)}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, type) and getattr(torch.optim, value.__name__, None) is value:
        return {"torch_optimizer": value.__name__}
    from .metrics import TaskScorer
    from .tasks import Task  # tasks stores its own state with this codec

    if isinstance(value, Task):
        params = {key: encode_value(v, where) for key, v in value._params().items()}
        return {"task": value.kind, "params": params}
    if isinstance(value, TaskScorer):
        return {"task_scorer": [encode_value(value.task, where), value.metric]}
    if isinstance(value, type) and _scheduler_class(value.__name__) is value:
        return {"lr_scheduler": value.__name__}
    if SAVEABLE_CALLBACKS.get(type(value).__name__) is type(value):
        params = encode_value(value.get_params(deep=False), f"{where} ({type(value).__name__})")
        return {"skorch_callback": type(value).__name__, "params": params}
    raise TypeError(
        f"{where}: cannot store a {type(value).__module__}.{type(value).__qualname__} "
        f"({value!r}) in the safe format, which holds numbers, strings, lists, tuples, "
        "dicts, 1-D arrays, torch.optim classes and the skorch callbacks "
        f"{sorted(SAVEABLE_CALLBACKS)} with such parameters. Use pickle or joblib "
        "(trusted files only) for such a model."
    )


def decode_value(data, where="value"):
    """Inverse of :func:`encode_value`; raises :class:`StateError` on anything else."""
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        return [decode_value(v, where) for v in data]
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise StateError(f"{where}: unexpected stored value {data!r}.")
    if "tuple" in data and len(data) == 1:
        return tuple(decode_value(_expect(data["tuple"], list, where), where))
    if "dict" in data and len(data) == 1:
        pairs = _expect(data["dict"], list, where)
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise StateError(f"{where}: a stored dict must hold [key, value] pairs.")
        return {_hashable(decode_value(k, where), where): decode_value(v, where) for k, v in pairs}
    if set(data) == {"ndarray", "dtype"}:
        dtype = _dtype(data["dtype"], where)
        items = decode_value(_expect(data["ndarray"], list, where), where)
        if dtype.kind == "O":
            array = np.empty(len(items), dtype=object)
            array[:] = items
            return array
        try:
            return np.array(items, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise StateError(f"{where}: stored array does not fit dtype {dtype}: {exc}") from None
    if set(data) == {"categorical", "ordered"}:
        categories = decode_value(data["categorical"], where)
        if not isinstance(categories, np.ndarray) or not isinstance(data["ordered"], bool):
            raise StateError(f"{where}: malformed stored category dtype.")
        return pd.CategoricalDtype(categories, ordered=data["ordered"])
    if set(data) == {"device"}:
        try:
            return torch.device(_expect(data["device"], str, where))
        except RuntimeError as exc:
            raise StateError(f"{where}: unknown device {data['device']!r}.") from exc
    if set(data) == {"torch_optimizer"}:
        name = _expect(data["torch_optimizer"], str, where)
        optimizer = getattr(torch.optim, name, None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise StateError(f"{where}: {name!r} is not an optimizer in torch.optim.")
        return optimizer
    if set(data) == {"task", "params"}:
        return _decode_task(data, where)
    if set(data) == {"task_scorer"}:
        from .metrics import make_task_scorer

        pair = _expect(data["task_scorer"], list, where)
        if len(pair) != 2 or not (pair[1] is None or isinstance(pair[1], str)):
            raise StateError(f"{where}: malformed stored task scorer {pair!r}.")
        try:
            return make_task_scorer(decode_value(pair[0], where), pair[1])
        except ValueError as exc:
            raise StateError(f"{where}: {exc}") from None
    if set(data) == {"lr_scheduler"}:
        policy = _scheduler_class(_expect(data["lr_scheduler"], str, where))
        if policy is None:
            raise StateError(f"{where}: {data['lr_scheduler']!r} is not a learning-rate scheduler.")
        return policy
    if set(data) == {"skorch_callback", "params"}:
        callback = SAVEABLE_CALLBACKS.get(data["skorch_callback"])
        params = decode_value(data["params"], where)
        if callback is None or not isinstance(params, dict):
            raise StateError(f"{where}: {data['skorch_callback']!r} is not a saveable callback.")
        try:
            return callback(**params)
        except TypeError as exc:
            raise StateError(f"{where}: malformed {callback.__name__} parameters: {exc}") from None
    raise StateError(f"{where}: unexpected stored value {data!r}.")


def _decode_task(data, where):
    from .tasks import TASK_KINDS

    kind, params = data["task"], _expect(data["params"], dict, where)
    if kind not in TASK_KINDS:
        raise StateError(f"{where}: unknown task kind {kind!r}.")
    params = {key: decode_value(value, where) for key, value in params.items()}
    try:
        task = TASK_KINDS[kind](**params)
        task._check_params()
    except (TypeError, ValueError) as exc:
        raise StateError(f"{where}: invalid {kind} task parameters {params} ({exc}).") from None
    return task


def _expect(value, kind, where):
    if not isinstance(value, kind):
        raise StateError(f"{where}: expected a {kind.__name__}, got {value!r}.")
    return value


def _hashable(key, where):
    try:
        hash(key)
    except TypeError:
        raise StateError(f"{where}: stored dict key {key!r} is not hashable.") from None
    return key


def _dtype(text, where):
    try:
        dtype = np.dtype(_expect(text, str, where))
    except TypeError:
        raise StateError(f"{where}: unknown dtype {text!r}.") from None
    if dtype.kind not in _ARRAY_KINDS:
        raise StateError(f"{where}: dtype {text!r} is not allowed in a stored array.")
    return dtype
