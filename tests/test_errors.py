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


def _gpbo_modules():
    """Every module of the gpbo package, imported; modules whose optional extra is missing are skipped."""
    import importlib
    import pkgutil

    import gpbo

    modules = []
    for info in pkgutil.walk_packages(gpbo.__path__, "gpbo."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # an integration whose extra is not installed
            continue
    return modules


def test_every_error_type_of_gpbo_lives_in_gpbo_errors_and_derives_from_gpbo_error():
    import inspect

    import gpbo.errors

    found = {
        obj for module in _gpbo_modules() for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("gpbo")
    }
    assert {"StorageError", "TrialTimeoutError"} <= {e.__name__ for e in found}
    for error in found:
        assert error.__module__ == "gpbo.errors", f"{error.__qualname__} is defined in {error.__module__}"
        assert error.__name__ in gpbo.errors.__all__ and getattr(gpbo.errors, error.__name__) is error
        assert issubclass(error, GpboError)
    for name in gpbo.errors.__all__:
        assert issubclass(getattr(gpbo.errors, name), GpboError)


def test_storage_and_timeout_errors_keep_their_old_paths_and_builtins():
    import gpbo.errors
    from gpbo import storage, workers

    assert storage.StorageError is gpbo.errors.StorageError and issubclass(storage.StorageError, RuntimeError)
    assert workers.TrialTimeoutError is gpbo.errors.TrialTimeoutError
    assert issubclass(gpbo.errors.TrialTimeoutError, GpboError) and issubclass(gpbo.errors.TrialTimeoutError, TimeoutError)
