"""Engine ablations: the sweep with one internal of gpbo's engine swapped out.

    python -m benchmarks.ablations VARIANT [sweep options]   # e.g.
    python -m benchmarks.ablations rbf --problems synthetic --methods gpbo --seeds 16 --out DIR
    python -m benchmarks.ablations plugin+freeze [sweep options]           # variants combine with "+"
    python -m benchmarks.ablations merge OUT DIR:METHOD=LABEL ...          # then benchmarks.report OUT

``merge`` copies the METHOD lines of each DIR/results.jsonl(.gz) into
OUT/results.jsonl under the method name LABEL, so variants and baselines go
into one report (``--methods`` lists the labels).

Each variant patches one piece of gpbo for this process only and then runs
:func:`benchmarks.sweep.main` unchanged, so the results file, resuming and
the report are the sweep's own. The variants answer "why is gpbo behind
BoTorch's loop on StyblinskiTang-8?" (benchmarks/RESULTS.md, "Engine
ablations"); none is an engine option, because none was better.

Variants:

- ``rbf``: squared-exponential kernel instead of Matérn-5/2 (BoTorch's
  ``SingleTaskGP`` default since 0.12), same priors.
- ``plugin``: LogEI's incumbent is the best posterior mean at the observed
  points instead of the best noisy observation.
- ``noanchor``: no acquisition restarts next to the three best observations.
- ``meananchor``: those restarts next to the three observed points with the
  best posterior mean instead (the incumbent stays the best observation).
- ``nowarm``: the GP fit starts from the prior modes at every iteration.
- ``noprecond``: no lengthscale preconditioning of the acquisition ascent.
- ``botorch_fit``: hyperparameters from BoTorch's ``fit_gpytorch_mll`` on a
  ``SingleTaskGP`` with gpbo's Matérn kernel and priors, one problem at a
  time (slow: ~0.3 s per problem and iteration).
- ``averagemean``: the GP's constant prior mean is the average observation
  (gpbo's default until 2026-11-28, and BoTorch's ``Standardize``) instead
  of the worst one (see :mod:`gpbo.models.exact`). It was measured, as
  ``worstmean`` patching the other way, before the worst observation
  became the default.
- ``freeze``: the acquisition ascent holds every dim whose lengthscale
  exceeds ``FREEZE_LENGTHSCALE`` at its starting value (Sobol point or
  anchor), so that a dim the GP deems irrelevant is not pushed to a bound
  by a near-flat acquisition slope.
- ``nofence``: the output warp standardises the outcomes as they are, not
  pulled in beyond Tukey's far-out fences (gpbo's default until 2026-11-28,
  see :mod:`gpbo.models.warping`; measured as ``fence`` patching the other
  way before the fences became the default).
- ``nodiscount``: the default portfolio's augmented EI without its noise
  discount, i.e. LogEI from the effective best (the posterior mean at the
  observed point with the highest mean - sigma).
- ``accelerator``: every L-BFGS-B call (MAP fit and acquisition ascent) on
  the code path it takes on a GPU: all line-search steps in one batched call,
  "all done" checked every 10 iterations. The CUDA-graph replay repeats that
  path's kernels exactly, so this measures the GPU's search quality on a CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from benchmarks.report import open_results


def _rbf() -> None:
    from gpbo.models import kernel, marginal, pointwise

    def rbf(sq: Tensor) -> Tensor:
        return torch.exp(-0.5 * sq)

    def rbf_dsq(sq: Tensor) -> Tensor:
        return -0.5 * torch.exp(-0.5 * sq)

    kernel.matern52 = marginal.matern52 = pointwise.matern52 = rbf
    marginal.matern52_dsq = pointwise.matern52_dsq = rbf_dsq


def _observed_mean_context(change: Callable[[Any, Tensor], Any]) -> Callable[[], None]:
    """Variant that rewrites the engine's acquisition context with ``change(ctx, mean)``,
    ``mean`` (P, n) the posterior mean at the observed points."""

    def patch() -> None:
        from gpbo import engine

        context = engine._context

        def patched(model, X, Y, pending, seed):
            ctx = context(model, X, Y, pending, seed)
            with torch.no_grad():
                mean = model.posterior(X.transpose(0, 1).unsqueeze(-2)).mean.squeeze(-1)  # (n, P)
            return change(ctx, mean.transpose(0, 1))

        engine._context = patched

    return patch


def _noanchor() -> None:
    from gpbo import engine

    engine._N_ANCHORS = 0


def _with_option(target: str, name: str, value: object) -> Callable[[], None]:
    """Variant that forces keyword argument ``name`` of ``gpbo.engine.<target>`` to ``value``."""

    def patch() -> None:
        from gpbo import engine

        original = getattr(engine, target)

        def forced(*args, **kwargs):
            kwargs[name] = value
            return original(*args, **kwargs)

        setattr(engine, target, forced)

    return patch


def _botorch_fit() -> None:
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from gpbo.models import exact

    def fit(cls, X, Y, *, categorical=(), noise="learned", warm_start=None, max_iter=100):
        y_mean, y_std = exact._standardisation(Y)
        Y_std = (Y - y_mean.unsqueeze(-1)) / y_std.unsqueeze(-1)
        thetas = []
        for p in range(X.shape[0]):
            covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=X.shape[-1], use_rbf_kernel=False)
            gp = SingleTaskGP(X[p], Y_std[p].unsqueeze(-1), covar_module=covar)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            thetas.append(exact._theta(covar.lengthscale.detach().reshape(-1), gp.likelihood.noise.detach()[0]))
        theta = torch.stack(thetas).to(X)
        return exact._build(X, Y_std, y_mean, y_std, theta, theta[..., -1:].exp().expand(Y.shape), categorical)

    exact.ExactGP.fit = classmethod(fit)


# minimize_lbfgsb's options on a GPU (its defaults there), forced on a CPU
ACCELERATOR_PATH = {"check_every": 10, "unit_first": False}


def _accelerator() -> None:
    from gpbo.models import exact
    from gpbo.search import multistart

    for module in (exact, multistart):
        module.minimize_lbfgsb = functools.partial(module.minimize_lbfgsb, **ACCELERATOR_PATH)


def _average_mean() -> None:
    from gpbo.models import exact

    standardisation = exact._standardisation

    def average(Y: Tensor) -> tuple[Tensor, Tensor]:
        _, std = standardisation(Y)
        return Y.mean(-1), std

    exact._standardisation = average


FREEZE_LENGTHSCALE = 2.0  # unit-cube lengthscale above which ``freeze`` holds a dim


def _freeze() -> None:
    from gpbo.search import multistart

    ascend = multistart._ascend

    def frozen(fn, X, fixed, max_iter, scale):  # scale: (P, d) lengthscales, X: (R, P, q, d)
        if scale is not None:
            fixed = fixed | (scale > FREEZE_LENGTHSCALE).repeat(1, X.shape[-2])  # (P, q*d)
        return ascend(fn, X, fixed, max_iter, scale)

    multistart._ascend = frozen


def _nofence() -> None:
    from gpbo.models import warping

    warping.pull_in_far_outcomes = lambda Y: (Y, torch.zeros(Y.shape[:-1], dtype=Y.dtype, device=Y.device))


def _nodiscount() -> None:
    """The default portfolio with AEI's incumbent but without its noise discount."""
    from gpbo.acquisition import LogEI, portfolio
    from gpbo.acquisition.analytic import effective_best

    class LogEIAtEffectiveBest:
        joint = False

        def __call__(self, ctx):
            return LogEI()(dataclasses.replace(ctx, best_f=effective_best(ctx, 1.0)))

    portfolio.LogAugmentedEI = LogEIAtEffectiveBest  # RoundRobin's default EI member


def _fence10() -> None:
    from gpbo.models import warping

    warping.FENCE = 10.0


VARIANTS: dict[str, Callable[[], None]] = {
    "rbf": _rbf,
    "plugin": _observed_mean_context(lambda ctx, mean: dataclasses.replace(ctx, best_f=mean.max(-1).values)),
    "noanchor": _noanchor,
    # anchors at the best posterior means; best_f stays the best observation
    "meananchor": _observed_mean_context(lambda ctx, mean: dataclasses.replace(ctx, Y=mean)),
    "nowarm": _with_option("suggest", "warm_start", None),
    "noprecond": _with_option("maximize_acquisition", "scale", None),
    "botorch_fit": _botorch_fit,
    "accelerator": _accelerator,
    "averagemean": _average_mean,
    "freeze": _freeze,
    "nofence": _nofence,
    "fence10": _fence10,
    "nodiscount": _nodiscount,
}


def merge(out: Path, sources: list[str]) -> int:
    """Write OUT/results.jsonl from ``DIR:METHOD=LABEL`` sources; returns the line count."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(out / "results.jsonl", "w") as dst:
        for source in sources:
            folder, _, rename = source.rpartition(":")
            method, _, label = rename.partition("=")
            with open_results(Path(folder)) as lines:
                for line in lines:
                    record = json.loads(line)
                    if record["method"] == method:
                        dst.write(json.dumps({**record, "method": label or method}) + "\n")
                        count += 1
    return count


def main(argv: list[str] | None = None) -> dict | int:
    from benchmarks import sweep

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"] and len(argv) > 2:
        return merge(Path(argv[1]), argv[2:])
    names = argv[0].split("+") if argv else []
    if not names or any(name not in VARIANTS for name in names):
        raise SystemExit(f"usage: python -m benchmarks.ablations {{{','.join(VARIANTS)}}}[+VARIANT...] [sweep options]"
                         " | merge OUT DIR:METHOD=LABEL ...")
    for name in names:
        VARIANTS[name]()
    return sweep.main(argv[1:])


if __name__ == "__main__":
    main()
