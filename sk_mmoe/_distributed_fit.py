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
from ._streaming import RankSourceBatches, SourceDataset
from .exceptions import DistributedTrainingError

_SAME_DATA_ADVICE = (
    "With distributed=True, every rank must pass the same full X, y, sample_weight and "
    "eval_set: each rank trains on its share of every global batch."
)


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
    if isinstance(dataset, SourceDataset):
        # A source is read, not held: its row count stands for it (its encoders are
        # compared apart).
        return [torch.tensor([len(dataset)])]
    X = dataset.X
    features = [X.indptr, X.indices, X.data] if isinstance(X, SparseRows) else [X]
    return [*features, dataset.y, dataset.sample_weight]


class EpochSync(Callback):
    """The epoch's training loss of the whole data, the same on every rank: the mean of
    the ranks' values (each rank's batch losses are its share of the global batch's, times
    the world size), in one collective that also checks that the ranks still hold the same
    weights. (The validation loss, of all validation rows on every rank, is averaged
    alike: the same value.)

    It runs right after skorch computes the epoch's losses, before the diagnostics and
    early stopping, which then decide alike on all ranks.
    """

    def on_epoch_end(self, net, **kwargs):
        run = net.__dict__.get("_distributed_run")
        if run is None:
            return
        epoch = net.history[-1]
        keys = [key for key in ("train_loss", "valid_loss") if key in epoch]
        values = torch.tensor([epoch[key] for key in keys], dtype=torch.float64)
        weights = torch.cat([p.detach().reshape(-1) for p in net.module_.parameters()])
        weights = weights.double().cpu()
        means, diverged = run.epoch_means(values, torch.stack([weights.sum(), weights.square().sum()]))
        if diverged:
            raise DistributedTrainingError(
                f"The ranks' network weights differ after epoch {len(net.history)}: they "
                "no longer train the same model (a rank changed its weights or optimizer "
                "outside the synchronised training steps)."
            )
        for key, value in zip(keys, means.tolist()):
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
        run.wrap(module, self.criterion_)
        module.importance_reduce = run.global_sum
        try:
            yield
        finally:
            del module.importance_reduce
            run.unwrap()

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        run = self.__dict__.get("_distributed_run")
        if run is not None:
            run.valid_dataset = dataset_valid
        return dataset_train, dataset_valid

    def _pass_iterator(self, dataset, training):
        iterator = super()._pass_iterator(dataset, training)
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None:
            return iterator
        if not training:
            if dataset is None or dataset is not run.valid_dataset or isinstance(dataset, SourceDataset):
                # A prediction during fit sees every row; so does each rank of a
                # validation source, which it reads whole.
                return iterator
            # Each rank computes the outputs of its share of every validation batch; the
            # whole batch's outputs, gathered, give the loss and per-task metrics on all
            # rows, the same on every rank.
            return RankBatches(dataset, iterator.batch_size, run, None,
                               self.criterion_.label_weights, shuffle=False, gather=True)
        # One permutation stream for all ranks, from the state every rank shares now; the
        # per-row randomness after it (gate dropout) differs by rank.
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
        torch.manual_seed((torch.initial_seed() + 7919 * (run.rank + 1)) % 2**63)
        if isinstance(dataset, SourceDataset):
            return RankSourceBatches(dataset, iterator.batch_size, iterator.shuffle,
                                     generator, run, self.criterion_.label_weights)
        return RankBatches(dataset, iterator.batch_size, run, generator,
                           self.criterion_.label_weights, iterator.shuffle)

    def infer(self, x, **fit_params):
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None:
            return super().infer(x, **fit_params)
        if not self.module_.training:
            outputs = super().infer(x, **fit_params)
            return run.gather_rows(outputs) if run.gathering else outputs
        return run.ddp(to_tensor(x, device=self.device), **fit_params)

    def _task_losses(self, y_pred, targets, sample_weight, training):
        run = self.__dict__.get("_distributed_run")
        if run is None or run.ddp is None or not training:
            return super()._task_losses(y_pred, targets, sample_weight, training)
        # This rank's rows' share of the global batch's per-task means, times the world
        # size: DDP averages the ranks' gradients, and EpochSync their loss values.
        sums, _ = self.criterion_.per_task_sums(y_pred, targets, sample_weight)
        weights, counts = (total.to(sums.device) for total in run.batch_totals)
        return self.criterion_.task_means(sums * run.world, weights), counts > 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        run = self.__dict__.get("_distributed_run")
        if run is not None and run.ddp is not None and (training or run.gathering):
            # The epoch's losses weigh each batch by its size: the global batch's, as the
            # loss is the global batch's (in training, this rank's share times the world).
            prefix = "train" if training else "valid"
            self.history.record_batch(f"{prefix}_batch_size", run.global_batch_size)
