"""Quantity kinds: a numeric target, its scaling, its link and its loss."""

import numbers

import numpy as np
import torch
from torch import nn

from ._base import Task, column_values_kind, plain

# Beyond this magnitude a prediction a few standard deviations away could overflow float64.
_LARGEST_TARGET = np.finfo(np.float64).max / 1e3


class _Quantity(Task):
    """A numeric target, trained on ``(y - location_) / scale_``."""

    def _fit(self, column, labelled):
        values = self._checked_values(labelled)
        self.location_, self.scale_ = self._scaling(values)

    def _checked_values(self, column):
        """The labelled values as float64, refused when this kind cannot learn them."""
        name = self.name_
        if column_values_kind(column) not in ("float", "integer"):
            example = plain(column.iloc[0]) if len(column) else None
            raise ValueError(
                f"Task {name!r} is set to {self.kind!r} but its column holds non-numeric "
                f"values (e.g. {example!r}, dtype {column.dtype}); {self.kind} needs numbers. "
                "Allowed kinds for this column: 'binary' or 'multiclass'."
            )
        values = column.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"Target column {name!r} contains infinity; {self.kind} targets must be finite.")
        peak = float(np.abs(values).max()) if len(values) else 0.0
        if peak > _LARGEST_TARGET:
            raise ValueError(
                f"Target column {name!r} holds values up to {peak:.3g} in magnitude; targets "
                f"must stay below {_LARGEST_TARGET:.3g} so that standardised values and "
                "predictions stay finite. Rescale the column (divide it by a power of ten)."
            )
        self._check_range(values)
        return values

    def _check_range(self, values):
        """Raise ValueError when values fall outside the kind's support."""

    def _scaling(self, values):
        return _mean_and_std(values)

    def encode(self, column):
        present = column.notna().to_numpy()
        values = self._checked_values(column[present])
        encoded = np.full(len(column), np.nan, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = ((values - self.location_) / self.scale_).astype(np.float32)
        if not np.isfinite(scaled).all():
            raise ValueError(
                f"Target column {self.name_!r} holds values (up to {np.abs(values).max():.3g}) "
                f"too far from those of the first fit (location {self.location_:.3g}, scale "
                f"{self.scale_:.3g}) to be standardised; call fit to rescale, or rescale the column."
            )
        encoded[present] = scaled
        return encoded

    def predict_raw(self, raw):
        return raw[:, 0].double() * self.scale_ + self.location_

    def decode_targets(self, encoded):
        return np.asarray(encoded, dtype=np.float64) * self.scale_ + self.location_

    def _fitted_state(self):
        return {"location": self.location_, "scale": self.scale_}

    def _set_fitted_state(self, state):
        location, scale = state.get("location"), state.get("scale")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                   for v in (location, scale)) or scale <= 0:
            return False
        self.location_, self.scale_ = float(location), float(scale)
        return True


def _mean_and_std(values):
    """Mean and standard deviation, free of overflow and underflow (1 when constant)."""
    peak = float(np.abs(values).max())
    if peak == 0:
        return 0.0, 1.0
    # Squares overflow beyond ~1e154 and underflow below ~1e-154: compute the moments of
    # the values divided by their largest magnitude, then scale them back.
    unit = values / peak
    scale = float(unit.std()) * peak
    return float(unit.mean()) * peak, scale if scale > 0 else 1.0


def _median_and_spread(values):
    """Median and a robust standard deviation (IQR / 1.349), for losses meant to resist
    outliers: a heavy tail must not set the unit the loss measures residuals in."""
    location = float(np.median(values))
    q25, q75 = np.percentile(values, [25, 75])
    spread = float(q75 - q25) / 1.349
    if not spread > 0:
        spread = _mean_and_std(values)[1]
    return location, spread


class Regression(_Quantity):
    """Squared error on the standardised target; predicts the conditional mean.

    Examples
    --------
    >>> from sk_mmoe.tasks import get_task
    >>> get_task("regression")
    Regression()
    """

    kind = "regression"
    uncertainty_factor = 0.5

    def loss(self, raw, target):
        return (raw[:, 0] - target).square()


class Huber(_Quantity):
    """Huber loss, squared for small residuals and linear beyond ``delta``: robust to a
    heavy-tailed target while still aiming at its centre.

    The target is centred on its median and scaled by a robust standard deviation
    (interquartile range / 1.349), so ``delta`` is in those units: 1.0 treats residuals
    beyond about one typical deviation as outliers.

    Parameters
    ----------
    delta : float > 0, default=1.0
    """

    kind = "huber"

    def __init__(self, delta=1.0):
        self.delta = delta

    def _params(self):
        return {"delta": self.delta}

    def _check_params(self):
        if not (isinstance(self.delta, numbers.Real) and np.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"Huber: delta must be a positive number; got {self.delta!r}.")

    def _scaling(self, values):
        return _median_and_spread(values)

    def loss(self, raw, target):
        return nn.functional.huber_loss(raw[:, 0], target, reduction="none", delta=float(self.delta))


class Quantile(_Quantity):
    """Pinball (quantile) loss; predicts the ``alpha`` quantile of the target given ``X``,
    e.g. ``Quantile(0.9)`` for an upper bound that 90% of rows fall below.

    Parameters
    ----------
    alpha : float in (0, 1), default=0.5
    """

    kind = "quantile"

    def __init__(self, alpha=0.5):
        self.alpha = alpha

    def _params(self):
        return {"alpha": self.alpha}

    def _check_params(self):
        if not (isinstance(self.alpha, numbers.Real) and 0 < self.alpha < 1):
            raise ValueError(f"Quantile: alpha must be in (0, 1); got {self.alpha!r}.")

    @property
    def quantile_level(self):
        return float(self.alpha)

    def _scaling(self, values):
        return _median_and_spread(values)

    def loss(self, raw, target):
        residual = target - raw[:, 0]
        return torch.maximum(self.alpha * residual, (self.alpha - 1) * residual)


class AbsoluteError(Quantile):
    """Absolute error; predicts the conditional median (``Quantile(0.5)``, scaled so the
    loss is the mean absolute error in robust standard deviations)."""

    kind = "absolute_error"

    def __init__(self):
        self.alpha = 0.5

    def _params(self):
        return {}

    def loss(self, raw, target):
        return (target - raw[:, 0]).abs()


class _LogLink(_Quantity):
    """A non-negative target with a log link: the network outputs ``log(mean / scale_)``,
    ``scale_`` being the training mean, so an untrained network predicts that mean and
    the loss has the same size whatever the target's unit."""

    tweedie_power = None

    def _scaling(self, values):
        mean = float(values.mean())
        if not mean > 0:
            raise ValueError(
                f"Target column {self.name_!r} has mean {mean:g}; a {self.kind} task "
                "needs a positive mean (a log link cannot fit an all-zero target)."
            )
        return 0.0, mean

    def _check_range(self, values):
        low = float(values.min())
        if low < 0 or (self._positive_only and low == 0):
            need = "positive values (> 0)" if self._positive_only else "non-negative values (>= 0)"
            raise ValueError(
                f"Target column {self.name_!r} holds {low:g}; a {self.kind} task needs "
                f"{need}. Use 'regression' (or 'huber') for targets that can be negative."
            )

    _positive_only = False

    def predict_raw(self, raw):
        return torch.exp(raw[:, 0].double()) * self.scale_


class Poisson(_LogLink):
    """Poisson deviance with a log link, for counts (visits, purchases, claims);
    predictions are never negative.

    The loss of a row is ``exp(f) - y f`` on ``y`` divided by the training mean, which is
    half the Poisson deviance less a term that depends on ``y`` alone.
    """

    kind = "poisson"
    tweedie_power = 1.0

    def loss(self, raw, target):
        f = raw[:, 0]
        return torch.exp(f) - target * f


class Gamma(_LogLink):
    """Gamma deviance with a log link, for positive amounts whose spread grows with their
    size (costs, durations, prices); every target must be > 0."""

    kind = "gamma"
    tweedie_power = 2.0
    _positive_only = True

    def loss(self, raw, target):
        f = raw[:, 0]
        return target * torch.exp(-f) + f


class Tweedie(_LogLink):
    """Tweedie deviance with a log link and ``1 < power < 2``: a compound Poisson-gamma
    model for non-negative amounts with many exact zeros (insurance claims, spend).

    Parameters
    ----------
    power : float in (1, 2), default=1.5
        Nearer 1 behaves like Poisson, nearer 2 like gamma; use ``"poisson"`` or
        ``"gamma"`` for the ends.
    """

    kind = "tweedie"

    def __init__(self, power=1.5):
        self.power = power

    def _params(self):
        return {"power": self.power}

    def _check_params(self):
        if not (isinstance(self.power, numbers.Real) and 1 < self.power < 2):
            raise ValueError(
                f"Tweedie: power must be in (1, 2); got {self.power!r}. Use 'poisson' for "
                "power 1 and 'gamma' for power 2."
            )

    @property
    def tweedie_power(self):
        return float(self.power)

    def loss(self, raw, target):
        f, p = raw[:, 0], float(self.power)
        return -target * torch.exp(f * (1 - p)) / (1 - p) + torch.exp(f * (2 - p)) / (2 - p)
