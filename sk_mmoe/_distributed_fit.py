"""The estimator's side of ``distributed=True``: skorch's hooks that route a training call
through :mod:`sk_mmoe._distributed`.

``DistributedFitMixin`` comes before ``NetHooksMixin`` in ``MMoERegressorClassifier``'s
bases. Outside a distributed fit every hook here hands over to the next one unchanged.
The state of a distributed fit (``_distributed_run``) lives in the estimator's
``__dict__`` only while ``fit`` or ``partial_fit`` runs.
"""

import contextlib
import functools
import io
import warnings

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.utils import to_tensor

from ._data import SparseRows
from ._distributed import RankBatches, fingerprint, join, looks_like_peer_failure
from .exceptions import DistributedTrainingError

_SAME_DATA_ADVICE = (
    "With distributed=True, every rank must pass the same full X, y, sample_weight and "
    "eval_set: each rank trains on its share of every global batch."
)
# Relative difference between ranks' epoch losses that can only mean diverged models.
_DIVERGED = 1e-4


def _is_on(distributed):
    # An invalid value is not "on": the estimator's validation names it.
    return isinstance(distributed, (bool, np.bool_)) and bool(distributed)


def in_distributed_session(method):
    """Run a training method (``fit``, ``partial_fit``) inside the process group when
    ``distributed=True``: see :meth:`DistributedFitMixin._distributed_session`."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not _is_on(self.distributed):
            return method(self, *args, **kwargs)
        with self._distributed_session():
            return method(self, *args, **kwargs)

    return wrapper


def _dataset_tensors(dataset):
    if dataset is None:
        return [None]
    X = dataset.X
    features = [X.indptr, X.indices, X.data] if isinstance(X, SparseRows) else [X]
    return [*features, dataset.y, dataset.sample_weight]


class EpochSync(Callback):
    """Make each epoch's losses one for all ranks: rank 0's, checked against the others'.

    Every rank computes the global batch's loss, so the values agree up to rounding; a
    larger difference means the ranks trained different models, and fails the fit. It
    runs before the diagnostics and early stopping, which then decide alike on all ranks.
    """

    def on_epoch_end(self, net, **kwargs):
        run = net.__dict__.get("_distributed_run")
        if run is None:
            return
        epoch = net.history[-1]
        keys = [key for key in ("train_loss", "valid_loss") if key in epoch]
        values = torch.tensor([epoch[key] for key in keys], dtype=torch.float64)
        gathered = run.all_gather(values)  # (world, n_keys)
        spread = (gathered - gathered[0]).abs().amax(dim=0)
        if bool((spread > _DIVERGED * gathered[0].abs().clamp_min(1.0)).any()):
            raise DistributedTrainingError(
                f"The ranks' {keys} differ in epoch {len(net.history)}: {gathered.tolist()} "
                "(one row per rank); the ranks no longer train the same model."
            )
        for key, value in zip(keys, gathered[0].tolist()):
            earlier = [e[key] for e in net.history[:-1] if key in e]
            net.history.record(key, value)
            net.history.record(key + "_best", not earlier or value < min(earlier))


class DistributedFitMixin:
    """The hooks of ``distributed=True`` (see :mod:`sk_mmoe._distributed`)."""

    @property
    def _default_callbacks(self):
        callbacks = super()._default_callbacks
        if _is_on(getattr(self, "distributed", False)):
            # Right after skorch computes the epoch's losses, before anything reads them.
            position = [name for name, _ in callbacks].index("valid_loss") + 1
            callbacks.insert(position, ("distributed_sync", EpochSync()))
        return callbacks

    @contextlib.contextmanager
    def _distributed_session(self):
        """Join the process group for one training call; only rank 0 prints and warns,
        and a failure caused by another rank becomes one clear error."""
        run = join(torch.device(self.device), self.distributed_timeout)
        self.__dict__["_distributed_run"] = run
        try:
            with warnings.catch_warnings(), contextlib.ExitStack() as quiet:
                # DDP's note on a size-1 dimension's stride in a gradient (an einsum's
                # layout) is about speed only, and the same in every step.
                warnings.filterwarnings("ignore", message="Grad strides do not match")
                if run.rank != 0:
                    warnings.simplefilter("ignore")
                    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
                yield run
        except DistributedTrainingError:
            raise
        except Exception as exc:
            if not looks_like_peer_failure(exc):
                raise
            history = getattr(self, "history_", None)
            raise DistributedTrainingError(
                f"Distributed fit failed on rank {run.rank} of {run.world}"
                f"{f' in epoch {len(history)}' if history else ''}: another rank stopped "
                "(it crashed, was killed or raised an error: its log says why) or did not "
                f"answer within distributed_timeout={self.distributed_timeout} s. "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            run.unwrap()
            self.__dict__.pop("_distributed_run", None)

    def _shared_seed(self, seed):
        """Rank 0's training seed on every rank (``random_state=None`` differs per rank)."""
        run = self.__dict__.get("_distributed_run")
        return seed if run is None else run.broadcast_int(seed)

    @contextlib.contextmanager
    def _distributed_training(self, dataset):
        """Around skorch's training loop: check that the ranks agree, wrap the training
        forward in DDP, and leave ``module_`` the plain network afterwards."""
        run = self.__dict__.get("_distributed_run")
        if run is None:
            yield
            return
        tasks = repr((self.task_names_, self.task_types_, self.classes_)).encode()
        tensors = _dataset_tensors(dataset) + _dataset_tensors(self._eval_dataset)
        run.check_same("the training data (X, y, sample_weight, eval_set)",
                       fingerprint(tensors, tasks), _SAME_DATA_ADVICE)
        run.check_same("the fitted feature encoders",
                       fingerprint(list(self.module_.buffers())), _SAME_DATA_ADVICE)
        module = self.module_
        run.wrap(module, extra_parameters=self.criterion_.parameters())
        module.importance_reduce = run.global_sum
        try:
            yield
        finally:
            del module.importance_reduce
            run.unwrap()

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None or not training:
            return iterator
        # One permutation stream for all ranks, from the state every rank shares now; the
        # per-row randomness after it (gate dropout) differs by rank.
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
        torch.manual_seed((torch.initial_seed() + 7919 * (run.rank + 1)) % 2**63)
        return RankBatches(dataset, iterator.batch_size, run, generator, iterator.shuffle)

    def infer(self, x, **fit_params):
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None or not self.module_.training:
            return super().infer(x, **fit_params)
        return run.ddp(to_tensor(x, device=self.device), **fit_params)

    def _task_losses(self, y_pred, targets, sample_weight, training):
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None or not training:
            return super()._task_losses(y_pred, targets, sample_weight, training)
        sums, weights = self.criterion_.per_task_sums(y_pred, targets, sample_weight)
        labelled = targets.isnan().logical_not().sum(dim=0).to(sums.dtype)
        sums, weights, labelled = run.global_sum([sums, weights, labelled])
        return self.criterion_.task_means(sums, weights), labelled > 0

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None or not training:
            return loss
        return run.loss_for_backward(loss)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        run = self.__dict__.get("_distributed_run")
        if run is not None and run.ddp is not None and training:
            # The epoch's train_loss weighs each batch by its size: the global batch's,
            # as the loss recorded is the global batch's.
            self.history.record_batch("train_batch_size", run.global_batch_size)
