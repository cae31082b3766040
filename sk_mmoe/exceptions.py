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
