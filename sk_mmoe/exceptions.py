"""Exceptions and warnings raised by sk_mmoe."""


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite.

    The message names the epoch and the task(s) whose loss diverged.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier, NonFiniteLossError
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> try:  # a learning rate of 1e25 blows the weights up at the first step
    ...     MMoERegressorClassifier(lr=1e25, max_epochs=2, random_state=0).fit(X, X[:, 0])
    ... except NonFiniteLossError as error:
    ...     print(str(error)[:35])
    The training loss became non-finite
    """


class DistributedTrainingError(RuntimeError):
    """A fit with ``distributed=True`` could not start or go on across its ranks.

    Raised on every rank that is still running when no process group can be formed, when
    the ranks were given different data, or when another rank died or stopped answering
    within ``distributed_timeout`` seconds; the message says which.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mmoe import DistributedTrainingError, MMoERegressorClassifier
    >>> X = np.random.RandomState(0).normal(size=(50, 3))
    >>> try:  # no launcher started this program and no process group exists
    ...     MMoERegressorClassifier(distributed=True, max_epochs=1).fit(X, X[:, 0])
    ... except DistributedTrainingError as error:
    ...     print(str(error)[:43])
    distributed=True found no torch.distributed
    """
