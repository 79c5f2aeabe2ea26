"""SCBO: scalable constrained Bayesian optimisation, the multi-outcome suite's method ``scbo``.

Eriksson & Poloczek, "Scalable Constrained Bayesian Optimization", AISTATS
2021 (arXiv:2002.08526), written from the paper's description with BoTorch /
GPyTorch library pieces; for one objective (maximised) and C >= 0 constraints
(feasible iff <= 0), the suite's convention (:mod:`benchmarks.mo_methods`).

- Models: one ``botorch.models.SingleTaskGP`` per outcome, a Matern-5/2 ARD
  kernel (``gpytorch.kernels.MaternKernel(nu=2.5)`` in a ``ScaleKernel``,
  lengthscales in [0.005, 4], noise in [1e-8, 1e-3] as in TuRBO), fitted from
  scratch each batch with ``botorch.fit.fit_gpytorch_mll``. Outputs: the
  paper's transformations (``output_transforms=True``): a Gaussian copula on
  the objective (ranks -> normal quantiles) and ``botorch``'s ``Bilog``
  outcome transform on the constraints (sign-preserving, so feasibility is
  unchanged), each followed by ``Standardize``; ``output_transforms=False``
  gives ``Standardize`` alone.
- Trust region (:class:`TrustRegion`): a hyper-rectangle in the unit cube,
  centred at the best feasible point, or at the point of least total
  violation ``sum_j max(c_j, 0)`` while none is feasible; side ``L`` (init 0.8,
  min 0.5^7, max 1.6) times the objective GP's lengthscales normalised to
  geometric mean 1 (TuRBO's shape). A batch is a success if it improves the
  best feasible value (by more than 1e-3 |best|), gives the first feasible
  point, or (none feasible yet) lowers the least total violation. After
  ``success_tolerance`` (10) successes in a row L doubles, after
  ``failure_tolerance = ceil(max(4 / q, d / q))`` failures in a row it halves.
  When L < L_min the run restarts: a fresh trust region fitted only on the
  points of a fresh scrambled-Sobol design (TuRBO-1's restart).
- Candidates: ``min(5000, max(2000, 200 d))`` points in the trust region;
  Sobol points (``torch.quasirandom.SobolEngine``) replace the centre's
  coordinates with probability ``min(20 / d, 1)`` per coordinate (at least one
  per candidate), as in TuRBO.
- Batch of q: constrained Thompson sampling,
  ``botorch.generation.sampling.ConstrainedMaxPosteriorSampling`` (without
  replacement): q joint posterior samples of the objective and the constraints
  over all candidates; each sample picks its best objective among the
  candidates it calls feasible, or, where it calls none feasible, the least
  total violation. Without constraints, ``MaxPosteriorSampling``.

The first ``n_init = 2 (d + 1)`` points are the suite's scrambled-Sobol design
(:func:`benchmarks.methods.initial_design`, the points BoTorch and gpbo get);
a restart's design is another scrambled-Sobol sequence (seeded by the run's
seed and the restart's number), asked in batches like any other. Failed
(NaN) evaluations are imputed as in :func:`benchmarks.mo_methods.impute`.
Everything is a function of (seed, history): ``tell`` without ``ask``
(a resumed sweep) replays the same batches and reaches the same state.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from benchmarks.methods import Method
from benchmarks.mo_problems import MOProblem

__all__ = ["SCBO", "TrustRegion", "total_violation"]


def total_violation(C: Tensor) -> Tensor:
    """``C (..., n, C)`` constraint values -> ``(..., n)`` total violation ``sum_j max(c_j, 0)`` (0 = feasible)."""
    return C.clamp(min=0).sum(-1)


@dataclass
class TrustRegion:
    """The trust region's size and counters (SCBO Sec. 3, TuRBO's rules).

    ``best_value`` is the best feasible objective (maximised; -inf while none is
    feasible), ``best_violation`` the least total violation so far (0 once a
    point is feasible).
    """

    dim: int
    q: int
    length: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    success_tolerance: int = 10
    failure_tolerance: int = field(init=False)
    success_counter: int = 0
    failure_counter: int = 0
    best_value: float = -math.inf
    best_violation: float = math.inf

    def __post_init__(self):
        self.failure_tolerance = math.ceil(max(4.0 / self.q, self.dim / self.q))

    @property
    def restart_triggered(self) -> bool:
        return self.length < self.length_min

    def improves(self, f: Tensor, C: Tensor) -> bool:
        """Whether a batch ``f (k,)`` objectives, ``C (k, C)`` constraints improves on the best so far."""
        viol = total_violation(C)  # (k,)
        ok = viol <= 0
        if ok.any():
            best = float(f[ok].max())
            return self.best_violation > 0 or best > self.best_value + 1e-3 * abs(self.best_value)
        return self.best_violation > 0 and float(viol.min()) < self.best_violation

    def observe(self, f: Tensor, C: Tensor) -> None:
        """Takes in points without counting a success or failure (the design)."""
        viol = total_violation(C)
        self.best_violation = min(self.best_violation, float(viol.min()))
        if (viol <= 0).any():
            self.best_value = max(self.best_value, float(f[viol <= 0].max()))

    def update(self, f: Tensor, C: Tensor) -> None:
        """One batch: success / failure counters, doubling / halving of ``length``, the best so far."""
        if self.improves(f, C):
            self.success_counter, self.failure_counter = self.success_counter + 1, 0
        else:
            self.success_counter, self.failure_counter = 0, self.failure_counter + 1
        if self.success_counter == self.success_tolerance:
            self.length, self.success_counter = min(2.0 * self.length, self.length_max), 0
        elif self.failure_counter == self.failure_tolerance:
            self.length, self.failure_counter = self.length / 2.0, 0
        self.observe(f, C)


def _copula(y: Tensor) -> Tensor:
    """``(n, 1)`` -> normal quantiles of the (average) ranks, ``Phi^-1(rank / (n + 1))``: a Gaussian copula."""
    from scipy.stats import rankdata

    u = torch.as_tensor(rankdata(y[:, 0].numpy()) / (len(y) + 1), dtype=y.dtype)
    return torch.special.ndtri(u).unsqueeze(-1)


def _split(rows: list[list[float]]) -> tuple[Tensor, Tensor]:
    """Outcome rows -> ``f (n,)`` objective, ``C (n, C)`` constraints; a failure (any NaN) is ``f = -inf``,
    ``C = +inf``: never feasible, never the best."""
    Y = torch.tensor(rows, dtype=torch.float64).reshape(len(rows), -1)  # (n, 1 + C)
    bad = Y.isnan().any(-1)
    return Y[:, 0].masked_fill(bad, -math.inf), Y[:, 1:].masked_fill(bad.unsqueeze(-1), math.inf)


class SCBO(Method):
    """SCBO on the unit-cube encoding of a single-objective problem (see the module docstring).

    Data: ``X (n, d)`` in [0, 1]^d; ``Y (n, 1 + C)`` outcomes (objective
    maximised, then constraints, NaN rows = failures). Only the points since
    the last restart (``X[start:]``) train the models and place the region.
    """

    def __init__(self, problem: MOProblem, seed: int, n_init: int, q: int, *, output_transforms: bool = True):
        if problem.n_objectives != 1:
            raise ValueError(f"scbo is for problems with one objective; {problem.name!r} has "
                             f"{problem.n_objectives} objectives")
        self.problem, self.space, self.seed, self.q = problem, problem.space(), seed, q
        self.dim, self.n_init = self.space.dim, max(1, n_init)
        self.output_transforms = output_transforms
        self.X: list[list[float]] = []
        self.Y: list[list[float]] = []
        self.start = 0  # first point of the current trust region's run
        self.restarts = 0
        self.state: TrustRegion | None = None  # None during a (re)start's design
        self.asked = 0  # points handed out by the last ask, not yet told

    # ---- ask ---------------------------------------------------------------------------------------
    def ask(self, k):
        self.asked = k
        if self.state is None:
            return self.space.decode(self._design(k))
        return self.space.decode(self._suggest(k))

    def _design(self, k: int) -> Tensor:
        """The next k points of this run's scrambled-Sobol design, ``(k, d)``; restart 0 is the suite's initial design."""
        seed = self.seed if self.restarts == 0 else self.seed * 1000003 + self.restarts
        done = len(self.X) - self.start
        return torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed).draw(done + k, dtype=torch.float64)[done:]

    def _data(self) -> tuple[Tensor, Tensor]:
        """``X (n, d)``, ``Y (n, 1 + C)`` of the current run, failures imputed."""
        from benchmarks.mo_methods import impute

        X = torch.tensor(self.X[self.start:], dtype=torch.float64)
        Y = torch.tensor(impute(self.problem, self.Y[self.start:]), dtype=torch.float64)
        return X, Y

    def _gp(self, X: Tensor, y: Tensor, constraint: bool):
        """A fitted ``SingleTaskGP`` on ``X (n, d)``, ``y (n, 1)``."""
        from botorch.exceptions.errors import ModelFittingError
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Bilog, ChainedOutcomeTransform, Standardize
        from gpytorch.constraints import Interval
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.likelihoods import GaussianLikelihood
        from gpytorch.mlls import ExactMarginalLogLikelihood

        if self.output_transforms and constraint:
            transform = ChainedOutcomeTransform(bilog=Bilog(), standardize=Standardize(m=1))
        else:
            transform = Standardize(m=1)
            if self.output_transforms:
                y = _copula(y)
        covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=X.shape[-1], lengthscale_constraint=Interval(0.005, 4.0)))
        model = SingleTaskGP(X, y, covar_module=covar, likelihood=GaussianLikelihood(noise_constraint=Interval(1e-8, 1e-3)),
                             outcome_transform=transform)
        try:
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        except ModelFittingError:  # keep the initial hyperparameters
            pass
        return model

    def _suggest(self, k: int) -> Tensor:
        """k candidates ``(k, d)`` in [0, 1]^d by constrained Thompson sampling in the trust region."""
        import gpytorch
        from botorch.generation.sampling import ConstrainedMaxPosteriorSampling, MaxPosteriorSampling
        from botorch.models import ModelListGP

        torch.manual_seed(self.seed * 100003 + len(self.Y))
        X, Y = self._data()  # (n, d), (n, 1 + C)
        d = self.dim
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = [self._gp(X, Y[:, j:j + 1], constraint=j > 0) for j in range(Y.shape[1])]
        # the centre: best feasible, else least total violation (failures never; all failed: the first point)
        f, C = _split(self.Y[self.start:])
        viol = total_violation(C)  # (n,)
        i = int(torch.where(viol <= 0, f, -math.inf).argmax()) if bool((viol <= 0).any()) else int(viol.argmin())
        centre = X[i]  # (d,)
        ls = models[0].covar_module.base_kernel.lengthscale.detach().reshape(d)
        w = ls / ls.mean()
        w = w / w.prod().pow(1.0 / d)  # geometric mean 1
        half = w * self.state.length / 2.0
        lo, hi = (centre - half).clamp(0, 1), (centre + half).clamp(0, 1)
        n_cand = min(5000, max(2000, 200 * d))
        sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=int(torch.randint(2**31 - 1, (1,))))
        pert = lo + (hi - lo) * sobol.draw(n_cand, dtype=torch.float64)  # (n_cand, d)
        mask = torch.rand(n_cand, d, dtype=torch.float64) <= min(20.0 / d, 1.0)
        none = ~mask.any(-1)
        mask[none, torch.randint(d, (int(none.sum()),))] = True
        cand = torch.where(mask, pert, centre.expand(n_cand, d))  # (n_cand, d)
        with torch.no_grad(), gpytorch.settings.max_cholesky_size(float("inf")), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(models) > 1:
                ts = ConstrainedMaxPosteriorSampling(models[0], ModelListGP(*models[1:]), replacement=False)
            else:
                ts = MaxPosteriorSampling(models[0], replacement=False)
            out = ts(cand, num_samples=k)  # (k, d)
        return out.detach().clamp(0, 1)

    # ---- tell --------------------------------------------------------------------------------------
    def tell(self, params, outcomes):
        X = self.space.encode(params).reshape(len(params), self.dim).tolist()
        Y = [list(y) for y in outcomes]
        if self.asked == len(params):
            sizes = [len(params)]
        else:  # replay: the sweep's batches, the design first in one, then q at a time
            sizes, n, left = [], len(self.X), len(params)
            while left:
                sizes.append(min(left, self.n_init - n if n < self.n_init else self.q))
                n, left = n + sizes[-1], left - sizes[-1]
        self.asked = 0
        for s in sizes:
            self._batch(X[:s], Y[:s])
            X, Y = X[s:], Y[s:]

    def _batch(self, X: list[list[float]], Y: list[list[float]]) -> None:
        """One told batch: the design's points, or a trust-region step (and a restart if it has shrunk too far)."""
        self.X += X
        self.Y += Y
        if self.state is None:
            if len(self.X) - self.start >= self.n_init:  # the design is complete: a fresh region
                self.state = TrustRegion(self.dim, self.q)
                self.state.observe(*_split(self.Y[self.start:]))
            return
        self.state.update(*_split(Y))
        if self.state.restart_triggered:
            self.state, self.start, self.restarts = None, len(self.X), self.restarts + 1
