"""Warnings that point at the user's line, however deep in the libraries they arise."""

import os
import sys
import warnings

import joblib
import sklearn
import skorch
import torch

# Frames in these packages are skipped: a warning from a callback runs under skorch's
# loop, under scikit-learn's pipelines and searches (which call through joblib) or inside
# torch, and a fixed stacklevel would point at whichever of them happened to call us.
_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (__file__, skorch.__file__, sklearn.__file__, joblib.__file__, torch.__file__)
)


def warn(message, category):
    """``warnings.warn(message, category)`` attributed to the first frame outside the
    libraries (sk_mmoe, skorch, scikit-learn, joblib, torch): the user's own line.

    Examples
    --------
    >>> import warnings
    >>> from sk_mmoe._warnings import warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("look here", UserWarning)
    >>> caught[0].filename.startswith("<doctest")
    True
    """
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
