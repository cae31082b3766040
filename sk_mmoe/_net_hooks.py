"""skorch's override points: how the network, loss, optimizer, callbacks, batches and the
validation split are built, and how a batch's loss is computed.

``NetHooksMixin`` comes before ``NeuralNet`` in ``MMoERegressorClassifier``'s bases. The hooks
read the estimator's parameters, its fitted encoders (``_feature_encoder``,
``_target_encoder``), ``_resolved_task_weights()`` and the per-call training state
(``_stops_early``, ``_eval_dataset``, ``_training_rows``, and ``_fit_rows`` in a new ``fit``)
that ``fit`` and ``partial_fit`` set.
"""

import math

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from ._data import EpochOfSteps, split_targets
from ._early_stopping import early_stopping_callbacks, stratification_labels, validation_split
from ._embeddings import FeatureEmbedding, sparse_category_table
from ._loss import MultiTaskLoss
from ._network import MMoENetwork
from ._params import layer_sizes
from ._streaming import SourceBatches, SourceDataset
from ._training import auto_lr_scale, fused_by_default, resolve_batch_size, small_table_weight_decay
from ._training_log import TrainingLog
from .diagnostics import GateUtilization
from .exceptions import NonFiniteLossError

_PARAMS_FILES_MESSAGE = (
    "{method} is not supported by MMoERegressorClassifier: skorch's parameter files hold "
    "the network weights but not the target encoding (classes, regression scaling) and "
    "feature names that predictions need, so a model restored from them predicts "
    "wrongly without an error. Use sk_mmoe.save_model(model, path) and "
    "sk_mmoe.load_model(path), which store all of it and load without executing code "
    "(or pickle/joblib, for files you trust). skorch's Checkpoint and LoadInitState "
    "callbacks rely on {method} and are not supported either."
)


class NetHooksMixin:
    """The skorch hooks of :class:`~sk_mmoe.MMoERegressorClassifier`."""

    @property
    def _default_callbacks(self):
        # skorch's own table, made compact and colour-free off a terminal.
        callbacks = [
            (name, TrainingLog() if name == "print_log" else callback)
            for name, callback in super()._default_callbacks
        ]
        # Diagnostics come before early stopping, so that restoring the best weights at
        # the end of training happens after the last epoch's gates were recorded.
        callbacks.insert(len(callbacks) - 1, ("gate_utilization", GateUtilization()))
        # Before print_log, so that the epoch's line shows its scores and the decision.
        for entry in early_stopping_callbacks(self, getattr(self, "_stops_early", False)):
            callbacks.insert(len(callbacks) - 1, entry)
        return callbacks

    def initialize(self):
        """Build the network, loss, optimizer and callbacks; ``fit`` calls it.

        The network's shape comes from the data, so this works only once ``fit`` or
        ``partial_fit`` has seen ``X`` and ``y``.
        """
        if not all(hasattr(self, name) for name in ("_target_encoder", "_feature_encoder")):
            raise NotFittedError(
                "initialize() builds the network from the features and targets seen by "
                "fit; call fit(X, y) or partial_fit(X, y) instead, which initialise it."
            )
        return super().initialize()

    def save_params(self, *args, **kwargs):
        """Not supported: use :func:`sk_mmoe.save_model` (or pickle).

        skorch's ``save_params`` stores the weights only; a model restored from them
        would keep another model's target encoding (classes, regression scaling).
        """
        raise NotImplementedError(_PARAMS_FILES_MESSAGE.format(method="save_params"))

    def load_params(self, *args, **kwargs):
        """Not supported: use :func:`sk_mmoe.load_model` (or pickle).

        skorch's ``load_params`` restores the weights only, not the target encoding
        (classes, regression scaling) or feature names that predictions depend on.
        """
        raise NotImplementedError(_PARAMS_FILES_MESSAGE.format(method="load_params"))

    def _input_layer(self):
        features = self._feature_encoder
        nccl = self.distributed is True and torch.device(self.device).type == "cuda"
        return FeatureEmbedding(
            features.numeric_mean_,
            features.numeric_scale_,
            features.numeric_missing_,
            features.category_sizes,
            numeric_embedding=self._feature_encoder.numeric_embedding_,
            bin_edges=getattr(features, "bin_edges_", None),
            sparse_categories=sparse_category_table(sum(features.category_sizes), nccl),
        )

    def _sparse_table(self):
        """The categorical embedding table when it trains sparsely, else None."""
        embedding = getattr(self.module_, "embedding", None)
        table = getattr(embedding, "categories", None)
        return table.weight if table is not None and table.sparse else None

    def initialize_module(self):
        self.module_ = MMoENetwork(
            n_features=self.n_features_in_,
            task_output_sizes=[task.n_outputs for task in self.tasks_],
            n_experts=self.n_experts,
            expert_layer_sizes=layer_sizes("expert_layer_sizes", self.expert_layer_sizes, False),
            gate_layer_sizes=layer_sizes("gate_layer_sizes", self.gate_layer_sizes, True),
            tower_layer_sizes=layer_sizes("tower_layer_sizes", self.tower_layer_sizes, True),
            gate_dropout=self.gate_dropout,
            architecture=self.architecture,
            n_task_experts=self.n_task_experts,
            n_levels=self.n_levels,
            gate_dropout_mode=self.gate_dropout_mode,
            gate_temperature=self.gate_temperature,
            gate_balance=self.gate_balance,
            embedding=self._input_layer(),
        )
        return self

    def get_params_for_optimizer(self, prefix, named_parameters):
        table = self._sparse_table() if prefix == "optimizer" else None
        if table is not None:
            # A large categorical table has its own sparse step (initialize_optimizer).
            named_parameters = [(n, p) for n, p in named_parameters if p is not table]
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix != "optimizer":
            return args, kwargs
        if fused_by_default(self.optimizer, kwargs, self.device):
            kwargs["fused"] = True
        # Fits of few rows train with decay (see small_table_weight_decay); partial_fit
        # never does, as its rows per call say nothing about the table's size.
        kwargs.update(small_table_weight_decay(
            self.optimizer, kwargs, getattr(self, "_fit_rows", None),
            learned_task_weights=self.task_weights == "uncertainty",
        ))
        rows = getattr(self, "_training_rows", None)
        if rows is not None:
            # Large tables train on larger "auto" batches at a proportionally raised rate.
            kwargs["lr"] = kwargs["lr"] * auto_lr_scale(self.batch_size, rows)
        return args, kwargs

    def initialize_optimizer(self, *args, **kwargs):
        try:
            super().initialize_optimizer(*args, **kwargs)
        except TypeError as exc:
            routed = sorted(f"optimizer__{k}" for k in self.get_params_for("optimizer"))
            raise TypeError(
                f"optimizer={self.optimizer!r} could not be built from the network's "
                f"parameters with lr={self.lr!r} and {routed or 'no optimizer__* arguments'}: "
                f"{exc}"
            ) from exc
        if not isinstance(self.optimizer_, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a torch.optim.Optimizer class, or a callable that returns "
                f"one from (params, lr=..., **optimizer__*); optimizer={self.optimizer!r} "
                f"returned {self.optimizer_!r} ({type(self.optimizer_).__name__})."
            )
        self._initialize_sparse_optimizer()
        return self

    def _initialize_sparse_optimizer(self):
        """``sparse_optimizer_``: the lazy Adam step of a large categorical table.

        ``optimizer`` (Adam, SGD, ...) keeps its meaning for every other parameter. The
        table (see :func:`~sk_mmoe._embeddings.sparse_category_table`) is stepped by
        ``torch.optim.SparseAdam``, which updates the rows a batch touched only (Adam's
        moments of the other rows wait, instead of decaying), with the betas and eps of
        ``optimizer`` when it has them; weight decay does not apply to it. (SparseAdam
        adds eps before the bias correction, so eps weighs up to ``1 / sqrt(1 - beta2)``
        times more there than in Adam; with the default eps this matters only for
        gradients near 1e-7.) Its learning
        rate is the first parameter group's of ``optimizer_``, read at every step, so
        that ``lr``, ``set_params(lr=...)`` and learning-rate schedules move it too.
        """
        table = self._sparse_table()
        if table is None:
            if "sparse_optimizer_" in self.__dict__:
                del self.sparse_optimizer_  # a new network without a large table
            return
        defaults = self.optimizer_.defaults
        options = {key: defaults[key] for key in ("betas", "eps") if key in defaults}
        self.sparse_optimizer_ = torch.optim.SparseAdam(
            [table], lr=self.optimizer_.param_groups[0]["lr"], **options
        )

    def _step_optimizer(self, step_fn):
        sparse = self.__dict__.get("sparse_optimizer_")
        if sparse is None:
            return super()._step_optimizer(step_fn)
        # The closure (forward and backward) runs once, in the dense optimizer's step.
        self.optimizer_.step(step_fn)
        for group in sparse.param_groups:
            group["lr"] = self.optimizer_.param_groups[0]["lr"]
        sparse.step()
        return None

    def initialize_criterion(self):
        self.criterion_ = MultiTaskLoss(self.tasks_, self._resolved_task_weights())
        return self

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        if not getattr(self, "_stops_early", False):
            return dataset, None
        if self._eval_dataset is not None:
            valid = self._eval_dataset
        else:
            strata = stratification_labels(dataset.y.numpy(), self.tasks_)
            seed = int(torch.randint(np.iinfo(np.int32).max, ()).item())
            train, valid = validation_split(len(dataset), self.validation_fraction, strata, seed)
            dataset, valid = dataset.subset(torch.from_numpy(train)), dataset.subset(torch.from_numpy(valid))
        # Kept until the end of the training call, for the shrinkage of quantity outputs.
        self._validation_dataset = valid
        return dataset, valid

    def get_iterator(self, dataset, training=False):
        iterator = self._pass_iterator(dataset, training)
        if training and self.steps_per_epoch is not None:
            iterator = EpochOfSteps(iterator, self.steps_per_epoch)
        return iterator

    def _pass_iterator(self, dataset, training):
        """The batches of one pass over ``dataset`` (an epoch, without
        ``steps_per_epoch``)."""
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = {"batch_size": self.batch_size, "shuffle": training}
        kwargs.update(self.get_params_for(prefix))
        if kwargs["batch_size"] == "auto" and not training:
            # Prediction results do not depend on the batch size; larger is faster.
            kwargs["batch_size"] = 1024
        # Training batches follow the rows given to this training call (before any
        # hold-out), the same count that sets the learning rate's scale.
        rows = getattr(self, "_training_rows", None) if training else None
        kwargs["batch_size"] = resolve_batch_size(kwargs["batch_size"], rows or len(dataset))
        if isinstance(dataset, SourceDataset):
            return SourceBatches(dataset, **kwargs)
        return getattr(self, prefix)(dataset, **kwargs)

    def train_step(self, batch, **fit_params):
        try:
            return super().train_step(batch, **fit_params)
        except RuntimeError as exc:
            # A learning rate near float32's limit overflows inside the optimizer's
            # update (Adam's lr / (1 - beta1) at lr=1e38) before any loss is non-finite.
            if "overflow" not in str(exc):
                raise
            raise NonFiniteLossError(
                f"The optimizer step overflowed in epoch {len(self.history)} with "
                f"lr={self.lr!r} ({exc}). Lower lr."
            ) from exc

    def _task_losses(self, y_pred, targets, sample_weight, training):
        """The batch's per-task mean losses, and which tasks have a label in it."""
        per_task = self.criterion_.per_task(y_pred, targets, sample_weight)
        return per_task, ~torch.isnan(targets).all(dim=0)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        targets, sample_weight = split_targets(y_true.to(y_pred.device), len(self.tasks_))
        per_task, labelled = self._task_losses(y_pred, targets, sample_weight, training)
        loss = self.criterion_.combine(per_task, labelled=labelled)
        # The network leaves the balancing loss of its last training forward here.
        balance = self.module_.__dict__.pop("auxiliary_loss", None)
        if training and balance is not None:
            self.history.record_batch("gate_balance_loss", balance.item())
            loss = loss + balance
        # One scalar read per step (skorch reads the loss once more to record it).
        if not math.isfinite(loss.item()):
            bad = [
                f"{task.name_!r} ({task.kind})"
                for task, value in zip(self.tasks_, per_task)
                if not torch.isfinite(value)
            ]
            raise NonFiniteLossError(
                f"The {'training' if training else 'validation'} loss became non-finite "
                f"({loss.item()}) in epoch {len(self.history)} for task(s) "
                f"{', '.join(bad)}. Lower lr, or check the targets for extreme values."
            )
        return loss
