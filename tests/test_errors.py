"""The error hierarchy of gpbo.errors: one base, each error also a built-in."""

import pytest

from gpbo.errors import (
    FitError,
    GpboError,
    InvalidArgumentError,
    InvalidSpaceError,
    InvalidTrialError,
)


@pytest.mark.parametrize(
    "error, builtin",
    [
        (InvalidArgumentError, ValueError),
        (InvalidSpaceError, ValueError),
        (InvalidTrialError, ValueError),
        (FitError, RuntimeError),
    ],
)
def test_errors_derive_from_base_and_builtin(error, builtin):
    assert issubclass(error, GpboError) and issubclass(error, builtin)
    with pytest.raises(GpboError, match="bad value 3"):
        raise error("bad value 3")
    with pytest.raises(builtin):
        raise error("x")


def test_errors_are_distinct():
    assert not issubclass(InvalidSpaceError, InvalidTrialError)
    assert not issubclass(InvalidTrialError, InvalidSpaceError)
    assert not issubclass(InvalidSpaceError, InvalidArgumentError)
    assert not issubclass(FitError, ValueError)
