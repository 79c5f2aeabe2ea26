"""Multi-outcome acquisitions: batched equals looped, closed forms, and BoTorch's values on the same posterior."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.objective import GenericMCObjective
from botorch.models.model import Model
from botorch.posteriors import GPyTorchPosterior
from botorch.sampling import SobolQMCNormalSampler
from botorch.sampling.base import MCSampler
from botorch.utils.multi_objective.box_decompositions.non_dominated import FastNondominatedPartitioning
from botorch.utils.multi_objective.box_decompositions.utils import _pad_batch_pareto_frontier
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization
from botorch.utils.probability.utils import log_ndtr
from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal
from linear_operator import to_linear_operator
from torch import Tensor

from gpbo.acquisition import (
    AcquisitionContext,
    Constrained,
    LogAugmentedEI,
    LogEI,
    MultiObjectiveRoundRobin,
    qLogNEHVI,
    qLogNEIConstrained,
    qLogNParEGO,
    resolve,
)
from gpbo.acquisition.analytic import _LogH
from gpbo.acquisition.mo_sampling import SCREEN_SAMPLES
from gpbo.acquisition.monte_carlo import normal_base_samples
from gpbo.acquisition.nehvi import _front_mask_2d, box_bounds
from gpbo.acquisition.protocol import draw_seed, screening
from gpbo.dims import DimSpec
from gpbo.engine import _believe, _fit_outcomes
from gpbo.errors import InvalidArgumentError
from gpbo.models.multi_output import MultiOutputGP, MultiPosterior
from gpbo.outcomes import Outcomes
from gpbo.settings import Settings


def _data(P: int, n: int = 10, d: int = 2, k: int = 0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    a = -(X - 0.25).pow(2).sum(-1)
    b = -(X - 0.75).pow(2).sum(-1) + 0.1 * torch.arange(P, dtype=torch.float64)[:, None]
    c = X.sum(-1) - 1.0  # feasible iff x1 + x2 <= 1
    return X, torch.stack([a, b, c][: 2 + k] if k else [a, b], -1)


def _ctx(X, Y, outcomes, pending=None, seed=0):
    model, Y_w, ref = _fit_outcomes(X, Y, DimSpec.continuous(X.shape[-1]), Settings(outcomes=outcomes), 0, None)
    return AcquisitionContext.from_data(model, X, Y_w, pending=pending, seed=seed, outcomes=outcomes, ref_point=ref)


def _sub(ctx: AcquisitionContext, p: int) -> AcquisitionContext:
    """Problem p of ctx as a P = 1 context (same fitted GPs)."""
    mo, O = ctx.model, ctx.model.n_outcomes
    inner = mo.model
    rows = slice(p * O, (p + 1) * O)
    sliced = dataclasses.replace(inner, **{
        f.name: getattr(inner, f.name)[rows] for f in dataclasses.fields(inner)
        if isinstance(getattr(inner, f.name), torch.Tensor) and getattr(inner, f.name).dim() >= 1
    })
    sl = slice(p, p + 1)
    return dataclasses.replace(
        ctx, model=MultiOutputGP(sliced, O, mo.n_objectives), X=ctx.X[sl], Y=ctx.Y[sl], best_f=ctx.best_f[sl],
        pending=None if ctx.pending is None else ctx.pending[sl],
        ref_point=None if ctx.ref_point is None else ctx.ref_point[sl],
        generator=torch.Generator().manual_seed(0),
    )


CASES = [
    ("nehvi", lambda: qLogNEHVI(num_samples=64), Outcomes(2, 0), 0),
    ("nehvi-constrained", lambda: qLogNEHVI(num_samples=64), Outcomes(2, 1), 1),
    # three objectives (a, b, c): box_bounds' FastNondominatedPartitioning per sample and problem (fewer samples: ~10 ms each)
    ("nehvi-3-objectives", lambda: qLogNEHVI(num_samples=32), Outcomes(3, 0), 1),
    ("parego", lambda: qLogNParEGO(num_samples=64), Outcomes(2, 0), 0),
    ("parego-constrained", lambda: qLogNParEGO(num_samples=64), Outcomes(2, 1), 1),
    ("portfolio-constrained", lambda: MultiObjectiveRoundRobin((qLogNEHVI(num_samples=64), qLogNParEGO(num_samples=64))),
     Outcomes(2, 1), 1),
    ("qlognei-constrained", lambda: qLogNEIConstrained(num_samples=64), Outcomes(1, 1), 1),
    ("logei-constrained", lambda: Constrained(LogEI()), Outcomes(1, 1), 1),
    ("default-constrained", lambda: resolve("auto", Outcomes(1, 1)), Outcomes(1, 1), 1),
]


@pytest.mark.parametrize(("name", "make", "outcomes", "k"), CASES, ids=[c[0] for c in CASES])
def test_batched_equals_looped(name, make, outcomes, k):
    X, Y = _data(3, k=k)
    if outcomes.n_objectives == 1:
        Y = Y[..., [0, 2]]
    acq = make()
    q = 3 if acq.joint else 1
    pending = None if q == 1 else torch.rand(3, 1, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ctx = _ctx(X, Y, outcomes, pending=pending)
    cand = torch.rand(5, 3, q, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    batched = acq(dataclasses.replace(ctx, generator=torch.Generator().manual_seed(0)))(cand)  # (5, 3)
    assert batched.shape == (5, 3) and bool(batched.isfinite().all())
    for p in range(3):
        looped = acq(_sub(ctx, p))(cand[:, p:p + 1])
        torch.testing.assert_close(batched[:, p:p + 1], looped, rtol=1e-8, atol=1e-8)


def test_constrained_logei_is_the_closed_form():
    X, Y = _data(2, k=1)
    Y = Y[..., [0, 2]]
    ctx = _ctx(X, Y, Outcomes(1, 1))
    cand = torch.rand(7, 2, 1, 2, dtype=torch.float64)
    value = Constrained(LogEI())(ctx)(cand)
    post = ctx.model.posterior(cand)
    mu, sd = post.mean[..., 0, :], post.variance[..., 0, :].sqrt()  # (7, 2, O)
    feasible = ctx.Y[..., 1] <= 0
    best = torch.where(feasible, ctx.Y[..., 0], torch.tensor(-torch.inf, dtype=torch.float64)).amax(-1)
    u = (mu[..., 0] - best) / sd[..., 0]
    expected = _LogH.apply(u) + sd[..., 0].log() + log_ndtr(-mu[..., 1] / sd[..., 1])
    assert bool(feasible.any(-1).all())
    torch.testing.assert_close(value, expected)


def test_constrained_augmented_ei_takes_its_incumbent_among_the_feasible_observations():
    X, Y = _data(2, n=12, k=1)
    Y = torch.stack([Y[..., 0], 0.6 - X.sum(-1)], -1)  # the objective's peak (0.25, 0.25) is infeasible
    ctx = _ctx(X, Y, Outcomes(1, 1))
    cand = torch.rand(7, 2, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    value = Constrained(LogAugmentedEI(discount=False))(ctx)(cand)
    objective = ctx.model.outcome(0)
    at_data = objective.posterior(ctx.X.transpose(0, 1).unsqueeze(-2))
    mean_d, sd_d = at_data.mean[..., 0], at_data.variance[..., 0].sqrt()  # (n, P)
    feasible = (ctx.Y[..., 1] <= 0).T  # (n, P)
    pick = torch.where(feasible, mean_d - sd_d, torch.tensor(-torch.inf, dtype=torch.float64)).argmax(0)
    best = mean_d.gather(0, pick[None]).squeeze(0)  # (P,)
    assert bool((mean_d - sd_d).argmax(0).ne(pick).any())  # the best lower bound overall is infeasible somewhere
    post = ctx.model.posterior(cand)
    mu, sd = post.mean[..., 0, :], post.variance[..., 0, :].sqrt()  # (7, 2, O)
    u = (mu[..., 0] - best) / sd[..., 0]
    expected = _LogH.apply(u) + sd[..., 0].log() + log_ndtr(-mu[..., 1] / sd[..., 1])
    torch.testing.assert_close(value, expected)


def test_no_feasible_observation_scores_the_log_probability_of_feasibility():
    X, Y = _data(1, k=1)
    Y = Y[..., [0, 2]].clone()
    Y[..., 1] = Y[..., 1].abs() + 0.1  # nothing feasible
    ctx = _ctx(X, Y, Outcomes(1, 1))
    cand = torch.rand(4, 1, 1, 2, dtype=torch.float64)
    post = ctx.model.posterior(cand)
    expected = log_ndtr(-post.mean[..., 0, 1] / post.variance[..., 0, 1].sqrt())
    torch.testing.assert_close(Constrained(LogEI())(ctx)(cand), expected)


class _BoTorchView(Model):
    """A P = 1 MultiOutputGP as a BoTorch multi-output model with the same posterior."""

    def __init__(self, mo: MultiOutputGP) -> None:
        super().__init__()
        object.__setattr__(self, "_mo", mo)

    @property
    def num_outputs(self) -> int:
        return self._mo.n_outcomes

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    def posterior(self, X, output_indices=None, observation_noise=False, posterior_transform=None, **kwargs):
        post = self._mo.posterior(X.unsqueeze(-3))  # mean (..., 1, q, O), covariance (..., 1, O, q, q)
        mean, cov = post.mean.squeeze(-3).transpose(-1, -2), post.covariance.squeeze(-4)
        mvn = MultivariateNormal(mean, to_linear_operator(cov))  # batch (..., O)
        return GPyTorchPosterior(MultitaskMultivariateNormal.from_batch_mvn(mvn, task_dim=-1))


# Both sides are QMC estimates with different base samples (BoTorch samples the
# new points jointly with the baseline in its own order), and gpbo takes plain
# rather than fat minima (an O(1e-3) change in log space): with 2048 samples
# the log values agree to a few percent; 0.1 in log units is ~10 % in value.
# Deep in the tail (log value < -6, EI below ~0.25 % of its scale) the
# estimates rest on a handful of samples and differ by more: there both are
# only required to be in the tail.
_LOG_TOL, _TAIL = 0.1, -6.0


def _assert_close_log(ours, theirs):
    body = theirs > _TAIL
    torch.testing.assert_close(ours[body], theirs[body], rtol=0, atol=_LOG_TOL)
    assert bool((ours[~body] < _TAIL + 1).all())


def test_qlognehvi_matches_botorch_on_the_same_posterior():
    X, Y = _data(1, n=8)
    ctx = _ctx(X, Y, Outcomes(2, 0))
    cand = torch.rand(6, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)  # (b, q, d)
    ours = qLogNEHVI(num_samples=2048)(ctx)(cand.unsqueeze(-3)).squeeze(-1)
    theirs = qLogNoisyExpectedHypervolumeImprovement(
        _BoTorchView(ctx.model), ref_point=ctx.ref_point[0], X_baseline=X[0],
        sampler=SobolQMCNormalSampler(torch.Size([2048]), seed=0), prune_baseline=False, cache_root=False,
    )(cand)
    assert bool(ours.isfinite().all())
    _assert_close_log(ours, theirs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_objective_boxes_equal_botorchs_batched_partitioning(seed):
    """`box_bounds` pads its fronts itself; the boxes are BoTorch's, the same cells in the same order."""
    g = torch.Generator().manual_seed(seed)
    B, n = 40, 9
    Y = torch.randn(B, n, 2, generator=g, dtype=torch.float64)
    Y[::7] = -Y[::7].abs()  # fronts left empty: nothing above the origin
    Y[1, 3] = Y[1, 5]  # duplicated points, on and off the front
    Y[2, :4] = Y[2, 4]
    feasible = torch.rand(B, n, generator=g) < 0.8
    feasible[3] = False  # nothing feasible
    lower, upper = box_bounds(Y, feasible)
    ref = torch.zeros(2, dtype=torch.float64)
    padded = _pad_batch_pareto_frontier(Y=Y, ref_point=ref.expand(B, 2), feasibility_mask=feasible)
    expected = FastNondominatedPartitioning(ref_point=ref, Y=padded).get_hypercell_bounds()
    torch.testing.assert_close(lower, expected[0], rtol=0, atol=0)
    torch.testing.assert_close(upper, expected[1], rtol=0, atol=0)


def test_two_objective_front_mask_is_botorchs_deduplicated_one():
    g = torch.Generator().manual_seed(4)
    Y = torch.randint(0, 4, (200, 12, 2), generator=g).to(torch.float64)  # many ties and duplicates
    assert torch.equal(_front_mask_2d(Y), is_non_dominated(Y, deduplicate=True))


def test_constrained_qlognei_matches_botorch_on_the_same_posterior():
    X, Y = _data(1, n=8, k=1)
    Y = Y[..., [0, 2]]
    ctx = _ctx(X, Y, Outcomes(1, 1))
    cand = torch.rand(6, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = qLogNEIConstrained(num_samples=2048)(ctx)(cand.unsqueeze(-3)).squeeze(-1)
    theirs = qLogNoisyExpectedImprovement(
        _BoTorchView(ctx.model), X_baseline=X[0], sampler=SobolQMCNormalSampler(torch.Size([2048]), seed=0),
        objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]), constraints=[lambda Z: Z[..., 1]],
        prune_baseline=False, cache_root=False,
    )(cand)
    _assert_close_log(ours, theirs)


def test_qlogparego_matches_botorch_qlognei_of_the_same_scalarisation():
    X, Y = _data(1, n=8)
    ctx = _ctx(X, Y, Outcomes(2, 0))
    acq = qLogNParEGO(num_samples=2048, weights=(0.3, 0.7))
    scalar = acq.scalarise(ctx)
    cand = torch.rand(6, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = acq(ctx)(cand.unsqueeze(-3)).squeeze(-1)
    theirs = qLogNoisyExpectedImprovement(
        _BoTorchView(ctx.model), X_baseline=X[0], sampler=SobolQMCNormalSampler(torch.Size([2048]), seed=0),
        objective=GenericMCObjective(lambda Z, X=None: scalar(Z.unsqueeze(-3)).squeeze(-2)), prune_baseline=False,
        cache_root=False,
    )(cand)
    _assert_close_log(ours, theirs)


def _botorch_qlognehvi(ctx: AcquisitionContext, cand: Tensor, sampler: MCSampler) -> Tensor:
    """BoTorch's qLogNEHVI of a P = 1 context at cand (b, q, d), as gpbo's reads the context.

    Objectives the first m outcomes, constraints the rest (feasible iff <= 0),
    the observed points as the baseline (unpruned), ``ctx.pending`` as ``X_pending``.
    """
    m, O = ctx.outcomes.n_objectives, ctx.outcomes.n_outcomes
    constraints = [lambda Z, j=j: Z[..., j] for j in range(m, O)]
    return qLogNoisyExpectedHypervolumeImprovement(
        _BoTorchView(ctx.model), ref_point=ctx.ref_point[0], X_baseline=ctx.X[0], sampler=sampler,
        objective=IdentityMCMultiOutputObjective(outcomes=list(range(m))), constraints=constraints or None,
        X_pending=None if ctx.pending is None else ctx.pending[0], prune_baseline=False, cache_root=False,
    )(cand)


def _constrained_data(threshold: float) -> tuple[Tensor, Tensor]:
    """One problem, 8 points: objectives a, b of `_data` and the constraint x1 + x2 <= threshold."""
    X, Y = _data(1, n=8, k=1)
    return X, torch.cat([Y[..., :2], (X.sum(-1) - threshold).unsqueeze(-1)], -1)


CONSTRAINED_CASES = [("some-feasible", 0.9, 4), ("none-feasible", 0.5, 3)]  # (id, threshold, seed of the candidates)


@pytest.mark.parametrize(("name", "threshold", "seed"), CONSTRAINED_CASES, ids=[c[0] for c in CONSTRAINED_CASES])
def test_constrained_qlognehvi_matches_botorch_on_the_same_posterior(name, threshold, seed):
    """Two objectives and one constraint: gpbo's qLogNEHVI and BoTorch's with ``constraints=``, 2048 samples each.

    The constraint cuts across the objectives' trade-off: without it BoTorch's
    values move by more than a nat for some candidates, so a side that
    ignored it would fail. With no feasible observation the fronts are empty.
    """
    X, Y = _constrained_data(threshold)
    ctx = _ctx(X, Y, Outcomes(2, 1))
    assert int(ctx.feasible.sum()) == (3 if name == "some-feasible" else 0)
    cand = torch.rand(6, 2, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # (b, q, d)
    ours = qLogNEHVI(num_samples=2048)(ctx)(cand.unsqueeze(-3)).squeeze(-1)
    theirs = _botorch_qlognehvi(ctx, cand, SobolQMCNormalSampler(torch.Size([2048]), seed=0))
    assert bool(ours.isfinite().all())
    _assert_close_log(ours, theirs)


def test_qlognehvi_with_pending_points_matches_botorch_on_the_same_posterior():
    """gpbo's qLogNEHVI with ``ctx.pending`` and BoTorch's with ``X_pending``, 2048 samples each.

    The pending points lower some candidates' values by more than a nat
    (checked against gpbo without them), so a side that ignored them would fail.
    """
    X, Y = _data(1, n=8)
    pending = torch.rand(1, 2, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    ctx = _ctx(X, Y, Outcomes(2, 0), pending=pending)
    cand = torch.rand(6, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ours = qLogNEHVI(num_samples=2048)(ctx)(cand.unsqueeze(-3)).squeeze(-1)
    theirs = _botorch_qlognehvi(ctx, cand, SobolQMCNormalSampler(torch.Size([2048]), seed=0))
    ignoring = qLogNEHVI(num_samples=2048)(dataclasses.replace(ctx, pending=None))(cand.unsqueeze(-3)).squeeze(-1)
    assert bool((ours < ignoring - 1).any())  # the pending points matter here
    _assert_close_log(ours, theirs)


class _GivenBaseSamples(MCSampler):
    """A BoTorch sampler that uses given standard normals (S, K, O): rows :k for a posterior over k points."""

    def __init__(self, base: Tensor) -> None:
        super().__init__(torch.Size([base.shape[0]]))
        self.base = base

    def forward(self, posterior) -> Tensor:
        *batch, k, O = posterior.mean.shape
        S = self.base.shape[0]
        base = self.base[:, :k].reshape(S, *[1] * len(batch), k, O).expand(S, *batch, k, O)
        return posterior.rsample_from_base_samples(self.sample_shape, base.contiguous())

    def _update_base_samples(self, posterior, base_sampler) -> None:
        """The baseline rows are already the first rows of ``base``."""


def _qlognehvi_base_samples(ctx: AcquisitionContext, num_samples: int, q: int) -> Tensor:
    """(S, nb + q, O): the normals gpbo's qLogNEHVI on ctx draws for its baseline and q new points.

    `MultiOutputSampler`: one scrambled-Sobol draw of dimension O (nb + q),
    its seed the first draw of ``ctx.generator``, laid out (outcome, point).
    The baseline is the observed points (n <= max_baseline: none pruned),
    then the pending ones.
    """
    generator = torch.Generator(device=ctx.X.device)
    generator.set_state(ctx.generator.get_state())
    nb = ctx.X.shape[-2] + (0 if ctx.pending is None else ctx.pending.shape[-2])
    O = ctx.outcomes.n_outcomes
    z = normal_base_samples(num_samples, O * (nb + q), draw_seed(generator), dtype=ctx.X.dtype, device=ctx.X.device)
    return z.view(num_samples, O, nb + q).transpose(-1, -2)


BASE_SAMPLE_CASES = [("2-objectives", Outcomes(2, 0), False), ("constrained", Outcomes(2, 1), False),
                     ("pending", Outcomes(2, 1), True), ("3-objectives", Outcomes(3, 0), False)]


@pytest.mark.parametrize(("name", "outcomes", "pending"), BASE_SAMPLE_CASES, ids=[c[0] for c in BASE_SAMPLE_CASES])
def test_qlognehvi_equals_botorch_on_the_same_base_samples(name, outcomes, pending):
    """gpbo's qLogNEHVI and BoTorch's, BoTorch fed gpbo's base samples: the same samples, fronts and boxes.

    With common samples the Monte-Carlo error cancels and 64 samples do
    (three objectives partition each sample's front, ~10 ms each, so 2048
    independent samples would take ~40 s); what remains is gpbo's plain
    rather than fat minima, O(tau_max) = 1e-3 in log units. Outcomes: a, b,
    then x1 + x2 - 0.9 as a constraint or as the third objective.
    """
    X, Y = _constrained_data(0.9)
    Y = Y[..., :outcomes.n_outcomes]
    extra = torch.rand(1, 2, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64) if pending else None
    ctx = _ctx(X, Y, outcomes, pending=extra)
    q, S = 2, 64
    cand = torch.rand(6, q, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    theirs = _botorch_qlognehvi(ctx, cand, _GivenBaseSamples(_qlognehvi_base_samples(ctx, S, q)))
    ours = qLogNEHVI(num_samples=S)(ctx)(cand.unsqueeze(-3)).squeeze(-1)
    assert bool(ours.isfinite().all()) and float(ours.std()) > 0.5  # varied values, not all in the tail
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3)


PENDING_CASES = [
    ("nehvi", lambda: qLogNEHVI(num_samples=256), Outcomes(2, 0), [0, 1]),
    ("nehvi-constrained", lambda: qLogNEHVI(num_samples=256), Outcomes(2, 1), [0, 1, 2]),
    ("qlognei-constrained", lambda: qLogNEIConstrained(num_samples=256), Outcomes(1, 1), [0, 2]),
    ("logei-constrained", lambda: Constrained(LogEI()), Outcomes(1, 1), [0, 2]),
]


def _with_pending(ctx: AcquisitionContext, pending: Tensor, joint: bool) -> AcquisitionContext:
    """ctx with pending points (P, k, d) as the engine hands them over.

    A joint acquisition gets them as ``ctx.pending``; a one-point one gets a
    model that believes them at their posterior mean (`gpbo.engine._believe`,
    the kriging believer's step).
    """
    if joint:
        return dataclasses.replace(ctx, pending=pending)
    model, X, Y = _believe(ctx.model, ctx.X, ctx.Y, pending)
    return AcquisitionContext.from_data(model, X, Y, outcomes=ctx.outcomes, ref_point=ctx.ref_point)


@pytest.mark.parametrize(("name", "make", "outcomes", "columns"), PENDING_CASES, ids=[c[0] for c in PENDING_CASES])
def test_a_candidate_on_a_pending_point_scores_lower_than_without_it(name, make, outcomes, columns):
    """The best of 256 random points, made pending, then scored as a candidate: at least 3 nats lower than before.

    Its outcomes are then (nearly) known: it adds (nearly) nothing to the
    pending point's own improvement (without pending points the values are
    within a few nats of 0, with them below -7).
    """
    X, Y = _data(2, k=1)
    ctx = _ctx(X, Y[..., columns], outcomes)
    acq = make()
    grid = torch.rand(256, 2, 1, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    best = acq(ctx)(grid).argmax(0)  # (P,)
    pending = grid[best, torch.arange(2)]  # (P, 1, d)
    fresh = lambda c: dataclasses.replace(c, generator=torch.Generator().manual_seed(0))  # noqa: E731
    without = acq(fresh(ctx))(pending.unsqueeze(0))  # (1, P)
    with_it = acq(fresh(_with_pending(ctx, pending, acq.joint)))(pending.unsqueeze(0))
    assert bool(without.isfinite().all()) and bool(with_it.isfinite().all())
    assert bool((with_it < without - 3).all()), (without, with_it)


@dataclasses.dataclass(frozen=True)
class _KnownMean:
    """A model whose posterior mean at the observed points is given: (P, n, O), zero covariance."""

    mean: Tensor

    def posterior(self, X: Tensor) -> MultiPosterior:
        assert X.shape[:-1] == self.mean.shape[:-1]
        P, n, O = self.mean.shape
        return MultiPosterior(self.mean, torch.zeros(P, O, n, n, dtype=self.mean.dtype))

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> _KnownMean:
        raise NotImplementedError


def test_parego_scalarisation_is_knowles_augmented_chebyshev_on_the_normalised_objectives():
    """ParEGO's scalarisation of explicit values against values worked out by hand (and BoTorch's, to 1e-12).

    Knowles (2006): ``max_j w_j f_j + rho sum_j w_j f_j`` on objectives
    normalised to [0, 1], minimised; the module docstring's maximisation form
    takes ``f_j = 1 - u_j``, ``u_j = (y_j - lo_j) / (hi_j - lo_j)`` with lo, hi
    the range of the posterior mean at the observed points per problem, and
    negates. Weights (1, 3) are normalised to (1/4, 3/4), rho = alpha = 0.05.
    Problem 0: mean range (0, 0)..(2, 10); problem 1: (-1, -1)..(1, 1).
    """
    mean = torch.tensor([[[0.0, 10.0], [2.0, 0.0], [1.0, 5.0]],
                         [[-1.0, 1.0], [1.0, -1.0], [0.0, 0.0]]], dtype=torch.float64)  # (P, n, m)
    X = torch.zeros(2, 3, 2, dtype=torch.float64)  # unused: the mean at the observed points is given
    ctx = AcquisitionContext.from_data(_KnownMean(mean), X, mean, outcomes=Outcomes(2, 0))
    scalar = qLogNParEGO(weights=(1.0, 3.0), alpha=0.05).scalarise(ctx)
    Y = torch.tensor([[[2.0, 10.0], [0.0, 0.0], [1.0, 5.0], [3.0, -5.0]],
                      [[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [3.0, 0.0]]], dtype=torch.float64)  # (P, r, m)
    # problem 0, f = 1 - u:  (0, 0) -> 0;  (1, 1) -> w f = (.25, .75): .75 + .05 * 1;  (.5, .5): .375 + .05 * .5;
    #   (-.5, 1.5) -> w f = (-.125, 1.125): 1.125 + .05 * 1
    # problem 1:  (0, 0) -> 0;  (1, 0): .25 + .05 * .25;  (0, 1): .75 + .05 * .75;
    #   (-1, .5) -> w f = (-.25, .375): .375 + .05 * .125
    expected = -torch.tensor([[0.0, 0.8, 0.4, 1.175], [0.0, 0.2625, 0.7875, 0.38125]], dtype=torch.float64)
    torch.testing.assert_close(scalar(Y), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(scalar(Y.expand(3, 2, 4, 2)), expected.expand(3, 2, 4))  # leading sample dims
    for p in range(2):  # and BoTorch's scalarisation, normalised by the same mean, agrees
        botorch_scalar = get_chebyshev_scalarization(torch.tensor([0.25, 0.75], dtype=torch.float64), mean[p], alpha=0.05)
        torch.testing.assert_close(botorch_scalar(Y[p]), expected[p], rtol=0, atol=1e-12)


@dataclasses.dataclass(frozen=True)
class _Plain:
    """A surrogate with only posterior and condition: no CrossPosterior, so the generic path."""

    model: object

    def posterior(self, X):
        return self.model.posterior(X)

    def condition(self, X, Y, *, noiseless=False):
        return _Plain(self.model.condition(X, Y, noiseless=noiseless))


FAST_CASES = [
    ("nehvi", qLogNEHVI, Outcomes(2, 0), 0),
    ("nehvi-constrained", qLogNEHVI, Outcomes(2, 1), 1),
    ("parego", qLogNParEGO, Outcomes(2, 0), 0),
    ("parego-constrained", qLogNParEGO, Outcomes(2, 1), 1),
    ("qlognei-constrained", qLogNEIConstrained, Outcomes(1, 1), 1),
]


@pytest.mark.parametrize("pending", [False, True], ids=["no-pending", "pending"])
@pytest.mark.parametrize(("name", "make", "outcomes", "k"), FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_cross_posterior_equals_the_posterior_of_the_concatenation(name, make, outcomes, k, pending):
    X, Y = _data(2, k=k)
    if outcomes.n_objectives == 1:
        Y = Y[..., [0, 2]]
    extra = torch.rand(2, 2, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) if pending else None
    ctx = _ctx(X, Y, outcomes, pending=extra)
    generic = MultiOutputGP(_Plain(ctx.model.model), ctx.model.n_outcomes, ctx.model.n_objectives)
    values, grads = [], []
    for model in (ctx.model, generic):
        fn = make(num_samples=32)(dataclasses.replace(ctx, model=model, generator=torch.Generator().manual_seed(0)))
        for q in (1, 3):
            cand = torch.rand(4, 2, q, 2, generator=torch.Generator().manual_seed(q), dtype=torch.float64)
            cand.requires_grad_()
            value = fn(cand)  # (4, 2)
            values.append(value.detach())
            grads.append(torch.autograd.grad(value.sum(), cand)[0])
    for fast, slow in ((values[:2], values[2:]), (grads[:2], grads[2:])):
        for a, b in zip(fast, slow, strict=True):
            assert bool(a.isfinite().all())
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_qlognehvi_on_an_svgp_takes_the_generic_path():
    X, Y = _data(2, n=12)
    outcomes = Outcomes(2, 0)
    model, Y_w, ref = _fit_outcomes(X, Y, DimSpec.continuous(2), Settings(outcomes=outcomes, model="svgp"), 0, None)
    assert not hasattr(model.model, "cross_posterior")
    ctx = AcquisitionContext.from_data(model, X, Y_w, seed=0, outcomes=outcomes, ref_point=ref)
    cand = torch.rand(3, 2, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    value = qLogNEHVI(num_samples=32)(ctx)(cand)
    assert value.shape == (3, 2) and bool(value.isfinite().all())


SCREENED = [c for c in CASES if not c[0].startswith(("logei", "portfolio", "default"))]  # one-point or portfolio: no screen


@pytest.mark.parametrize(("name", "make", "outcomes", "k"), SCREENED, ids=[c[0] for c in SCREENED])
def test_the_screen_is_the_acquisition_on_its_first_base_samples(name, make, outcomes, k):
    X, Y = _data(2, k=k)
    if outcomes.n_objectives == 1:
        Y = Y[..., [0, 2]]
    ctx = _ctx(X, Y, outcomes)
    cand = torch.rand(80, 2, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # > 1 slice
    fresh = lambda: dataclasses.replace(ctx, generator=torch.Generator().manual_seed(0))  # noqa: E731
    fn = make()(fresh())
    small = type(make())(num_samples=SCREEN_SAMPLES)  # the same class on S = SCREEN_SAMPLES
    torch.testing.assert_close(screening(fn)(cand), small(fresh())(cand))
    assert screening(fn) is not fn


def test_the_portfolio_takes_turns_by_observed_plus_pending_points():
    X, Y = _data(2)
    a, b = qLogNEHVI(num_samples=16), qLogNParEGO(num_samples=16)
    mix = MultiObjectiveRoundRobin((a, b))
    ctx = _ctx(X, Y, Outcomes(2, 0))  # n = 10
    pending = torch.rand(2, 1, 2, dtype=torch.float64)
    assert mix.member_for(ctx) is a and mix.member_for(dataclasses.replace(ctx, pending=pending)) is b
    assert MultiObjectiveRoundRobin().member_for(ctx).__class__ is qLogNEHVI  # the default members
    cand = torch.rand(3, 2, 1, 2, dtype=torch.float64)
    fresh = lambda c: dataclasses.replace(c, generator=torch.Generator().manual_seed(0))  # noqa: E731
    torch.testing.assert_close(mix(fresh(ctx))(cand), a(fresh(ctx))(cand))


@pytest.mark.parametrize("members", [(), (LogEI(),), (qLogNEHVI(), "qlog_parego")])
def test_the_portfolio_takes_only_joint_multi_objective_members(members):
    with pytest.raises(InvalidArgumentError, match="MultiObjectiveRoundRobin"):
        MultiObjectiveRoundRobin(members)


def test_the_portfolio_serves_several_objectives_by_name_only():
    from gpbo.acquisition import resolve

    assert isinstance(resolve("qlog_nehvi_parego", Outcomes(2, 1)), MultiObjectiveRoundRobin)
    with pytest.raises(InvalidArgumentError, match="needs >= 2 objectives"):
        resolve("qlog_nehvi_parego", Outcomes(1, 1))
