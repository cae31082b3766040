"""Exceptions and warnings raised by sk_mmoe."""


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite.

    The message names the epoch and the task(s) whose loss diverged.
    """
