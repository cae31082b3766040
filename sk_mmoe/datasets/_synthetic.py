"""The synthetic two-task regression data of the MMoE paper (Ma et al., KDD 2018)."""

import math
import numbers

import numpy as np
import pandas as pd

# Tuned so that the label correlation, averaged over random draws, follows
# Figure 2 of the paper; see benchmarks/label_correlation.py and its results.
_ALPHA_STD = 8.0


def make_multitask_regression(
    n_samples=1000,
    n_features=100,
    correlation=0.5,
    *,
    scale=1.0,
    n_sin=10,
    alpha_std=_ALPHA_STD,
    noise_std=0.1,
    coef=False,
    as_frame=False,
    random_state=None,
):
    """Generate two regression tasks whose relatedness is set by one number.

    This is the synthetic data of the MMoE paper (Ma et al., "Modeling Task
    Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts",
    KDD 2018, Section 3.2). Two orthogonal unit vectors ``u1, u2`` are drawn
    at random, and the task weights are::

        w1 = scale * u1
        w2 = scale * (correlation * u1 + sqrt(1 - correlation**2) * u2)

    so that ``correlation`` is the cosine of ``w1`` and ``w2``. With
    ``x ~ N(0, I)``, the two labels are::

        y_k = w_k @ x + sum_{i=1..n_sin} sin(alpha_i * w_k @ x + beta_i) + eps_k

    with ``alpha_i ~ N(0, alpha_std**2)`` and ``beta_i ~ N(0, 1)`` shared by
    both tasks and drawn once per call, and ``eps_k ~ N(0, noise_std**2)``.
    The sine terms make the label correlation much lower than
    ``correlation``, as in the paper's Figure 2, which is the point: the
    relatedness of the tasks is known but not easy to read off the labels.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows, at least 1.
    n_features : int, default=100
        Number of input features, at least 2 (the two weight vectors must be
        orthogonal before they are mixed).
    correlation : float, default=0.5
        Cosine of the two task weight vectors, in [-1, 1].
    scale : float, default=1.0
        Norm ``c`` of both weight vectors, greater than 0.
    n_sin : int, default=10
        Number ``m`` of sine terms, at least 0. With 0 the tasks are linear.
    alpha_std : float, default=8.0
        Standard deviation of the sine frequencies ``alpha_i``, at least 0.
        The default makes the mean label correlation follow the paper's
        Figure 2 (within a root-mean-square difference of 0.04 over p).
    noise_std : float, default=0.1
        Standard deviation of the label noise, at least 0. The paper's
        ``N(0, 0.01)`` is a variance, hence 0.1.
    coef : bool, default=False
        If True, also return the two weight vectors.
    as_frame : bool, default=False
        If True, return ``X`` as a DataFrame with columns ``x0 .. x{d-1}`` and
        ``y`` as a DataFrame with columns ``task_1`` and ``task_2``.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, \
            default=None
        Source of randomness. An int gives the same data on every call; a
        Generator or RandomState is advanced, so successive calls differ.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or DataFrame
        Inputs, float64.
    y : ndarray of shape (n_samples, 2) or DataFrame
        Labels of the two tasks, float64.
    coef : ndarray of shape (n_features, 2)
        The weight vectors ``w1`` and ``w2`` as columns; only when ``coef`` is
        True.

    Examples
    --------
    >>> from sk_mmoe.datasets import make_multitask_regression
    >>> X, y = make_multitask_regression(
    ...     n_samples=500, n_features=8, correlation=0.9, random_state=0
    ... )
    >>> X.shape, y.shape
    ((500, 8), (500, 2))
    """
    _check_int("n_samples", n_samples, minimum=1)
    _check_int("n_features", n_features, minimum=2)
    _check_real("correlation", correlation, minimum=-1.0, maximum=1.0)
    _check_real("scale", scale, minimum=0.0, strict=True)
    _check_int("n_sin", n_sin, minimum=0)
    _check_real("alpha_std", alpha_std, minimum=0.0)
    _check_real("noise_std", noise_std, minimum=0.0)
    rng = _as_generator(random_state)

    weights = _task_weights(rng, n_features, correlation, scale)
    alpha = rng.normal(0.0, alpha_std, size=n_sin)
    beta = rng.normal(0.0, 1.0, size=n_sin)
    X = rng.standard_normal((n_samples, n_features))
    y = _labels(X @ weights, alpha, beta)
    y += rng.normal(0.0, noise_std, size=y.shape)

    if as_frame:
        X = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
        y = pd.DataFrame(y, columns=["task_1", "task_2"])
    return (X, y, weights) if coef else (X, y)


def _task_weights(rng, n_features, correlation, scale):
    """Two weight vectors of norm ``scale`` and cosine ``correlation``."""
    # QR of a Gaussian matrix gives a uniformly random orthonormal pair.
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, 2)))
    mix = np.array([[1.0, correlation], [0.0, math.sqrt(1.0 - correlation**2)]])
    return scale * basis @ mix  # (n_features, 2)


def _labels(projections, alpha, beta):
    """Add the shared sine terms to the linear parts, one column per task."""
    labels = projections.copy()  # (n_samples, 2)
    # One term at a time keeps memory at (n_samples, 2) whatever n_sin is.
    for a, b in zip(alpha, beta):
        labels += np.sin(a * projections + b)
    return labels


def _as_generator(random_state):
    """A numpy Generator from None, an int, a Generator or a RandomState."""
    if isinstance(random_state, np.random.RandomState):
        # Drawing the seed advances the RandomState, so repeated calls differ
        # as they do in scikit-learn.
        return np.random.default_rng(random_state.randint(2**31 - 1))
    is_seed = (
        isinstance(random_state, numbers.Integral)
        and not isinstance(random_state, bool)
        and random_state >= 0
    )
    if random_state is None or is_seed or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be None, an int >= 0, a numpy Generator or "
        f"RandomState, got {random_state!r}."
    )


def _check_int(name, value, *, minimum):
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")


def _check_real(name, value, *, minimum, maximum=math.inf, strict=False):
    """Check ``minimum <= value <= maximum`` (``minimum < value`` if strict)."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if (
        not is_number
        or not math.isfinite(value)
        or value > maximum
        or (value <= minimum if strict else value < minimum)
    ):
        low = "(" if strict else "["
        high = "]" if math.isfinite(maximum) else ")"
        raise ValueError(
            f"{name} must be a finite number in {low}{minimum}, {maximum}{high}, "
            f"got {value!r}."
        )
