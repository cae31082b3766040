"""Saving and loading fitted models in a format whose loading executes no code.

A model file is a zip archive holding ``model.json`` (format version, constructor
parameters, the fitted state of every component, the training history) and
``weights.pt`` (the network's and the optimizer's ``state_dict``, written by
``torch.save`` and read back with ``weights_only=True``, which refuses anything but
tensors and plain containers). pickle and joblib also work, but unpickling a file runs
whatever code it names: use them for files you made yourself.
"""

import io
import json
import pickle
import zipfile

import numpy as np
import torch
from skorch.history import History

from ._features import FeatureEncoder
from ._state import StateError, decode_value, encode_value
from ._tasks import TargetEncoder
from ._training import seeded_torch

FORMAT = "sk-mmoe model"
FORMAT_VERSION = 1

# Fitted components that carry state beyond the weights: attribute -> class with
# get_state() / from_state(state).
# (In the order of the estimator's _keep_encoders.)
COMPONENTS = {"_feature_encoder": FeatureEncoder, "_target_encoder": TargetEncoder}


def save_model(model, path):
    """Save a fitted :class:`~sk_mmoe.MMoERegressorClassifier` to ``path``.

    The file holds everything ``predict``, ``predict_proba``, ``gate_weights`` and
    further ``partial_fit`` calls need: weights, optimizer state, target encoding,
    feature names, parameters and history. :func:`load_model` reads it back without
    running any code stored in it.

    Parameters
    ----------
    model : MMoERegressorClassifier
        A fitted model. Its parameters must be plain values (numbers, strings, tuples,
        lists, dicts) or torch.optim classes; ``callbacks`` may hold skorch's
        ``LRScheduler`` (with a scheduler name or class and plain arguments) and
        ``GradientNormClipping``, and where each schedule stands is saved with the model,
        so that ``partial_fit`` after :func:`load_model` continues it. A model with other
        callback objects or a custom optimizer class is refused (pickle it instead).
    path : str or path-like
        Where to write; an existing file is replaced.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier, load_model, save_model
    >>> X = np.random.RandomState(0).normal(size=(60, 3))
    >>> model = MMoERegressorClassifier(n_experts=2, max_epochs=2, random_state=0)
    >>> model = model.fit(X, X[:, 0] > 0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skmmoe")
    >>> save_model(model, path)
    >>> restored = load_model(path)
    >>> bool((restored.predict_proba(X) == model.predict_proba(X)).all())
    True
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    params = {
        name: encode_value(value, f"parameter {name!r}")
        for name, value in model.get_params(deep=False).items()
    }
    fitted = {
        "n_iter_": int(model.n_iter_),
        "n_features_in_": int(model.n_features_in_),
        # Whether training held out validation rows: partial_fit continues the same way.
        "stops_early": bool(getattr(model, "_stops_early", False)),
        "output_shrinkage_": [float(f) for f in model.output_shrinkage_],
    }
    if hasattr(model, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(name) for name in model.feature_names_in_]
    # Where each learning-rate schedule stands (see _schedules): continued after loading.
    fitted["lr_schedulers"] = encode_value(
        getattr(model, "_scheduler_states", {}), "learning-rate scheduler state"
    )
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": type(model).__name__,
        "params": params,
        "fitted": fitted,
        "components": {name: getattr(model, name).get_state() for name in COMPONENTS},
        "history": model.history_.to_list(),
    }
    state = {
        "module": {k: v.detach().cpu() for k, v in model.module_.state_dict().items()},
        "optimizer": model.optimizer_.state_dict(),
        # Learned task weights (task_weights="uncertainty") live in the criterion.
        "criterion": {k: v.detach().cpu() for k, v in model.criterion_.state_dict().items()},
    }
    if "sparse_optimizer_" in vars(model):
        # The lazy Adam state of a large categorical table (see _net_hooks).
        state["sparse_optimizer"] = model.sparse_optimizer_.state_dict()
    weights = io.BytesIO()
    torch.save(state, weights)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.json", json.dumps(document, default=_json_default))
        archive.writestr("weights.pt", weights.getvalue())


def load_model(path, *, device=None):
    """Load a model written by :func:`save_model`, executing nothing stored in the file.

    Parameters
    ----------
    path : str or path-like
    device : str, torch.device or None, default=None
        Where to put the network; None keeps the saved ``device`` parameter (e.g. pass
        ``"cpu"`` to load a model trained on a GPU on a machine without one).

    Returns
    -------
    model : MMoERegressorClassifier
        Fitted, with the saved parameters; ``predict`` gives the saved model's results.

    Raises
    ------
    ValueError
        If the file is not a model file of a supported format version, or was altered
        (malformed JSON or fields, weights that do not fit, or anything but tensors in
        the weights file).

    Examples
    --------
    See :func:`save_model`.
    """
    from ._estimator import MMoERegressorClassifier

    document, weights = _read_archive(path)
    try:
        params = {
            name: decode_value(value, f"parameter {name!r}")
            for name, value in _field(document, "params", dict).items()
        }
        if device is not None:
            params["device"] = device
        model = MMoERegressorClassifier(**params)
        fitted = _field(document, "fitted", dict)
        model.n_features_in_ = _positive_int(fitted.get("n_features_in_"), "n_features_in_")
        if "feature_names_in_" in fitted:
            names = fitted["feature_names_in_"]
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise StateError("feature_names_in_ must be a list of strings.")
            if len(names) != model.n_features_in_:
                raise StateError("feature_names_in_ does not match n_features_in_.")
            model.feature_names_in_ = np.asarray(names, dtype=object)
        components = _field(document, "components", dict)
        model._keep_encoders(
            *(component.from_state(_field(components, name, dict))
              for name, component in COMPONENTS.items())
        )
        stops_early = fitted.get("stops_early")
        if not isinstance(stops_early, bool):
            raise StateError("stops_early must be true or false.")
        model._stops_early, model._eval_dataset = stops_early, None
        schedulers = decode_value(fitted.get("lr_schedulers", {}), "lr_schedulers")
        if not (isinstance(schedulers, dict)
                and all(isinstance(state, dict) for state in schedulers.values())):
            raise StateError("lr_schedulers must map callback names to scheduler states.")
        model._scheduler_states = schedulers
        model._validate_own_params()
        with seeded_torch(0, model.device):
            model.initialize()
        model.module_.load_state_dict(weights["module"])
        model.optimizer_.load_state_dict(weights["optimizer"])
        if ("sparse_optimizer" in weights) != ("sparse_optimizer_" in vars(model)):
            raise StateError("the optimizer state of the categorical table does not fit.")
        if "sparse_optimizer" in weights:
            model.sparse_optimizer_.load_state_dict(weights["sparse_optimizer"])
        if "criterion" in weights:
            model.criterion_.load_state_dict(weights["criterion"])
        history = _field(document, "history", list)
        if not all(isinstance(epoch, dict) for epoch in history):
            raise StateError("history must be a list of epochs.")
        model.history_ = History(history)
        model.n_iter_ = _positive_int(fitted.get("n_iter_"), "n_iter_")
        model.output_shrinkage_ = _shrinkage_factors(
            fitted.get("output_shrinkage_", [1.0] * len(model.tasks_)), len(model.tasks_)
        )
        model._set_trained_attributes()
    except (StateError, TypeError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a valid sk-mmoe model file: {exc}") from None
    return model


def _shrinkage_factors(value, n_tasks):
    """The stored ``output_shrinkage_`` (files written before it existed hold none: 1s)."""
    if not (isinstance(value, list) and len(value) == n_tasks
            and all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 <= f <= 1
                    for f in value)):
        raise StateError(f"output_shrinkage_ must be {n_tasks} numbers in [0, 1]; got {value!r}.")
    return np.asarray(value, dtype=float)


def _read_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("model.json")
            weights = archive.read("weights.pt")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(
            f"{path} is not an sk-mmoe model file (a zip with model.json and weights.pt): {exc}"
        ) from None
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: model.json is not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not an sk-mmoe model file (no {FORMAT!r} marker).")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {version!r}; this sk-mmoe reads version "
            f"{FORMAT_VERSION}. Load it with the sk-mmoe release that wrote it."
        )
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: weights.pt holds something other than tensors, or is damaged; it "
            f"was not loaded ({first_line})."
        ) from None
    # "criterion" and "sparse_optimizer" (only with a large categorical table) joined in
    # the same format version; files written before them lack them.
    if not (isinstance(state, dict)
            and {"module", "optimizer"} <= set(state)
            and set(state) <= {"module", "optimizer", "criterion", "sparse_optimizer"}):
        raise ValueError(f"{path}: weights.pt does not hold the expected state dicts.")
    return document, state


def _field(document, name, kind):
    value = document.get(name) if isinstance(document, dict) else None
    if not isinstance(value, kind):
        raise StateError(f"field {name!r} is missing or not a {kind.__name__}.")
    return value


def _positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StateError(f"{name} must be a positive integer, got {value!r}.")
    return value


def _json_default(value):
    # The history holds numpy scalars here and there (e.g. losses from user callbacks).
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"history holds a {type(value).__name__}, which cannot be saved as JSON.")
