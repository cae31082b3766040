"""Data-parallel training on ``torch.distributed``: the process group, each rank's share of
every global batch, the few collectives that keep ranks in step, and the DDP wrapper of the
training forward.

This module imports torch and numpy only. The estimator calls it at named points:
:func:`join` (the process group), :meth:`Run.check_same` (the data and encoders agree),
:class:`RankBatches` (the shard of each batch), :meth:`Run.wrap` / :meth:`Run.unwrap`
(DDP around the training forward only), :meth:`Run.global_sum` (the balancing loss's
per-step sum over ranks), :meth:`Run.epoch_means` (once per epoch).

Exactness: each rank holds the full data, so it knows every global batch's labelled
weight per task (:attr:`Run.batch_totals`) without asking the others. It divides its
rows' loss sums by those and multiplies by the world size; DDP's average of the ranks'
gradients is then the one-process gradient of the global batch, with missing labels and
sample weights, and the mean of the ranks' loss values is the global batch's loss. One
collective per step (DDP's), two with the balancing loss.
"""

import hashlib
import inspect
import os
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ._data import BatchSlicer
from .exceptions import DistributedTrainingError

# What a launcher (torchrun, Ray Train, Spark's TorchDistributor, SLURM scripts) sets for
# ``init_process_group``'s default env:// rendezvous.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# Messages of collectives that failed because another rank went away or never answered.
_PEER_FAILURE_MARKERS = ("connection closed", "connection reset", "timed out", "timeout",
                         "gloo", "nccl", "broken pipe", "socket")


def _backend_for(device):
    return "nccl" if device.type == "cuda" else "gloo"


def join(device, timeout):
    """The process group of this fit: the one already formed, or one formed from the
    launcher's environment (gloo on CPU, NCCL on CUDA).

    Parameters
    ----------
    device : torch.device
        The estimator's device; ``"cuda"`` without an index selects ``LOCAL_RANK``'s GPU.
    timeout : float
        Seconds to wait for the other ranks when forming the group (and, for a group
        formed here, in every collective).

    Returns
    -------
    run : Run
    """
    if not dist.is_available():
        raise DistributedTrainingError(
            "distributed=True needs torch.distributed, which this build of torch lacks; "
            "set distributed=False."
        )
    if device.type == "cuda" and device.index is None:
        if "LOCAL_RANK" in os.environ:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = torch.device("cuda", torch.cuda.current_device())
    if not dist.is_initialized():
        missing = [name for name in LAUNCHER_VARIABLES if name not in os.environ]
        if missing:
            raise DistributedTrainingError(
                "distributed=True found no torch.distributed process group: none is "
                "initialised and the environment lacks " + ", ".join(missing) + ". Start "
                "the program with a launcher (torchrun --nproc-per-node N script.py, Ray "
                "Train, Spark's TorchDistributor, srun), call "
                "torch.distributed.init_process_group() before fit, or set "
                "distributed=False."
            )
        backend = _backend_for(device)
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
        except Exception as exc:  # torch raises DistStoreError, RuntimeError or ValueError
            raise DistributedTrainingError(
                f"Rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']} could not form the "
                f"{backend} process group at {os.environ['MASTER_ADDR']}:"
                f"{os.environ['MASTER_PORT']} within distributed_timeout={timeout} s: "
                f"{exc}. Check that every rank was started and can reach that address."
            ) from exc
    backend = dist.get_backend()
    if backend == "nccl" and device.type != "cuda":
        raise DistributedTrainingError(
            f"The process group uses the nccl backend, which needs device='cuda'; got "
            f"device={str(device)!r}. Use a gloo group for CPU training."
        )
    return Run(dist.get_rank(), dist.get_world_size(), device, backend)


def looks_like_peer_failure(exc):
    """Whether ``exc`` is a collective's failure: another rank died or never answered."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in message for m in _PEER_FAILURE_MARKERS)


def fingerprint(tensors, extra=b""):
    """A 63-bit hash of tensors' shapes, dtypes and bytes (and of ``extra`` bytes)."""
    digest = hashlib.blake2b(extra, digest_size=8)
    for tensor in tensors:
        if tensor is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return int.from_bytes(digest.digest(), "little") >> 1


class Run:
    """One distributed training call: rank, world size and the collectives it uses.

    It lives only while ``fit`` runs; the fitted estimator keeps none of it.
    """

    def __init__(self, rank, world, device, backend):
        self.rank, self.world, self.device = rank, world, device
        # Collectives of small bookkeeping tensors run where the backend can: NCCL needs
        # CUDA tensors, gloo takes CPU ones.
        self.comm_device = device if backend == "nccl" else torch.device("cpu")
        self.ddp = None
        # Of the batch being computed: its global size, and per task the labelled weight
        # and the number of labels of all its rows (on every rank).
        self.global_batch_size = None
        self.batch_totals = None
        # While validation batches are sharded: the network's outputs of each rank's
        # share are gathered into the whole batch's.
        self.gathering = False
        self.valid_dataset = None

    def all_gather(self, values):
        """Every rank's copy of ``values`` (1-D float64 or int64), as a (world, n) tensor."""
        values = values.to(self.comm_device)
        gathered = [torch.empty_like(values) for _ in range(self.world)]
        dist.all_gather(gathered, values)
        return torch.stack(gathered).cpu()

    def broadcast_int(self, value):
        """Rank 0's ``value``, on every rank."""
        tensor = torch.tensor([value], dtype=torch.int64, device=self.comm_device)
        dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def check_same(self, what, value, advice):
        """Raise on every rank when ``value`` (an int fingerprint) differs across ranks."""
        seen = self.all_gather(torch.tensor([value], dtype=torch.int64))[:, 0].tolist()
        if len(set(seen)) > 1:
            different = [r for r, v in enumerate(seen) if v != seen[0]]
            raise DistributedTrainingError(
                f"distributed=True: {what} differ across ranks (rank(s) {different} differ "
                f"from rank 0; fingerprints {seen}). {advice}"
            )

    def global_sum(self, tensors):
        """The sum over ranks of each tensor, with ``world x`` this rank's gradient.

        For a loss that is a non-linear function of sums over the global batch (the
        balancing loss of the gates' importance): its value is the global batch's on
        every rank, and DDP's average of the ranks' gradients is its one-process gradient.

        Parameters
        ----------
        tensors : list of torch.Tensor
            One all-reduce carries them all.

        Returns
        -------
        list of torch.Tensor
        """
        flat = torch.cat([t.reshape(-1) for t in tensors])
        total = flat.detach().to(self.comm_device, copy=True)
        dist.all_reduce(total)
        # Exactly the global value (the first term is exactly 0), gradient world x local.
        summed = (self.world * flat - self.world * flat.detach()) + total.to(flat.device)
        parts = summed.split([t.numel() for t in tensors])
        return [part.reshape(t.shape) for part, t in zip(parts, tensors)]

    def gather_rows(self, local):
        """The whole global batch's rows of ``local`` (this rank's share, as
        :class:`RankBatches` cut it), in the batch's order, on every rank."""
        base, extra = divmod(self.global_batch_size, self.world)
        sizes = [base + 1] * extra + [base] * (self.world - extra)
        padded = local.new_zeros((max(sizes), *local.shape[1:]), device=self.comm_device)
        padded[:len(local)] = local.to(self.comm_device)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(local.device)

    def epoch_means(self, values, check):
        """The mean over ranks of ``values`` (1-D float64), and whether the ranks' ``check``
        values (1-D float64, which must agree) differ; one collective."""
        gathered = self.all_gather(torch.cat([values, check]))
        means, checks = gathered[:, :len(values)].mean(dim=0), gathered[:, len(values):]
        spread = (checks - checks[0]).abs().amax(dim=0)
        return means, bool((spread > 1e-6 * checks[0].abs().clamp_min(1.0)).any())

    def wrap(self, module, loss):
        """Wrap ``module`` in DDP for the training forward; the ``loss`` module's learned
        parameters (task weights) ride along, so that DDP averages their gradients too."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # The buffers (encoder statistics) never change in training: no per-step sync.
        # torch 2.13 renamed broadcast_buffers (now deprecated) to forward_sync_buffers.
        parameters = inspect.signature(DistributedDataParallel).parameters
        sync = "forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers"
        self.ddp = DistributedDataParallel(
            _TrainingForward(module, loss), device_ids=device_ids, **{sync: False}
        )
        return self.ddp

    def unwrap(self):
        """Drop the DDP wrapper; the module stays as it was."""
        self.ddp = None


class _TrainingForward(torch.nn.Module):
    """The network's forward, with the loss module beside it so that DDP covers the loss's
    learned parameters (computed outside the forward) as well."""

    def __init__(self, network, loss):
        super().__init__()
        self.network = network
        self.loss = loss

    def forward(self, x):
        return self.network(x)


class RankBatches(BatchSlicer):
    """This rank's share of every global batch, drawn from one permutation shared by all.

    It stands where :class:`~sk_mmoe._data.BatchSlicer` does in training, and in
    validation with ``gather=True``: then each batch holds this rank's share of the
    features and the *whole* batch's targets, and :attr:`Run.gathering` tells the
    estimator to gather the network's outputs (:meth:`Run.gather_rows`), so that the
    validation loss and metrics are computed once, on all rows, on every rank. Each global
    batch of ``batch_size`` rows is cut into ``world`` nearly equal parts
    (``torch.tensor_split``); every rank runs the same number of steps. The permutation
    comes from ``generator``, which every rank starts in the same state.

    Parameters
    ----------
    dataset : TensorBatchDataset
        The full data, the same on every rank.
    batch_size : int
        The global batch.
    run : Run
    generator : torch.Generator or None
        Where the permutation comes from; not used without ``shuffle``.
    label_weights : callable
        ``(targets, sample_weight) -> (batch, n_tasks)`` weights of rows in each task's
        loss, summed over each global batch into :attr:`Run.batch_totals`.
    shuffle : bool, default=True
    gather : bool, default=False
    """

    def __init__(self, dataset, batch_size, run, generator, label_weights, shuffle=True,
                 gather=False):
        super().__init__(dataset, batch_size, shuffle)
        self.run = run
        self.generator = generator
        self.label_weights = label_weights
        self.gather = gather

    def __iter__(self):
        n_samples = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n_samples, generator=self.generator)
        else:
            order = torch.arange(n_samples)
        self.run.gathering = self.gather
        try:
            for start in range(0, n_samples, self.batch_size):
                rows = order[start:start + self.batch_size]
                targets = self.dataset.y[rows]
                weights = self.dataset.sample_weight
                self.run.global_batch_size = len(rows)
                self.run.batch_totals = (
                    self.label_weights(targets, None if weights is None else weights[rows]).sum(0),
                    targets.isnan().logical_not().sum(0),
                )
                X, batch_targets = self.dataset.batch(
                    torch.tensor_split(rows, self.run.world)[self.run.rank]
                )
                if self.gather:
                    batch_targets = self.dataset.batch(rows)[1]
                yield X, batch_targets
        finally:
            self.run.gathering = False
