"""The inputs of a training call (X, y, sample_weight, eval_set) as the datasets skorch reads.

At the first training call (``reset=True``) the feature and target encoders are fitted here,
and the task attributes they determine are set on the estimator; later calls, and the
``eval_set``, are encoded with the fitted encoders.
"""

import torch

from ._data import TensorBatchDataset, check_sample_weight
from ._features import FeatureEncoder
from ._tasks import TargetEncoder


def training_dataset(estimator, X, y, sample_weight, *, reset):
    """The training rows as a ``TensorBatchDataset``; ``reset=True`` fits the encoders first."""
    X_tensor = _encode_features(estimator, X, reset=reset)
    if reset:
        encoder = TargetEncoder(estimator.tasks).fit(y)
    else:
        encoder = estimator._target_encoder
    y_encoded = encoder.transform(y)
    _check_same_rows(X_tensor, y_encoded, "X", "y")
    if reset:
        set_task_attributes(estimator, encoder)
        # task_weights can be checked against the tasks only now; fail before training.
        estimator._resolved_task_weights()
    return _dataset(X_tensor, y_encoded, sample_weight)


def eval_set_dataset(estimator, eval_set):
    """``fit``'s ``eval_set``, encoded as the training rows were; None when not given."""
    if eval_set is None:
        return None
    if not isinstance(eval_set, (tuple, list)) or len(eval_set) not in (2, 3):
        raise ValueError(
            "eval_set must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val); "
            f"got {type(eval_set).__name__}"
            + (f" of length {len(eval_set)}" if isinstance(eval_set, (tuple, list)) else "")
            + "."
        )
    X_val, y_val, *weight = eval_set
    X_tensor = estimator._feature_encoder.transform(estimator, X_val)
    y_encoded = estimator._target_encoder.transform(y_val)
    _check_same_rows(X_tensor, y_encoded, "X_val", "y_val", context="eval_set: ")
    return _dataset(X_tensor, y_encoded, weight[0] if weight else None)


def set_task_attributes(estimator, encoder):
    """Keep the fitted target ``encoder`` and set the task attributes it determines."""
    estimator._target_encoder = encoder
    estimator.task_names_ = encoder.names
    estimator.task_types_ = [spec.kind for spec in encoder.specs_]
    estimator.classes_ = [spec.classes for spec in encoder.specs_]


def _encode_features(estimator, X, *, reset):
    if not reset:
        return estimator._feature_encoder.transform(estimator, X)
    encoder = FeatureEncoder()
    X_tensor = encoder.fit_transform(estimator, X, numeric_embedding=estimator.numeric_embedding)
    estimator._feature_encoder = encoder
    return X_tensor


def _check_same_rows(X_tensor, y_encoded, X_name, y_name, context=""):
    if y_encoded.shape[0] != X_tensor.shape[0]:
        raise ValueError(
            f"{context}{X_name} has {X_tensor.shape[0]} rows but {y_name} has "
            f"{y_encoded.shape[0]}; they must have the same number of rows."
        )


def _dataset(X_tensor, y_encoded, sample_weight):
    weights = check_sample_weight(sample_weight, X_tensor.shape[0])
    return TensorBatchDataset(X_tensor, torch.from_numpy(y_encoded), weights)
