"""Registry, and the contract every built-in keeps: shapes, dtypes, batch == loop."""

from __future__ import annotations

import pytest
import torch

import gpbo.acquisition as acquisition
from gpbo.acquisition import (
    UCB,
    LogAugmentedEI,
    LogEI,
    LogPI,
    PosteriorMean,
    RoundRobin,
    ThompsonSampling,
    get,
    is_joint,
    qLogNEI,
    register,
)
from gpbo.errors import InvalidArgumentError

BUILTINS = {
    "log_ei": LogEI,
    "log_aei": LogAugmentedEI,
    "log_pi": LogPI,
    "ucb": UCB,
    "log_aei_ucb": RoundRobin,
    "log_ei_ucb": RoundRobin,
    "posterior_mean": PosteriorMean,
    "qlog_nei": qLogNEI,
    "thompson": ThompsonSampling,
}
JOINT = {"qlog_nei", "thompson"}


def _small(name: str):
    """Cheap configurations for the contract tests."""
    if name == "qlog_nei":
        return qLogNEI(num_samples=32, max_baseline=5)
    if name == "thompson":
        return ThompsonSampling(num_features=64)
    return get(name)


@pytest.mark.parametrize("name", list(BUILTINS))
def test_get_returns_fresh_instances(name: str) -> None:
    acq = get(name)
    assert isinstance(acq, BUILTINS[name]) and get(name) is not acq
    assert is_joint(acq) == (name in JOINT)
    assert isinstance(acq, acquisition.Acquisition)


def test_get_passes_objects_and_functions_through() -> None:
    obj = UCB(beta=0.5)

    def plain(ctx):
        return lambda X: X.sum((-1, -2))

    assert get(obj) is obj and get(plain) is plain
    assert is_joint(plain) is False


def test_get_rejects_unknown_names_and_objects() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown acquisition 'logei'.*'log_ei'"):
        get("logei")
    with pytest.raises(InvalidArgumentError, match=r"registry name or a callable.*3 \(int\)"):
        get(3)  # type: ignore[arg-type]


def test_register_adds_a_name() -> None:
    register("ucb_wide_test", lambda: UCB(beta=9.0))
    try:
        assert get("ucb_wide_test").beta == 9.0
        with pytest.raises(InvalidArgumentError, match="already registered"):
            register("ucb_wide_test", UCB)
    finally:
        acquisition.REGISTRY.pop("ucb_wide_test")
    with pytest.raises(InvalidArgumentError, match="non-empty str"):
        register("", UCB)
    with pytest.raises(InvalidArgumentError, match="'auto' is reserved"):
        register("auto", UCB)
    with pytest.raises(InvalidArgumentError, match="must be callable"):
        register("x_test", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(BUILTINS))
@pytest.mark.parametrize("lead", [(), (5,), (4, 3)])
def test_shapes_and_dtypes(name: str, lead: tuple[int, ...], dtype: torch.dtype, device: str,
                           make_gp, make_ctx) -> None:
    gp = make_gp(P=2, n=7, dtype=dtype, device=device)
    q = 3 if name in JOINT else 1
    X = torch.rand(*lead, 2, q, 2, dtype=dtype, device=device).requires_grad_(True)
    value = _small(name)(make_ctx(gp))(X)
    assert value.shape == (*lead, 2) and value.dtype == dtype and value.device == X.device
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(X.grad).all()


@pytest.mark.parametrize("name", list(BUILTINS))
def test_batched_equals_looped(name: str, make_gp, make_ctx, subproblem) -> None:
    gp = make_gp(P=3, n=7, seed=4)
    q = 2 if name in JOINT else 1
    g = torch.Generator().manual_seed(0)
    X = torch.rand(4, 3, q, 2, generator=g, dtype=torch.float64)
    pending = torch.rand(3, 2, 2, generator=g, dtype=torch.float64) if name in JOINT else None
    acq = _small(name)
    batched = acq(make_ctx(gp, pending=pending, seed=21))(X)  # (4, 3)
    for p in range(3):
        pend_p = None if pending is None else pending[p:p + 1]
        looped = acq(make_ctx(subproblem(gp, p), pending=pend_p, seed=21))(X[:, p:p + 1])
        torch.testing.assert_close(looped[:, 0], batched[:, p])
