"""Learning-rate schedules that continue where they were: across ``partial_fit`` calls and
across :func:`~sk_mmoe.save_model` / :func:`~sk_mmoe.load_model`.

skorch's ``LRScheduler`` callback builds a new scheduler at the start of every training
call. Schedules that are a function of the epoch (cosine, step) continue correctly from the
history's length, but a ``ReduceLROnPlateau`` forgets its best loss and patience count, so
a plateau that began before a ``partial_fit`` (or before saving) is never acted on. Here
the estimator keeps each scheduler's ``state_dict`` at the end of a training call and
loads it into the scheduler skorch builds at the start of the next one; ``save_model``
stores these states with the model.
"""

from skorch.callbacks import LRScheduler


class ScheduleStateMixin:
    """Carry every ``LRScheduler`` callback's scheduler state from one training call to the
    next (``_scheduler_states``: callback name -> scheduler ``state_dict``)."""

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        # A new network (fit) starts its schedules anew; a continued one (partial_fit,
        # warm_start, a loaded model) has a history to continue.
        continuing = len(self.history) > 0
        self._schedules_to_restore = self.__dict__.get("_scheduler_states") if continuing else None

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        # The callbacks built their schedulers in their on_train_begin, which runs after
        # the estimator's own; this is the first hook after it.
        states = self.__dict__.pop("_schedules_to_restore", None)
        for name, callback in _schedulers(self):
            if states and name in states:
                callback.lr_scheduler_.load_state_dict(states[name])

    def on_train_end(self, net, **kwargs):
        super().on_train_end(net, **kwargs)
        self._scheduler_states = {
            name: callback.lr_scheduler_.state_dict() for name, callback in _schedulers(self)
        }


def _schedulers(estimator):
    return [
        (name, callback)
        for name, callback in getattr(estimator, "callbacks_", [])
        if isinstance(callback, LRScheduler) and callback.lr_scheduler_ is not None
    ]
