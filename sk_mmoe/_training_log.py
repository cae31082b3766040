"""The per-epoch table printed with ``verbose=1``: losses, gate entropy, duration."""

import sys
from numbers import Number

from skorch.callbacks import EarlyStopping, PrintLog
from skorch.utils import Ansi

# Recorded every epoch for diagnostics, but matrices and lists of indices make lines
# hundreds of characters wide: they stay in ``history_``.
HISTORY_ONLY_KEYS = ("gate_utilization", "gate_polarized_rows", "dead_experts")


class TrainingLog(PrintLog):
    """skorch's epoch table, compact: one labelled column per task for per-task values,
    and colours only on a terminal.

    The first line names each task and its kind. Columns: ``epoch``, ``train_loss``,
    ``valid_loss`` and, with early stopping, ``valid_score`` (with ``scoring``) and each
    task's validation metric (``valid_<task>_<metric>``), any scores user callbacks
    record, ``gate_entropy[<task>]`` (one column per task: 1 = the task's gate spreads its
    weight evenly over the experts, 0 = it uses one) and ``dur`` (seconds). The gate
    utilisation matrices stay in ``history_``.

    Parameters
    ----------
    keys_ignored : str or list of str, default=None
        Further history keys not to print.
    sink : callable, default=print
        Where each line goes, e.g. ``logging.getLogger(...).info``.
    color : bool or None, default=None
        Highlight the best validation loss with ANSI colours; None colours only when
        printing to a terminal, so that log files and notebooks get plain text.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> model = MMoERegressorClassifier(n_experts=2, max_epochs=2, verbose=1, random_state=0)
    >>> _ = model.fit(X, X[:, :2])  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    tasks: 0 regression, 1 regression
      epoch    train_loss    gate_entropy[0]    gate_entropy[1]     dur
    -------  ------------  -----------------  -----------------  ------
          1  ...

    A progress bar within each epoch, for long fits, is skorch's ``ProgressBar`` (needs
    ``tqdm``): ``callbacks=[ProgressBar(batches_per_epoch="count")]`` (``"count"``, as
    skorch's ``"auto"`` cannot read ``batch_size="auto"``).
    """

    def __init__(self, keys_ignored=None, sink=print, color=None):
        super().__init__(keys_ignored=keys_ignored, sink=sink)
        self.color = color

    def initialize(self):
        super().initialize()
        self.keys_ignored_.update(HISTORY_ONLY_KEYS)
        color = self.color
        if color is None:
            color = self.sink is print and sys.stdout.isatty()
        self.color_ = bool(color)
        return self

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.task_names_ = list(getattr(net, "task_names_", []))
        # What each target is trained as, before any number: a count trained as classes
        # must be visible at a glance.
        tasks = getattr(net, "tasks_", None)
        if tasks and len(net.history) <= 1:
            self._sink("tasks: " + ", ".join(f"{task.name_!r} {task.kind}" for task in tasks), net.verbose)

    def _yield_keys_formatted(self, row):
        # A list with one number per task becomes one column per task, named after it.
        names = getattr(self, "task_names_", [])
        for key, formatted in super()._yield_keys_formatted(row):
            value = row.get(key)
            if _numbers(value) and len(value) == len(names) > 0:
                for name, number in zip(names, value):
                    yield f"{key}[{name}]", number
            else:
                yield key, formatted

    def _sorted_keys(self, keys):
        # Losses first, then scores, as in skorch's table; the diagnostics before ``dur``.
        keys = super()._sorted_keys(keys)
        head = [key for key in ("epoch", "train_loss", "valid_loss", "valid_score") if key in keys]
        tail = [key for key in ("gate_entropy", "dur") if key in keys]
        return head + [key for key in keys if key not in head + tail] + tail

    def format_row(self, row, key, color):
        value = row[key]
        if _numbers(value):
            return " ".join(f"{v:.3f}" for v in value)
        if not self.color_:
            return super().format_row(row, key, color="").replace(Ansi.ENDC.value, "")
        return super().format_row(row, key, color)


class LoggedEarlyStopping(EarlyStopping):
    """skorch's ``EarlyStopping``, letting the epoch log print the epoch that stops.

    skorch runs the log last and stops by raising in the stopper's ``on_epoch_end``, so
    the last epoch recorded in ``history_`` was never printed. Here its line is printed
    first, then the stopping message.
    """

    def on_epoch_end(self, net, **kwargs):
        messages, sink = [], self.sink
        self.sink = messages.append
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            for name, callback in net.callbacks_:
                if isinstance(callback, PrintLog):
                    callback.on_epoch_end(net, **kwargs)
            self.sink = sink
            for message in messages:
                self._sink(message, net.verbose)
            raise
        finally:
            self.sink = sink


def _numbers(value):
    return isinstance(value, (list, tuple)) and all(isinstance(v, Number) for v in value)
