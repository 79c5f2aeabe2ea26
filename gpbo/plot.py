"""Plots of a study: convergence, slices, partial dependence and importance.

Every function takes a study (an `Optimizer`, a `MinimizeResult`, or the
`StudyHistory` that `gpbo.load_study` returns) and returns a matplotlib
``Figure``; save it with ``fig.savefig("plot.png")``. matplotlib is imported
on first use (``pip install "gpbo[plot]"``). ``metric_name=`` names the
objective on the axes (default ``"objective"``).

`partial_dependence` and `importance` draw the model the optimizer suggests
from: `fit_surrogate` refits it (cold, not warm-started) with
`gpbo.engine.fit_model`, the study's settings (a `StudyHistory` has none: the
defaults) and the optimizer's data (failed trials at the worst completed
value). With an output warp (the default) that model lives on the warped
scale, a strictly increasing map of the objective that
`gpbo.models.warping` does not invert, so those axes say "warped scale": the
ordering and the optimum's location read the same. Values are shown in the
objective's direction, whether the study minimises or maximises.

These plots are for one objective: a study made with ``objectives={"loss":
...}`` is drawn in that objective's direction, and with constraints the best
so far counts feasible trials only, as `gpbo.Optimizer.best` does. A study
with several objectives has `pareto_front` and `hypervolume` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gpbo.engine import fit_model
from gpbo.errors import InvalidArgumentError
from gpbo.loop import MinimizeResult
from gpbo.metrics import Metrics
from gpbo.models.exact import ExactGP
from gpbo.models.protocol import lengthscale_of
from gpbo.models.variational import SVGP
from gpbo.models.warping import warp_outcomes
from gpbo.optimizer import Optimizer
from gpbo.outcomes import Outcomes
from gpbo.plot_curves import best_vs_steps, learning_curves  # noqa: F401 (re-exported: gpbo.plot.learning_curves, ...)
from gpbo.plot_pareto import hypervolume, pareto_front, study_source  # noqa: F401 (re-exported: gpbo.plot.pareto_front, ...)
from gpbo.settings import Settings
from gpbo.space import Categorical, Integer, Real, Space
from gpbo.storage import StudyHistory
from gpbo.trial import Trial, TrialState
from gpbo.validation import check_int

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Surrogate", "convergence", "fit_surrogate", "importance", "importances",
           "partial_dependence", "slice"]

Study = Optimizer | MinimizeResult | StudyHistory
_IMPORTANCE_METHODS = ("lengthscale", "sobol")


@dataclass(frozen=True)
class Surrogate:
    """The engine's model of a study, seen in the objective's direction.

    Attributes:
        model: the `ExactGP` or `SVGP` (P = 1) that `gpbo.engine.fit_model`
            fits to the study, in the engine's maximisation convention.
        space: the study's search space.
        X: (n, d) encoded params of the COMPLETE trials.
        Y: (n,) their values on the scale of `predict`: the objective's, or
            the warped one if ``warped``.
        sign: +1.0 if the study maximises, -1.0 if it minimises.
        warped: True if the model was fitted to warped outcomes.
    """

    model: ExactGP | SVGP
    space: Space
    X: Tensor
    Y: Tensor
    sign: float = 1.0
    warped: bool = False

    def predict(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean (increasing in the objective) and std at ``X`` (m, d) -> (m,), (m,)."""
        with torch.no_grad():
            post = self.model.posterior(X.unsqueeze(-2).unsqueeze(-3))  # X (m, 1, 1, d)
        return self.sign * post.mean[..., 0, 0], post.variance[..., 0, 0].clamp_min(0.0).sqrt()


@dataclass(frozen=True)
class _Study:
    space: Space
    trials: list[Trial]
    maximize: bool
    settings: Settings
    metrics: Metrics


def _unpack(study: Any) -> _Study:
    """What the plots need of an Optimizer, a MinimizeResult or a StudyHistory (one objective).

    With ``objectives=`` the direction is the objective's (`gpbo.metrics.Metrics.maximizes`)
    and the settings lose their engine outcomes (the surrogate
    fits the objective alone); a study with several objectives is refused.
    """
    study = study_source(study)
    metrics = study.metrics
    if metrics.n_objectives > 1:
        raise InvalidArgumentError(
            f"this plot is for one objective; this study has {metrics.n_objectives} objectives "
            f"{[o.name for o in metrics.objectives]}: use gpbo.plot.pareto_front or gpbo.plot.hypervolume")
    maximize = metrics.maximizes
    # the surrogate models the one objective alone: the engine's outcome columns (constraints too) are not its data
    settings = study.settings.replace(outcomes=Outcomes()) if isinstance(study, Optimizer) else Settings()
    return _Study(study.space, study.trials, maximize, settings, metrics)


def _check_metric(metric_name: Any) -> str:
    if not isinstance(metric_name, str) or not metric_name:
        raise InvalidArgumentError(f"metric_name must be a non-empty str, got {metric_name!r:.200}")
    return metric_name


def _complete(trials: list[Trial]) -> list[Trial]:
    return [t for t in trials if t.state is TrialState.COMPLETE]


def fit_surrogate(study: Study) -> Surrogate:
    """Fits the model the optimizer suggests from (`gpbo.engine.fit_model`) to ``study``.

    The data are the optimizer's: COMPLETE trials in the maximisation
    convention, FAILED ones at the worst completed value; the settings are
    the study's (defaults for a `StudyHistory`).

    Raises:
        InvalidArgumentError: If ``study`` is not a study or has fewer than 2
            COMPLETE trials.
    """
    s = _unpack(study)
    done = _complete(s.trials)
    if len(done) < 2:
        raise InvalidArgumentError(f"the surrogate needs at least 2 COMPLETE trials, got {len(done)}")
    failed = [t for t in s.trials if t.state is TrialState.FAILED]
    X = s.space.encode([t.params for t in done + failed])  # (n + f, d) float64
    sign = 1.0 if s.maximize else -1.0
    Y = sign * torch.tensor([t.value for t in done], dtype=torch.float64)  # (n,) to maximise
    Y = torch.cat([Y, Y.min().expand(len(failed))])  # (n + f,)
    model = fit_model(X[None], Y[None], dims=s.space.dims, settings=s.settings)
    warped = s.settings.warp != "none"
    if warped:  # the outcomes the model was fitted to (as gpbo.engine does)
        Y = warp_outcomes(Y[None], fence=s.settings.warp_fence)[0]
    n = len(done)
    return Surrogate(model=model, space=s.space, X=X[:n], Y=sign * Y[:n], sign=sign, warped=warped)


def _figure(n_axes: int = 1, *, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('gpbo.plot needs matplotlib: pip install "gpbo[plot]"') from exc
    cols = min(n_axes, 3)
    rows = math.ceil(n_axes / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_axes:]:
        ax.remove()
    return fig, axes[:n_axes]


def convergence(study: Study, *, log_y: bool = False, metric_name: str = "objective") -> Figure:
    """Objective value of each COMPLETE trial and the best value so far.

    Failed trials are marked with an ``x`` on the x axis.

    Args:
        study: An `Optimizer`, `MinimizeResult` or `StudyHistory`.
        log_y: Log-scaled objective axis (all values must be > 0), which keeps
            a few very bad trials from flattening the curve.
        metric_name: What the objective measures, e.g. ``"validation error"``.
    """
    metric_name = _check_metric(metric_name)
    s = _unpack(study)
    trials, maximize = s.trials, s.maximize
    done = _complete(trials)
    if log_y and any(t.value <= 0 for t in done):
        bad = min(t.value for t in done)
        raise InvalidArgumentError(f"log_y=True needs objective values > 0, got {bad!r}")
    fig, (ax,) = _figure()
    best, running = [], None
    for t in done:  # the best so far counts feasible trials only, as Optimizer.best does
        if s.metrics.feasible(t):
            running = t.value if running is None else (max if maximize else min)(running, t.value)
        best.append(math.nan if running is None else running)
    ax.scatter([t.id for t in done], [t.value for t in done], s=14, color="C0", alpha=0.6,
               label="trial")
    ax.step([t.id for t in done], best, where="post", color="C1", label="best so far")
    failed = [t.id for t in trials if t.state is TrialState.FAILED]
    if failed:
        ax.plot(failed, [0.0] * len(failed), "x", color="C3", transform=ax.get_xaxis_transform(),
                clip_on=False, label="failed")
    ax.set(xlabel="trial", ylabel=metric_name, title="Convergence", yscale="log" if log_y else "linear")
    ax.legend()
    return fig


def _axis_values(space: Space, name: str, values: list[Any]) -> list[Any]:
    """Positions on a plot axis: categorical choices become their index."""
    param = space.params[name]
    if isinstance(param, Categorical):
        return [_choice_index(param, v) for v in values]
    return values


def _choice_index(param: Categorical, value: Any) -> int:
    k = len(param.choices)
    u = param._encode(value)
    return round(u * (k - 1))


def _format_axis(ax: Axes, space: Space, name: str, axis: str = "x") -> None:
    """Log / logit scale for log / logit params, choice labels for categoricals.

    A log-scaled integer gets plain integer labels at 1-2-5 steps (1, 10, 100
    beyond 2.5 decades) and no minor labels, which would overlap.
    """
    param = space.params[name]
    if isinstance(param, (Real, Integer)) and param.log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if isinstance(param, Integer) and param.log:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        decades = math.log10(param.high / param.low)
        which = ax.xaxis if axis == "x" else ax.yaxis
        which.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)))
        which.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if v < 1e5 else f"{v:.0e}"))
        which.set_minor_formatter(NullFormatter())
    if isinstance(param, Real) and param.logit:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("logit")
    if isinstance(param, Categorical):
        ticks, labels = range(len(param.choices)), [str(c) for c in param.choices]
        (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks, labels)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(name)


def slice(study: Study, params: list[str] | None = None, *, metric_name: str = "objective") -> Figure:
    """Objective value against each parameter, one panel per parameter.

    Args:
        study: An `Optimizer`, `MinimizeResult` or `StudyHistory`.
        params: Names to draw; None draws every parameter.
        metric_name: What the objective measures, e.g. ``"validation error"``.
    """
    metric_name = _check_metric(metric_name)
    s = _unpack(study)
    space, trials = s.space, s.trials
    names = _check_names(space, params)
    done = _complete(trials)
    fig, axes = _figure(len(names), width=4.0)
    for ax, name in zip(axes, names, strict=True):
        x = _axis_values(space, name, [t.params[name] for t in done])
        points = ax.scatter(x, [t.value for t in done], c=[t.id for t in done], cmap="viridis", s=16)
        _format_axis(ax, space, name)
        ax.set_ylabel(metric_name)
    fig.colorbar(points, ax=axes, label="trial")
    fig.suptitle("Slice")
    return fig


def _check_names(space: Space, params: Any) -> list[str]:
    if params is None:
        return list(space.names)
    names = [params] if isinstance(params, str) else list(params)
    unknown = [n for n in names if n not in space.names]
    if unknown or not names:
        raise InvalidArgumentError(f"params must name parameters of the space {list(space.names)}, got {params!r}")
    return names


def _grid(space: Space, name: str, n_grid: int) -> Tensor:
    """Encoded values along parameter ``name``: its levels if discrete, else a linspace."""
    j = space.names.index(name)
    levels = space.dims.levels.get(j)
    if levels is not None and len(levels) <= n_grid:
        return torch.tensor(levels, dtype=torch.float64)
    return torch.linspace(0.0, 1.0, n_grid, dtype=torch.float64)


def _decoded(space: Space, name: str, u: Tensor) -> list[Any]:
    """User values of parameter ``name`` at encoded values ``u (m,)``."""
    rows = torch.full((len(u), space.dim), 0.5, dtype=torch.float64)
    rows[:, space.names.index(name)] = u
    return _axis_values(space, name, [p[name] for p in space.decode(rows)])


def _pd(surrogate: Surrogate, dims: list[int], values: Tensor) -> tuple[Tensor, Tensor]:
    """Partial dependence: mean and std averaged over the observed points.

    Args:
        dims: encoded dims that are set; values: (m, len(dims)) their values.

    Returns:
        (m,) mean and (m,) std of the surrogate, averaged over the n observed rows.
    """
    X = surrogate.X.unsqueeze(0).repeat(len(values), 1, 1)  # (m, n, d)
    X[:, :, dims] = values.unsqueeze(1)
    mean, std = surrogate.predict(X.reshape(-1, X.shape[-1]))
    return mean.view(len(values), -1).mean(-1), std.view(len(values), -1).mean(-1)


def partial_dependence(
    study: Study, params: str | tuple[str, str], *, n_grid: int = 40,
    surrogate: Surrogate | None = None, metric_name: str = "objective",
) -> Figure:
    """The model's mean (and, for one parameter, ±2 std) along one or two parameters.

    The other parameters are averaged out over the COMPLETE trials (Friedman's
    partial dependence of the GP mean); the band is the average posterior std.
    A categorical parameter alone gets one bar per choice, with ±2 std error
    bars. The model is `fit_surrogate`'s: the one the optimizer suggests from,
    so with an output warp the values are on the warped scale (the axis says so).

    Args:
        study: An `Optimizer`, `MinimizeResult` or `StudyHistory` with >= 2
            COMPLETE trials.
        params: One name, or a pair of names for a 2-D contour plot.
        n_grid: Grid points per continuous parameter, >= 2.
        surrogate: A `fit_surrogate` result to reuse; fitted if None.
        metric_name: What the objective measures, e.g. ``"validation error"``.
    """
    metric_name = _check_metric(metric_name)
    names = _check_names(_unpack(study).space, params)
    if len(names) > 2 or isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 2:
        raise InvalidArgumentError(
            f"partial_dependence takes one or two params and n_grid >= 2, got {params!r}, n_grid={n_grid!r}")
    sur = fit_surrogate(study) if surrogate is None else surrogate
    label = f"{metric_name} (warped scale)" if sur.warped else metric_name
    fig, (ax,) = _figure()
    if len(names) == 2:
        _pd_2d(fig, ax, sur, names, n_grid, label)
    elif isinstance(sur.space.params[names[0]], Categorical):
        _pd_bars(ax, sur, names[0], label)
    else:
        _pd_line(ax, sur, names[0], n_grid, label)
    _format_axis(ax, sur.space, names[0])
    ax.set_title("Partial dependence")
    return fig


def _pd_line(ax: Axes, sur: Surrogate, name: str, n_grid: int, label: str) -> None:
    """Mean and ±2 std band along an ordered parameter, with the trials."""
    grid = _grid(sur.space, name, n_grid)
    mean, std = _pd(sur, [sur.space.names.index(name)], grid.unsqueeze(-1))
    x = _decoded(sur.space, name, grid)
    ax.plot(x, mean, color="C0", label="mean")
    ax.fill_between(x, mean - 2 * std, mean + 2 * std, color="C0", alpha=0.2, label="±2 std")
    ax.scatter(_axis_values(sur.space, name, _observed(sur, name)), sur.Y, s=10, color="k", label="trials")
    ax.set_ylabel(label)
    ax.legend()


def _pd_bars(ax: Axes, sur: Surrogate, name: str, label: str) -> None:
    """One bar per choice of a categorical parameter, ±2 std error bars, with the trials.

    The bars rise from a common floor below every error bar and trial, so
    their heights compare the choices (the objective has no natural zero).
    """
    param = sur.space.params[name]
    levels = torch.tensor(sur.space.dims.levels[sur.space.names.index(name)], dtype=torch.float64)  # (k,)
    mean, std = _pd(sur, [sur.space.names.index(name)], levels.unsqueeze(-1))
    low = torch.cat([mean - 2 * std, sur.Y]).min()
    high = torch.cat([mean + 2 * std, sur.Y]).max()
    floor = low - 0.05 * (high - low).clamp_min(1e-12)
    x = list(range(len(param.choices)))
    ax.bar(x, mean - floor, bottom=floor, yerr=2 * std, capsize=4, color="C0", alpha=0.5,
           label="mean ± 2 std")
    ax.scatter(_axis_values(sur.space, name, _observed(sur, name)), sur.Y, s=10, color="k",
               label="trials", zorder=3)
    ax.set_ylim(bottom=float(floor))
    ax.set_ylabel(label)
    ax.legend()


def _pd_2d(fig: Figure, ax: Axes, sur: Surrogate, names: list[str], n_grid: int, label: str) -> None:
    """Mean over a pair of parameters: a contour, or cells if one is categorical."""
    space = sur.space
    grids = [_grid(space, n, n_grid) for n in names]
    g0, g1 = torch.meshgrid(grids[0], grids[1], indexing="ij")
    dims = [space.names.index(n) for n in names]
    mean, _ = _pd(sur, dims, torch.stack([g0.ravel(), g1.ravel()], -1))
    x, y = _decoded(space, names[0], grids[0]), _decoded(space, names[1], grids[1])
    Z = mean.view(g0.shape).T.numpy()  # rows follow the second parameter
    discrete = any(isinstance(space.params[n], Categorical) for n in names)
    filled = (ax.pcolormesh(x, y, Z, shading="nearest", cmap="viridis") if discrete
              else ax.contourf(x, y, Z, levels=20, cmap="viridis"))
    fig.colorbar(filled, ax=ax, label=f"{label}, mean")
    ax.scatter(*(_axis_values(space, n, _observed(sur, n)) for n in names), s=10, color="w",
               edgecolors="k")
    _format_axis(ax, space, names[1], axis="y")


def _observed(sur: Surrogate, name: str) -> list[Any]:
    return [p[name] for p in sur.space.decode(sur.X)]


def importances(study: Study, *, method: str = "sobol", n_samples: int = 1024,
                surrogate: Surrogate | None = None) -> dict[str, float]:
    """Relative importance of each parameter; the values sum to 1.

    Args:
        study: An `Optimizer`, `MinimizeResult` or `StudyHistory` with >= 2
            COMPLETE trials.
        method: ``"sobol"``: total-order Sobol indices of the GP mean (Jansen's
            estimator on ``n_samples`` scrambled-Sobol base points, discrete
            dims snapped to their levels); ``"lengthscale"``: inverse ARD
            lengthscales of the GP.
        n_samples: Base points for ``"sobol"``.
        surrogate: A `fit_surrogate` result to reuse; fitted if None.

    Returns:
        ``name -> importance``, in the space's order.
    """
    if method not in _IMPORTANCE_METHODS:
        raise InvalidArgumentError(f"method must be one of {_IMPORTANCE_METHODS}, got {method!r}")
    check_int("n_samples", n_samples, 2)
    sur = fit_surrogate(study) if surrogate is None else surrogate
    if method == "lengthscale":
        lengthscale = lengthscale_of(sur.model)  # (1, d), None for a custom model without lengthscales
        if lengthscale is None:
            raise InvalidArgumentError(
                f"method='lengthscale' needs a model with the Lengthscales capability "
                f"(gpbo.models.protocol.Lengthscales); {type(sur.model).__name__} has none, use method='sobol'"
            )
        raw = lengthscale[0].reciprocal()  # (d,)
    else:
        raw = _total_sobol(sur, n_samples)
    total = raw.sum()
    raw = raw / total if bool(total > 0) else torch.full_like(raw, 1.0 / len(raw))
    return dict(zip(sur.space.names, raw.tolist(), strict=True))


def _snap(space: Space, X: Tensor) -> Tensor:
    """Moves discrete dims of ``X (m, d)`` to their nearest level."""
    X = X.clone()
    for j, levels in space.dims.levels.items():
        lv = torch.tensor(levels, dtype=X.dtype)
        X[:, j] = lv[(X[:, j, None] - lv).abs().argmin(-1)]
    return X


def _total_sobol(sur: Surrogate, n: int) -> Tensor:
    """(d,) total-order Sobol indices of the GP mean (Jansen 1999)."""
    d = sur.space.dim
    base = torch.quasirandom.SobolEngine(2 * d, scramble=True, seed=0).draw(n).to(torch.float64)
    A, B = _snap(sur.space, base[:, :d]), _snap(sur.space, base[:, d:])  # (n, d) each
    AB = A.unsqueeze(0).repeat(d, 1, 1)  # (d, n, d): column j taken from B
    idx = torch.arange(d)
    AB[idx, :, idx] = B[:, idx].T
    f_A, _ = sur.predict(A)
    f_AB, _ = sur.predict(AB.reshape(-1, d))
    var = torch.cat([f_A, f_AB]).var()
    return 0.5 * (f_A - f_AB.view(d, n)).pow(2).mean(-1) / var.clamp_min(1e-300)


def importance(study: Study, *, method: str = "sobol", n_samples: int = 1024,
               surrogate: Surrogate | None = None) -> Figure:
    """Horizontal bar chart of `importances` (same arguments)."""
    scores = importances(study, method=method, n_samples=n_samples, surrogate=surrogate)
    names = sorted(scores, key=scores.__getitem__)
    fig, (ax,) = _figure(height=0.6 + 0.4 * len(names))
    ax.barh(names, [scores[n] for n in names], color="C0")
    label = "total-order Sobol index" if method == "sobol" else "inverse ARD lengthscale"
    ax.set(xlabel=f"importance ({label}, normalised)", title="Parameter importance",
           xlim=(0.0, max(1e-9, *scores.values()) * 1.1))
    return fig
