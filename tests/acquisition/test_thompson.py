"""ThompsonSampling: pathwise samples reproduce the posterior; one path per point."""

from __future__ import annotations

import pytest
import torch

from gpbo.acquisition import ThompsonSampling
from gpbo.acquisition.thompson import _draw_paths, _level_normals, _prior_paths
from gpbo.errors import InvalidArgumentError
from gpbo.models.kernel import RBF, Matern52, kernel_matrix

N_PATHS = 2000


def _test_points(gp, T: int, seed: int = 3, levels: int = 3) -> torch.Tensor:
    P, _, d = gp.X_train.shape
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(T, P, d, generator=g, dtype=torch.float64)
    for j in gp.categorical:
        X[..., j] = torch.randint(0, levels, (T, P), generator=g).double() / (levels - 1)
    X[0] = gp.X_train[:, 0].double().cpu()  # a training point
    return X.to(gp.X_train)


def _path_moments(gp, ctx, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance over N_PATHS paths at X (T, P, d): each (T, P)."""
    paths = ThompsonSampling(num_features=64).paths(ctx)
    values = paths(X.unsqueeze(-2).expand(-1, -1, N_PATHS, -1))  # (T, P, N_PATHS)
    return values.mean(-1), values.var(-1)


@pytest.mark.parametrize("categorical", [(), (1,)])
def test_paths_match_posterior_moments(categorical: tuple[int, ...], dtype: torch.dtype,
                                       make_gp, make_ctx) -> None:
    gp = make_gp(P=2, n=10, d=3, dtype=dtype, noise=1e-3, categorical=categorical, seed=4)
    X = _test_points(gp, 4)
    mean, var = _path_moments(gp, make_ctx(gp), X)
    post = gp.posterior(X.unsqueeze(-2))
    exp_mean, exp_var = post.mean.squeeze(-1), post.variance.squeeze(-1)
    sd = gp.y_std  # (P,) prior scale of the paths in Y units
    torch.testing.assert_close(mean, exp_mean, atol=float(0.06 * sd.max()), rtol=0)
    torch.testing.assert_close(var, exp_var, atol=float(0.03 * sd.max() ** 2), rtol=0.12)


def test_paths_match_posterior_covariance_across_levels(make_gp, make_ctx) -> None:
    gp = make_gp(P=1, n=6, d=2, noise=1e-3, categorical=(1,), seed=5)
    xa = torch.tensor([[0.3, 0.0]], dtype=torch.float64)  # (P, d)
    xb = torch.tensor([[0.35, 1.0]], dtype=torch.float64)  # other level, close in x0
    paths = ThompsonSampling(num_features=64).paths(make_ctx(gp))
    X = torch.stack([xa, xb]).unsqueeze(-2).expand(-1, -1, N_PATHS, -1)  # (2, P, S, d)
    values = paths(X)[:, 0]  # (2, S): both points on the same path i
    emp = torch.cov(values)
    post = gp.posterior(torch.cat([xa, xb]).unsqueeze(0))  # q=2 joint
    sd2 = float(gp.y_std.max() ** 2)
    torch.testing.assert_close(emp, post.covariance[0], atol=0.05 * sd2, rtol=0.1)


def test_value_is_sum_of_independent_paths(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, d=2, seed=1)
    ctx = make_ctx(gp, seed=3)
    acq = ThompsonSampling(num_features=128)
    X = torch.rand(5, 2, 4, 2, dtype=torch.float64)
    per_point = acq.paths(make_ctx(gp, seed=3))(X)  # (5, P, q)
    torch.testing.assert_close(acq(ctx)(X), per_point.sum(-1))
    moved = X.clone()
    moved[..., 2, :] = torch.rand(5, 2, 2, dtype=torch.float64)
    changed = acq.paths(make_ctx(gp, seed=3))(moved)
    torch.testing.assert_close(changed[..., [0, 1, 3]], per_point[..., [0, 1, 3]])
    assert not torch.allclose(changed[..., 2], per_point[..., 2])
    assert not torch.allclose(per_point[..., 0], per_point[..., 1])  # distinct paths


@pytest.mark.parametrize("lead", [(), (5,), (4, 3)])
def test_shapes(lead: tuple[int, ...], dtype: torch.dtype, device: str,
                make_gp, make_ctx) -> None:
    gp = make_gp(P=2, d=3, dtype=dtype, device=device, categorical=(2,))
    fn = ThompsonSampling(num_features=32)(make_ctx(gp))
    X = torch.rand(*lead, 2, 3, 3, dtype=dtype, device=device)
    value = fn(X)
    assert value.shape == (*lead, 2) and value.dtype == dtype and value.device == X.device
    assert torch.isfinite(value).all()


def test_gradcheck(make_gp, make_ctx) -> None:
    gp = make_gp(P=2, d=2, seed=2)
    fn = ThompsonSampling(num_features=32)(make_ctx(gp))
    X = torch.rand(2, 2, 3, 2, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (X,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_batched_equals_looped_with_categorical(make_gp, make_ctx, subproblem) -> None:
    gp = make_gp(P=3, n=9, d=3, categorical=(0,), seed=7)
    acq = ThompsonSampling(num_features=64)
    X = torch.rand(4, 3, 2, 3, dtype=torch.float64)
    X[..., 0] = torch.randint(0, 3, (4, 3, 2)).double() / 2
    batched = acq(make_ctx(gp, seed=9))(X)
    for p in range(3):
        looped = acq(make_ctx(subproblem(gp, p), seed=9))(X[:, p:p + 1])
        torch.testing.assert_close(looped[:, 0], batched[:, p])


def test_level_normals_are_equal_per_level_and_standard() -> None:
    seeds = torch.randint(0, 2**32, (20000, 1), generator=torch.Generator().manual_seed(0))
    levels = torch.tensor([[0.0], [0.5], [1.0], [0.5]], dtype=torch.float64)  # (4, 1)
    z = _level_normals(levels.unsqueeze(1), seeds)[..., 0]  # (4, 20000)
    torch.testing.assert_close(z[1], z[3], rtol=0, atol=0)
    torch.testing.assert_close(z[:3].mean(-1), torch.zeros(3, dtype=torch.float64),
                               atol=0.03, rtol=0)
    torch.testing.assert_close(torch.corrcoef(z[:3]), torch.eye(3, dtype=torch.float64),
                               atol=0.03, rtol=0)
    torch.testing.assert_close(z[:3].var(-1), torch.ones(3, dtype=torch.float64),
                               atol=0.04, rtol=0)


def test_rejects_model_without_pathwise_attributes(make_gp, make_ctx) -> None:
    gp = make_gp(P=1)

    class MeanOnly:
        def posterior(self, X):
            return gp.posterior(X)

    ctx = make_ctx(gp)
    ctx = type(ctx)(MeanOnly(), ctx.X, ctx.Y, ctx.best_f, None, ctx.generator)
    with pytest.raises(InvalidArgumentError, match="lacks lengthscale"):
        ThompsonSampling()(ctx)


@pytest.mark.parametrize("bad", [0, 2.0, True])
def test_rejects_bad_num_features(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="num_features"):
        ThompsonSampling(num_features=bad)  # type: ignore[arg-type]


def test_rejects_wrong_problem_count(make_gp, make_ctx) -> None:
    fn = ThompsonSampling(num_features=8)(make_ctx(make_gp(P=2)))
    with pytest.raises(InvalidArgumentError, match=r"\(\.\.\., 2, q, 2\)"):
        fn(torch.rand(3, 1, 2, dtype=torch.float64))


def test_paths_match_the_posterior_of_a_model_with_believed_points() -> None:
    """A kriging-believer fantasy has noise at the floor: every path goes through it,
    and the paths' moments elsewhere are the conditioned model's posterior."""
    from gpbo.acquisition import AcquisitionContext
    from gpbo.models.exact import ExactGP

    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 12, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(4 * X).sum(-1) + 0.3 * torch.randn(2, 12, generator=g, dtype=torch.float64)
    model = ExactGP.fit(X, Y)
    assert (model.noise > 1e-3).all()  # a visibly noisy fit
    new = torch.rand(2, 1, 2, generator=g, dtype=torch.float64)
    believed_y = model.posterior(new).mean  # (P, 1)
    believed = model.condition(new, believed_y, noiseless=True)
    ctx = AcquisitionContext.from_data(believed, torch.cat([X, new], -2), torch.cat([Y, believed_y], -1))
    paths = ThompsonSampling(num_features=64).paths(ctx)
    at_new = paths(new.expand(-1, N_PATHS, -1))  # (P, S)
    sd = float(believed.y_std.max())
    floor_sd = 1e-3 * sd  # sqrt of the noise floor (1e-6, standardised) in Y units
    torch.testing.assert_close(at_new, believed_y.expand(-1, N_PATHS), atol=5 * floor_sd, rtol=0)
    elsewhere = torch.rand(2, 1, 2, generator=g, dtype=torch.float64)
    values = paths(elsewhere.expand(-1, N_PATHS, -1))  # (P, S)
    post = believed.posterior(elsewhere)
    torch.testing.assert_close(values.mean(-1), post.mean.squeeze(-1), atol=0.06 * sd, rtol=0)
    torch.testing.assert_close(values.var(-1), post.variance.squeeze(-1), atol=0.03 * sd**2, rtol=0.12)


@pytest.mark.parametrize("kernel", [Matern52(), RBF()], ids=["matern52", "rbf"])
def test_prior_features_have_the_covariance_of_the_models_kernel(kernel) -> None:
    """Many feature-based prior draws: their empirical covariance is the kernel matrix
    (within 5 standard errors from the number of draws), and not the other kernel's."""
    from types import SimpleNamespace

    S, m = 40_000, 8
    ls, outputscale = torch.tensor([[0.5, 0.3, 1.0]], dtype=torch.float64), 1.3  # P = 1, dim 2 categorical
    model = SimpleNamespace(lengthscale=ls, outputscale=torch.tensor([outputscale], dtype=torch.float64),
                            categorical=(2,))
    points = torch.tensor([[0.1, 0.2, 0.0], [0.6, 0.4, 0.0], [0.3, 0.5, 1.0], [0.9, 0.9, 0.5]], dtype=torch.float64)
    paths = _draw_paths(S, m, 3, 1, 0, 0, points, kernel)
    values = _prior_paths(points[:, None, None, :].expand(-1, 1, S, -1), model, paths)[:, 0]  # (T, S)
    products = values.unsqueeze(1) * values.unsqueeze(0)  # (T, T, S), zero-mean paths
    empirical, se = products.mean(-1), products.std(-1) / S**0.5

    def covariance(k) -> torch.Tensor:
        return outputscale * kernel_matrix(points[None], points[None], ls, (2,), k)[0]  # (T, T)

    assert bool(((empirical - covariance(kernel)).abs() <= 5 * se).all()), (empirical, covariance(kernel))
    other = RBF() if isinstance(kernel, Matern52) else Matern52()
    assert bool(((empirical - covariance(other)).abs() > 5 * se).any())  # the test tells the kernels apart


def test_matern_spectral_scale_is_the_student_t_draw_it_always_was() -> None:
    """Bit for bit the former hard-coded Matérn-5/2 draw: suggestions stay the same."""
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    chi2 = torch.randn(3, 4, 5, generator=g1, dtype=torch.float64).pow(2).sum(-1)
    new = Matern52().spectral_scale((3, 4), generator=g2, dtype=torch.float64, device=torch.device("cpu"))
    assert torch.equal(new, (5 / chi2).sqrt())
    assert torch.equal(RBF().spectral_scale((3, 4), generator=g2, dtype=torch.float64, device="cpu"),
                       torch.ones(3, 4, dtype=torch.float64))


def test_thompson_sampling_runs_with_the_rbf_kernel() -> None:
    import gpbo

    result = gpbo.minimize(
        lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2, {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)},
        8, seed=0, n_workers=1,
        settings={"kernel": "rbf", "acquisition": "thompson", "n_initial": 4, "n_raw": 64, "n_restarts": 3},
    )
    assert all(t.state is gpbo.TrialState.COMPLETE for t in result.trials)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2, 10, 2, generator=g, dtype=torch.float64)
    out = gpbo.suggest(X, -(X - 0.5).pow(2).sum(-1), q=3, settings={"kernel": "rbf", "acquisition": "thompson"})
    assert isinstance(out.model.base_kernel, RBF) and out.candidates.shape == (2, 3, 2)
    assert bool(out.acq_values.isfinite().all())


def test_a_kernel_without_a_spectral_sampler_is_named(make_gp, make_ctx) -> None:
    gp = make_gp(P=1)

    class Plain:
        name = "plain"

        def __call__(self, sq_dist):
            return torch.exp(-0.5 * sq_dist)

        def dsq(self, sq_dist):
            return -0.5 * torch.exp(-0.5 * sq_dist)

    gp.base_kernel = Plain()
    with pytest.raises(InvalidArgumentError, match=r"needs spectral_scale .*SpectralKernel.*TinyGP.base_kernel .* has none"):
        ThompsonSampling()(make_ctx(gp))
