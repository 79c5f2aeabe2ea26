"""Tests for the batched L-BFGS-B (gpbo.optim.lbfgsb)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from gpbo.optim import LbfgsbResult, lbfgs_history, minimize_lbfgsb

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
F64 = torch.float64
D = 4
FAMILIES = ["quadratic", "rosenbrock", "styblinski-tang", "logsumexp"]


# ---------------------------------------------------------------- problem set
def _problem_set(n_per_family: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random smooth box-bounded problems in D=4 (float64 CPU parameters, P = 4 n)."""
    g = torch.Generator().manual_seed(seed)
    n = n_per_family
    P = 4 * n

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=F64)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=F64)

    Q, _ = torch.linalg.qr(randn(P, D, D))
    ev = torch.logspace(-2, 1, D, dtype=F64) * (0.5 + rand(P, 1))
    lo, hi = -0.2 - rand(P, D), 0.2 + rand(P, D)  # quadratics: active bounds
    r = slice(n, 2 * n)  # Rosenbrock: x1 >= -0.5 excludes the spurious 4-D minimum
    lo[r], hi[r] = -0.5 + 0.3 * rand(n, D), 0.5 + 1.5 * rand(n, D)
    s = slice(2 * n, 3 * n)  # Styblinski-Tang: a single basin per coordinate in [0.3, 5]
    lo[s], hi[s] = 0.3 + 0.7 * rand(n, D), 2.0 + 3.0 * rand(n, D)
    t = slice(3 * n, 4 * n)  # log-sum-exp: mixed infinite and finite bounds
    lo[t] = torch.where(rand(n, D) < 0.5, -math.inf, -0.3)
    hi[t] = torch.where(rand(n, D) < 0.5, math.inf, 0.3)
    lo2, hi2 = lo.clamp(min=-2.0), hi.clamp(max=2.0)
    return dict(
        A=Q @ torch.diag_embed(ev) @ Q.mT,
        b=2 * randn(P, D),
        W=randn(P, 6, D),
        c=randn(P, 6),
        family=torch.arange(4).repeat_interleave(n),
        lower=lo,
        upper=hi,
        x0=lo2 + (hi2 - lo2) * rand(P, D),
    )


def _family_fun(prm: dict[str, torch.Tensor]):
    """fun(x (*L, P, D)) -> (*L, P), each element evaluating its own family."""

    def fun(x: torch.Tensor) -> torch.Tensor:
        quad = 0.5 * torch.einsum("...i,...ij,...j->...", x, prm["A"], x) + (prm["b"] * x).sum(-1)
        rosen = (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)
        st = 0.5 * (x**4 - 16 * x**2 + 5 * x).sum(-1)
        z = torch.einsum("...kd,...d->...k", prm["W"], x) + prm["c"]
        lse = torch.logsumexp(z, -1) + 0.05 * (x * x).sum(-1)
        allf = torch.stack([quad, rosen, st, lse], -1)  # (*L, P, 4)
        idx = prm["family"].expand(allf.shape[:-1]).unsqueeze(-1)
        return allf.gather(-1, idx).squeeze(-1)

    return fun


def _to(prm: dict[str, torch.Tensor], dtype, device) -> dict[str, torch.Tensor]:
    return {
        k: v.to(device) if k == "family" else v.to(device=device, dtype=dtype)
        for k, v in prm.items()
    }


def _slice(prm: dict[str, torch.Tensor], p: int) -> dict[str, torch.Tensor]:
    return {k: v[p : p + 1] for k, v in prm.items()}


def _scipy_solve(fun, x0: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor):
    """SciPy L-BFGS-B on one element; ``fun`` maps (1, D) -> (1,), float64 CPU."""

    def f_and_g(z: np.ndarray):
        x = torch.tensor(z, dtype=F64).unsqueeze(0).requires_grad_(True)
        v = fun(x).sum()
        v.backward()
        return v.item(), x.grad[0].numpy().copy()

    bounds = [
        (None if math.isinf(a) else a, None if math.isinf(b) else b)
        for a, b in zip(lower.tolist(), upper.tolist())
    ]
    return scipy.optimize.minimize(
        f_and_g, x0.numpy(), jac=True, method="L-BFGS-B", bounds=bounds,
        options=dict(ftol=1e-15, gtol=1e-10, maxiter=1000),
    )


def _scipy_family(prm: dict[str, torch.Tensor], p: int):
    return _scipy_solve(_family_fun(_slice(prm, p)), prm["x0"][p], prm["lower"][p], prm["upper"][p])


def _solve_family(prm, dtype, device, **kw) -> LbfgsbResult:
    q = _to(prm, dtype, device)
    return minimize_lbfgsb(_family_fun(q), q["x0"], q["lower"], q["upper"], **kw)


# ---------------------------------------------------------------- 1. quality vs SciPy
@pytest.mark.parametrize("two_loop_from", [1, 10**9], ids=["two-loop", "compact"])
@pytest.mark.parametrize("unit_first", [True, False])  # CPU mode, accelerator mode
@pytest.mark.parametrize("device", DEVICES)
def test_matches_scipy_on_random_problems(device, unit_first, two_loop_from, monkeypatch):
    monkeypatch.setattr(lbfgs_history, "TWO_LOOP_MIN_BATCH", two_loop_from)
    prm = _problem_set()
    ours = _solve_family(
        prm, F64, device, pgtol=1e-10, ftol=1e-15, max_iter=1000, unit_first=unit_first
    )
    match, worse, rows = 0, 0, []
    for p in range(prm["x0"].shape[0]):
        ref = _scipy_family(prm, p)
        f_ours, scale = ours.f[p].item(), max(1.0, abs(ref.fun))
        match += abs(f_ours - ref.fun) <= 1e-6 * scale
        worse += f_ours > ref.fun + 1e-4 * scale
        rows.append((int(prm["family"][p]), ours.n_iter[p].item(), ref.nit))
    P = len(rows)
    print(f"\nfraction matching scipy: {match}/{P} = {match / P:.3f}")
    for fam, name in enumerate(FAMILIES):
        its = np.array([r[1:] for r in rows if r[0] == fam])
        print(f"  {name:16s} mean iterations: ours {its[:, 0].mean():5.1f}, "
              f"scipy {its[:, 1].mean():5.1f}")
        assert its[:, 0].mean() <= 2 * its[:, 1].mean() + 5
    assert P >= 20
    assert match / P >= 0.95
    assert worse == 0
    assert bool(ours.converged.all())


@pytest.mark.parametrize("device", DEVICES)
def test_float32_close_to_scipy_on_quadratics(device):
    prm = _problem_set(n_per_family=6, seed=1)
    ours = _solve_family(prm, torch.float32, device)
    assert ours.f.dtype == torch.float32 and ours.x.dtype == torch.float32
    for p in range(6):  # the quadratic family
        ref = _scipy_family(prm, p)
        assert abs(ours.f[p].item() - ref.fun) <= 1e-4 * max(1.0, abs(ref.fun))
    assert bool(torch.isfinite(ours.f).all())
    assert int(ours.n_iter.max()) < 200  # float32 stops (stalls) well before max_iter


@pytest.mark.parametrize("device", DEVICES)
def test_multimodal_best_of_shared_starts(device):
    """Sums of Gaussians in [0, 1]^2; compare the best of R shared starts, batch (R, P)."""
    g = torch.Generator().manual_seed(3)
    R, P, K = 5, 8, 6
    centres = torch.rand(P, K, 2, generator=g, dtype=F64)
    widths = 0.1 + 0.2 * torch.rand(P, K, generator=g, dtype=F64)
    heights = 0.5 + torch.rand(P, K, generator=g, dtype=F64)
    x0 = torch.rand(R, P, 2, generator=g, dtype=F64)

    def make(c, w, h):
        def fun(x):  # (*L, R, P, 2) -> (*L, R, P)
            d2 = ((x.unsqueeze(-2) - c) ** 2).sum(-1)  # (*L, R, P, K)
            return -(h * torch.exp(-0.5 * d2 / w**2)).sum(-1) + 0.1 * (x * x).sum(-1)

        return fun

    fun = make(centres.to(device), widths.to(device), heights.to(device))
    out = minimize_lbfgsb(fun, x0.to(device), 0.0, 1.0, pgtol=1e-10, ftol=1e-15)
    assert out.x.shape == (R, P, 2) and out.f.shape == (R, P) and out.n_iter.shape == (R, P)
    zeros, ones = torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)
    for p in range(P):
        fun_p = make(centres[p : p + 1], widths[p : p + 1], heights[p : p + 1])
        best = min(_scipy_solve(fun_p, x0[r, p], zeros, ones).fun for r in range(R))
        assert out.f[:, p].min().item() <= best + 1e-6 * max(1.0, abs(best))


# ---------------------------------------------------------------- 2. batched == looped
@pytest.mark.parametrize("device", DEVICES)
def test_batched_equals_looped(device):
    prm = _to(_problem_set(n_per_family=2, seed=2), F64, device)
    batched = minimize_lbfgsb(
        _family_fun(prm), prm["x0"], prm["lower"], prm["upper"], check_every=3
    )
    for p in range(prm["x0"].shape[0]):
        q = _slice(prm, p)
        single = minimize_lbfgsb(_family_fun(q), q["x0"], q["lower"], q["upper"])
        torch.testing.assert_close(batched.f[p : p + 1], single.f, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(batched.x[p : p + 1], single.x, rtol=1e-6, atol=1e-7)
        assert batched.converged[p] == single.converged[0]


# ---------------------------------------------------------------- 3. fixed, bounds, non-finite
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_fixed_coordinates_and_bounds(dtype, device):
    prm = _to(_problem_set(n_per_family=5, seed=4), dtype, device)
    fixed = torch.zeros_like(prm["x0"], dtype=torch.bool)
    fixed[::2, 1] = True
    fixed[1::3, 3] = True
    out = minimize_lbfgsb(_family_fun(prm), prm["x0"], prm["lower"], prm["upper"], fixed=fixed)
    assert torch.equal(out.x[fixed], prm["x0"][fixed])
    assert bool((out.x >= prm["lower"]).all()) and bool((out.x <= prm["upper"]).all())
    assert bool((out.f <= _family_fun(prm)(prm["x0"])).all())
    assert bool(((out.x != prm["x0"]) & ~fixed).any())


def test_fixed_coordinate_outside_box_is_kept():
    x0 = torch.tensor([[2.0, 0.3]], dtype=F64)
    fixed = torch.tensor([True, False])
    out = minimize_lbfgsb(lambda x: ((x - 0.5) ** 2).sum(-1), x0, 0.0, 1.0, fixed=fixed)
    torch.testing.assert_close(out.x, torch.tensor([[2.0, 0.5]], dtype=F64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_non_finite_values_do_not_leak(dtype, device):
    prm = _to(_problem_set(n_per_family=3, seed=5), dtype, device)
    base, x0 = _family_fun(prm), prm["x0"]
    P = x0.shape[0]
    inf_start = torch.zeros(P, dtype=torch.bool, device=device)
    inf_start[1] = True
    nan_region = torch.zeros(P, dtype=torch.bool, device=device)
    nan_region[[0, 4, 7]] = True

    def fun(x):
        v = base(x)
        v = torch.where((x == x0).all(-1) & inf_start, torch.full_like(v, math.inf), v)
        in_region = nan_region & (x[..., 0] > x0[..., 0] + 0.05)
        return torch.where(in_region, torch.full_like(v, math.nan), v)

    out = minimize_lbfgsb(fun, x0, prm["lower"], prm["upper"])
    clean = minimize_lbfgsb(base, x0, prm["lower"], prm["upper"])
    others = ~(inf_start | nan_region)
    torch.testing.assert_close(out.x[others], clean.x[others])
    torch.testing.assert_close(out.f[others], clean.f[others])
    assert torch.equal(out.x[1], x0[1]) and not bool(out.converged[1])
    assert out.f[1].item() == math.inf and out.n_iter[1].item() == 0
    assert bool(torch.isfinite(out.x).all()) and bool(torch.isfinite(out.f[~inf_start]).all())
    assert bool((out.x >= prm["lower"]).all()) and bool((out.x <= prm["upper"]).all())
    assert bool((out.x[nan_region, 0] <= x0[nan_region, 0] + 0.05).all())
    assert bool((out.f[nan_region] <= base(x0)[nan_region]).all())


# ---------------------------------------------------------------- 4. batch shapes
@pytest.mark.parametrize("batch_shape", [(), (5,), (3, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_batch_shapes(batch_shape, dtype, device):
    g = torch.Generator().manual_seed(6)
    centre = (2 * torch.rand(*batch_shape, 3, generator=g) - 1).to(device=device, dtype=dtype)
    weights = torch.arange(1, 4, device=device, dtype=dtype)

    def fun(x):
        return ((x - centre) ** 2 * weights).sum(-1) + (x**4).sum(-1)

    x0 = torch.zeros(*batch_shape, 3, device=device, dtype=dtype)
    out = minimize_lbfgsb(fun, x0, -0.5, torch.full((3,), 0.5, device=device, dtype=dtype))
    assert out.x.shape == (*batch_shape, 3) and out.f.shape == batch_shape
    assert out.n_iter.shape == batch_shape and out.n_iter.dtype == torch.int64
    assert out.converged.shape == batch_shape and out.converged.dtype == torch.bool
    assert out.x.device == x0.device and out.x.dtype == dtype
    assert bool(out.converged.all())
    grad = torch.func.grad(lambda z: fun(z).sum())(out.x)
    interior = (out.x > -0.5) & (out.x < 0.5)
    assert bool((grad[interior].abs() < (1e-3 if dtype == torch.float32 else 1e-5)).all())
    at_lower, at_upper = out.x == -0.5, out.x == 0.5
    assert bool((grad[at_lower] >= 0).all()) and bool((grad[at_upper] <= 0).all())


# ---------------------------------------------------------------- 5. GP-like usage
def _gp_nll(X: torch.Tensor, Y: torch.Tensor):
    """Per-problem negative log marginal likelihood of a 1-D RBF GP plus a weak prior.

    fun(theta (*L, P, 3)) -> (*L, P) with theta = log(lengthscale, outputscale, noise).
    """
    eye = torch.eye(X.shape[-1], dtype=X.dtype, device=X.device)

    def fun(theta):
        ls, os, noise = theta.exp().unbind(-1)  # (*L, P)
        d2 = (X.unsqueeze(-1) - X.unsqueeze(-2)) ** 2  # (P, n, n)
        K = os[..., None, None] * torch.exp(-0.5 * d2 / ls[..., None, None] ** 2)
        K = K + (noise[..., None, None] + 1e-6) * eye
        L, info = torch.linalg.cholesky_ex(K)
        alpha = torch.cholesky_solve(Y.expand(K.shape[:-1]).unsqueeze(-1), L).squeeze(-1)
        nll = 0.5 * (Y * alpha).sum(-1) + L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        nll = nll + 0.05 * (theta * theta).sum(-1)
        return torch.where(info == 0, nll, torch.full_like(nll, math.nan))

    return fun


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_gp_hyperparameter_fit(dtype, device):
    g = torch.Generator().manual_seed(7)
    P, n = 4, 10
    X = torch.rand(P, n, generator=g, dtype=F64)
    freq = 6 * (1 + torch.arange(P, dtype=F64)[:, None] / 2)
    Y = torch.sin(freq * X) + 0.1 * torch.randn(P, n, generator=g, dtype=F64)
    Y = (Y - Y.mean(-1, keepdim=True)) / Y.std(-1, keepdim=True)
    fun = _gp_nll(X.to(device, dtype), Y.to(device, dtype))
    theta0 = torch.zeros(P, 3, device=device, dtype=dtype)
    out = minimize_lbfgsb(fun, theta0, -math.inf, math.inf)
    assert bool(torch.isfinite(out.f).all()) and bool((out.f < fun(theta0)).all())
    if dtype == torch.float64:
        assert bool(out.converged.all())
        unbounded = torch.full((3,), math.inf, dtype=F64)
        for p in range(P):
            f_p = _gp_nll(X[p : p + 1], Y[p : p + 1])
            ref = _scipy_solve(f_p, torch.zeros(3, dtype=F64), -unbounded, unbounded)
            assert abs(out.f[p].item() - ref.fun) <= 1e-6 * max(1.0, abs(ref.fun))
        grad = torch.func.grad(lambda t: _gp_nll(X, Y)(t).sum())(out.x.cpu())
        assert grad.abs().max().item() < 1e-5
    else:
        ref = minimize_lbfgsb(_gp_nll(X, Y), theta0.double().cpu(), -math.inf, math.inf)
        torch.testing.assert_close(out.f.double().cpu(), ref.f, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- hygiene
def test_no_graph_no_grad_leak_and_no_global_changes():
    w = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    x0 = torch.zeros(3, 2, dtype=F64, requires_grad=True)
    default_dtype, grad_mode = torch.get_default_dtype(), torch.is_grad_enabled()
    out = minimize_lbfgsb(lambda x: ((x - w) ** 2).sum(-1), x0, -5.0, 5.0)
    assert not out.x.requires_grad and not out.f.requires_grad
    assert w.grad is None and x0.grad is None
    assert torch.get_default_dtype() == default_dtype and torch.is_grad_enabled() == grad_mode
    torch.testing.assert_close(out.x, w.detach().expand(3, 2))


def test_host_syncs_only_every_check_every(monkeypatch):
    calls = {"n": 0}
    original = torch.Tensor.__bool__

    def counting_bool(self):
        calls["n"] += 1
        return original(self)

    def rosen(x):
        return 100 * (x[..., 1] - x[..., 0] ** 2) ** 2 + (1 - x[..., 0]) ** 2

    x0 = torch.tensor([[-1.2, 1.0], [0.5, -0.5]], dtype=F64)
    monkeypatch.setattr(torch.Tensor, "__bool__", counting_bool)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: pytest.fail("item() called"))
    # the accelerator mode: no unit-step-first check, "all done" every 10 iterations
    out = minimize_lbfgsb(
        rosen, x0, -2.0, 2.0, max_iter=40, check_every=10, pgtol=0.0, ftol=0.0, unit_first=False
    )
    monkeypatch.undo()
    assert 1 <= calls["n"] <= 40 // 10 + 3  # input validation + one check per check_every
    assert out.n_iter.max().item() <= 40


def test_max_iter_and_converged_flags():
    def rosen(x):
        return 100 * (x[..., 1] - x[..., 0] ** 2) ** 2 + (1 - x[..., 0]) ** 2

    x0 = torch.tensor([[-1.2, 1.0], [1.0, 1.0]], dtype=F64)
    out = minimize_lbfgsb(rosen, x0, -2.0, 2.0, max_iter=5)
    assert out.n_iter.tolist() == [5, 0]
    assert out.converged.tolist() == [False, True]
    full = minimize_lbfgsb(rosen, x0, -2.0, 2.0)
    assert bool(full.converged.all()) and full.f.max().item() < 1e-12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lower=1.0, upper=0.0), "lower must be <= upper"),
        (dict(max_iter=-1), "max_iter"),
        (dict(history=0), "history"),
        (dict(x0=torch.tensor([[math.nan, 0.0, 0.0]])), "x0 must be finite"),
        (dict(x0=torch.zeros(2, 3, dtype=torch.int64)), "floating tensor"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(x0=torch.zeros(2, 3), lower=-1.0, upper=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        minimize_lbfgsb(lambda x: (x * x).sum(-1), **args)


def test_bad_fun_output_shape():
    with pytest.raises(ValueError, match="one value per batch element"):
        minimize_lbfgsb(lambda x: (x * x).sum(), torch.zeros(2, 3), -1.0, 1.0)


def test_closed_form_value_and_grad_gives_the_autograd_result():
    g = torch.Generator().manual_seed(0)
    A = torch.rand(5, 3, 3, generator=g, dtype=torch.float64)
    A = A @ A.transpose(-1, -2) + 0.1 * torch.eye(3, dtype=torch.float64)  # (B, D, D)
    c = torch.rand(5, 3, generator=g, dtype=torch.float64)

    def fun(x):  # (*L, B, D) -> (*L, B)
        r = x - c
        return 0.5 * (r.unsqueeze(-2) @ A @ r.unsqueeze(-1)).squeeze(-1).squeeze(-1)

    def value_and_grad(x):
        r = x - c
        return fun(x), (A @ r.unsqueeze(-1)).squeeze(-1)

    x0 = torch.full((5, 3), 0.9, dtype=torch.float64)
    for unit_first in (True, False):
        plain = minimize_lbfgsb(fun, x0, 0.0, 0.5, unit_first=unit_first)
        fused = minimize_lbfgsb(fun, x0, 0.0, 0.5, unit_first=unit_first, value_and_grad=value_and_grad)
        torch.testing.assert_close(fused.x, plain.x)
        torch.testing.assert_close(fused.f, plain.f)



def _restarts(R: int = 6, seed: int = 5) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Problems per column (C = 8) and R random starts of each, x0 (R, C, D)."""
    prm = _problem_set(n_per_family=2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    lo, hi = prm["lower"].clamp(min=-2.0), prm["upper"].clamp(max=2.0)
    return prm, lo + (hi - lo) * torch.rand(R, *lo.shape, generator=g, dtype=F64)


@pytest.mark.parametrize("fused", [False, True], ids=["autograd", "value_and_grad"])
def test_packed_rows_give_the_unpacked_result_with_fewer_evaluations(fused):
    prm, x0 = _restarts()
    fun = _family_fun(prm)  # the parameters broadcast over any number of rows, as an acquisition's do
    rows: list[int] = []

    def counted(x):
        rows.append(x.shape[0])
        return fun(x)

    def value_and_grad(x):
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            f = counted(xr)
            (g,) = torch.autograd.grad(f.sum(), xr)
        return f.detach(), g

    kw = dict(value_and_grad=value_and_grad) if fused else {}
    plain = minimize_lbfgsb(counted, x0, prm["lower"], prm["upper"], **kw)
    plain_rows, rows[:] = list(rows), []
    packed = minimize_lbfgsb(counted, x0, prm["lower"], prm["upper"], pack_rows=True, **kw)
    torch.testing.assert_close(packed.x, plain.x, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(packed.f, plain.f, rtol=1e-10, atol=1e-12)
    assert torch.equal(packed.n_iter, plain.n_iter) and torch.equal(packed.converged, plain.converged)
    assert len(rows) == len(plain_rows) and set(plain_rows) == {x0.shape[0]}
    # a call holds the largest number of unfinished restarts of any column: one at the end
    assert min(rows) == 1 and sum(rows) < 0.9 * sum(plain_rows)


def test_packed_rows_on_the_accelerator_path_between_checks_and_without_a_batch():
    prm, x0 = _restarts(R=3)
    fun = _family_fun(prm)
    batched = minimize_lbfgsb(fun, x0, prm["lower"], prm["upper"], unit_first=False)
    packed = minimize_lbfgsb(fun, x0, prm["lower"], prm["upper"], unit_first=False, pack_rows=True)
    torch.testing.assert_close(packed.x, batched.x, rtol=0, atol=0)
    sparse = minimize_lbfgsb(fun, x0, prm["lower"], prm["upper"], pack_rows=True, check_every=7)  # steps after all done
    torch.testing.assert_close(sparse.x, minimize_lbfgsb(fun, x0, prm["lower"], prm["upper"], check_every=7).x)
    one = minimize_lbfgsb(lambda x: (x - 0.3).square().sum(-1), torch.zeros(2, dtype=F64), -1.0, 1.0, pack_rows=True)
    torch.testing.assert_close(one.x, torch.full((2,), 0.3, dtype=F64))


@pytest.mark.parametrize("batch", [(3,), (5, 4)])
def test_two_loop_recursion_equals_the_compact_representation(batch):
    g = torch.Generator().manual_seed(3)
    m, D = 6, 5
    S = torch.randn(m, *batch, D, generator=g, dtype=F64)
    Y = S + 0.3 * torch.randn(m, *batch, D, generator=g, dtype=F64)
    Y[2] = -S[2]  # negative curvature: that pair is skipped
    valid = torch.rand(m, *batch, generator=g) < 0.8
    valid[:, 0] = False  # no pair at all: plain steepest descent
    grad = torch.randn(*batch, D, generator=g, dtype=F64)
    free = torch.rand(*batch, D, generator=g) < 0.8
    args = (grad, free, S, Y, valid)
    fm, um = free.to(F64), valid
    sy = (S * fm * Y * fm).sum(-1)
    use = um & (sy > torch.finfo(F64).eps * (Y * fm).pow(2).sum(-1))
    gamma = torch.rand(*batch, 1, generator=g, dtype=F64) + 0.5
    compact = lbfgs_history._compact(grad * fm, S * fm, Y * fm, use, gamma)
    two_loop = lbfgs_history._two_loop(grad * fm, S * fm, Y * fm, sy, use, gamma)
    torch.testing.assert_close(two_loop, compact, rtol=1e-12, atol=1e-12)
    d_small, has_small = lbfgs_history._quasi_newton(*args)  # batch < TWO_LOOP_MIN_BATCH: compact
    torch.testing.assert_close(d_small[0], -grad[0] * fm[0], rtol=0, atol=0)
    assert not bool(has_small[0].any())
    assert bool((d_small[~free] == 0).all())
