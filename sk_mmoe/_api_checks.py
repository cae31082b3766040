"""Checks at the estimator's edges: constructor names, the device, and methods a fitted
model does not offer (with the reason)."""

import difflib
import functools
from types import MethodType

import torch

# skorch routes parameters with these prefixes to the optimizer, the callbacks and the
# batch iterators. ``module__`` and ``criterion__`` are accepted here so that ``fit`` can
# say which of our own parameters to use instead.
ROUTING_PREFIXES = ("optimizer__", "callbacks__", "iterator_train__", "iterator_valid__",
                    "module__", "criterion__")


def check_constructor_kwargs(estimator_name, own_names, kwargs):
    """Raise TypeError for keyword arguments that are neither parameters nor routed ones,
    as Python does for any misspelt argument (``n_expert=4``)."""
    unknown = [name for name in kwargs if not name.startswith(ROUTING_PREFIXES)]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, own_names, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(
        f"{estimator_name}.__init__() got unexpected keyword argument(s) {', '.join(hints)}. "
        f"Its parameters are {sorted(own_names)}, plus skorch's routed parameters "
        "starting with optimizer__, callbacks__, iterator_train__ or iterator_valid__."
    )


def check_set_params_names(estimator, names):
    """Raise ValueError for a ``set_params`` name that is neither a parameter nor a routed
    one, as scikit-learn does (skorch stores any ``prefix__name`` silently, so a Pipeline's
    ``mmoe__n_experts`` passed to the bare estimator was ignored)."""
    valid = estimator.get_params(deep=False)
    for name in names:
        if name in valid or name.startswith(ROUTING_PREFIXES):
            continue
        key = name.split("__", 1)[0]
        hint = ""
        if "__" in name:
            hint = (
                f" {key + '__'!r} is not a prefix this estimator routes ("
                f"{', '.join(ROUTING_PREFIXES[:4])}); a Pipeline step's name is a prefix "
                "for the Pipeline's set_params or param_grid only."
            )
        raise ValueError(
            f"Invalid parameter {key!r} for estimator {type(estimator).__name__}. Valid "
            f"parameters are: {sorted(valid)!r}.{hint}"
        )


def check_device(device):
    """Raise ValueError naming ``device`` when torch cannot compute there."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device ({exc}); use 'cpu', 'cuda' or "
            "'cuda:<index>'."
        ) from None
    if parsed.type == "meta":
        raise ValueError(
            "device='meta' holds tensor shapes without data, so a network cannot train or "
            "predict there; use 'cpu' or 'cuda'."
        )
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no GPU is visible"
            raise ValueError(
                f"device={device!r}, but torch {torch.__version__} cannot use CUDA here "
                f"({build}: torch.cuda.is_available() is False); use device='cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}, but only {torch.cuda.device_count()} CUDA device(s) "
                "are visible."
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but torch cannot use MPS on this machine.")


def available_unless(reason):
    """Like scikit-learn's ``available_if``, but the AttributeError says why.

    ``reason(estimator)`` returns None when the method is available, else the message.
    """

    def decorate(method):
        return _ConditionalMethod(method, reason)

    return decorate


def no_classification_task(estimator):
    """Why ``predict_proba`` is unavailable (no task has classes), or None."""
    # Before fit the answer is unknown: expose the method so that calling it raises
    # NotFittedError, as scikit-learn's checks expect.
    tasks = getattr(estimator, "tasks_", None)
    if tasks is None or any(task.is_classifier for task in tasks):
        return None
    return (
        f"predict_proba is not available: every task of this model predicts a quantity "
        f"({', '.join(map(repr, estimator.task_names_))}), which has no class "
        "probabilities. Use predict for the values; pass tasks=... at fit to make a "
        "column a classification task."
    )


class _ConditionalMethod:
    def __init__(self, method, reason):
        self.method = method
        self.reason = reason
        functools.update_wrapper(self, method)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.method
        message = self.reason(obj)
        if message:
            raise AttributeError(message)
        return MethodType(self.method, obj)
