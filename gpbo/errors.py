"""Exception types raised by gpbo.

Every error gpbo raises on purpose derives from :class:`GpboError`, so callers
can catch all of them with one ``except``. Each concrete error also derives
from the matching built-in (``ValueError`` for bad input, ``RuntimeError`` for
numerical failures, ``TimeoutError`` for a trial past its time), so generic
handlers keep working. Every error type is defined here; the modules that
raise one may re-export it (``gpbo.storage.StorageError``).

Errors are raised where input enters the library, and their messages show the
bad value together with what was expected.
"""

from __future__ import annotations

__all__ = [
    "GpboError",
    "InvalidArgumentError",
    "InvalidSpaceError",
    "InvalidTrialError",
    "MetricsError",
    "FitError",
    "StorageError",
    "TrialTimeoutError",
    "UnsupportedAcquisitionError",
]


class GpboError(Exception):
    """Base class of every error raised by gpbo."""


class InvalidArgumentError(GpboError, ValueError):
    """A public call got a bad option or argument (not a space or a trial).

    For example an unknown acquisition name, ``q < 1``, or tensors whose
    shapes do not fit together.
    """


class InvalidSpaceError(GpboError, ValueError):
    """A search space, parameter or dimension description is invalid.

    Raised when building :class:`gpbo.space.Real`, :class:`~gpbo.space.Integer`,
    :class:`~gpbo.space.Categorical`, :class:`~gpbo.space.Space` or
    :class:`gpbo.dims.DimSpec` from bad arguments, or when loading a space
    from a malformed serialised description.
    """


class InvalidTrialError(GpboError, ValueError):
    """A trial's parameters (or an encoded point) do not fit the space.

    Raised for missing or unknown parameter names, wrongly typed, non-finite
    or out-of-range values, categorical values that are not among the
    choices, and encoded tensors of the wrong shape or containing NaN.
    """


class MetricsError(InvalidTrialError):
    """A told dict of metrics that cannot be recorded as told: a metric missing,
    unknown, or not a real number.

    Attributes:
        values: Every metric of the study that was told as a real number, NaN
            for the others, so that a FAILED record of the trial keeps what
            can be stored (the message names the rest).
    """

    def __init__(self, message: str, values: dict[str, float]):
        super().__init__(message)
        self.values = values


class FitError(GpboError, RuntimeError):
    """Fitting a surrogate model failed in a way that could not be recovered."""


class StorageError(GpboError, RuntimeError):
    """The storage file cannot be opened, read or written (or is not a gpbo study)."""


class TrialTimeoutError(GpboError, TimeoutError):
    """A trial ran longer than ``timeout_per_trial`` (the reason of its FAILED record)."""


class UnsupportedAcquisitionError(GpboError, ValueError):
    """An acquisition (e.g. a BoTorch class) cannot run on this model or input.

    The message names the class and the reason, in place of the shape
    assertion or attribute error the class would raise deep inside.
    """
