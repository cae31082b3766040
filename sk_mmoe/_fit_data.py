"""The inputs of a training call (X, y, sample_weight, class_weight, eval_set) as the datasets
skorch reads.

At the first training call (``reset=True``) the feature and target encoders are fitted here
and returned; the estimator keeps them and sets the attributes they determine. Later calls,
and the ``eval_set``, are encoded with the estimator's fitted encoders.
"""

import torch

from ._data import TensorBatchDataset
from ._features import FeatureEncoder
from ._row_weights import row_task_weights
from ._streaming import check_source_call, source_eval_dataset, source_training_dataset
from ._tasks import TargetEncoder
from .sources import is_source


def training_dataset(estimator, X, y, sample_weight, *, reset):
    """``(dataset, feature_encoder, target_encoder)`` for the training rows; with
    ``reset=True`` the encoders are new and fitted on these rows, else the estimator's.
    ``X`` may be a data source (:mod:`sk_mmoe.sources`), whose columns hold the targets."""
    if is_source(X):
        check_source_call(estimator, "fit", y, sample_weight)
        return source_training_dataset(estimator, X, reset=reset)
    if reset:
        features = FeatureEncoder()
        X_tensor = features.fit_transform(estimator, X, numeric_embedding=estimator.numeric_embedding)
        targets = TargetEncoder(estimator.tasks).fit(y)
    else:
        features, targets = estimator._feature_encoder, estimator._target_encoder
        X_tensor = features.transform(estimator, X)
    y_encoded = targets.transform(y)
    _check_same_rows(X_tensor, y_encoded, "X", "y")
    weights = row_task_weights(sample_weight, y_encoded, targets, estimator.class_weight)
    return TensorBatchDataset(X_tensor, torch.from_numpy(y_encoded), weights), features, targets


def eval_set_dataset(estimator, eval_set):
    """``fit``'s ``eval_set`` (a tuple, or a data source), encoded as the training rows
    were; None when not given."""
    if eval_set is None:
        return None
    if is_source(eval_set):
        return source_eval_dataset(estimator, eval_set)
    if not isinstance(eval_set, (tuple, list)) or len(eval_set) not in (2, 3):
        raise ValueError(
            "eval_set must be a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val); "
            f"got {type(eval_set).__name__}"
            + (f" of length {len(eval_set)}" if isinstance(eval_set, (tuple, list)) else "")
            + "."
        )
    X_val, y_val, *weight = eval_set
    targets = estimator._target_encoder
    X_tensor = estimator._feature_encoder.transform(estimator, X_val)
    y_encoded = targets.transform(y_val)
    _check_same_rows(X_tensor, y_encoded, "X_val", "y_val", context="eval_set: ")
    weights = row_task_weights(
        weight[0] if weight else None, y_encoded, targets, estimator.class_weight
    )
    return TensorBatchDataset(X_tensor, torch.from_numpy(y_encoded), weights)


def _check_same_rows(X_tensor, y_encoded, X_name, y_name, context=""):
    if y_encoded.shape[0] != X_tensor.shape[0]:
        raise ValueError(
            f"{context}{X_name} has {X_tensor.shape[0]} rows but {y_name} has "
            f"{y_encoded.shape[0]}; they must have the same number of rows."
        )
