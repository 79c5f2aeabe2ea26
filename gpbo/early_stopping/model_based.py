"""The model-based stopping rule: stop a trial its learning curve says cannot win.

:class:`ModelBasedRule` predicts every trial's value at ``max_step`` with the
freeze-thaw curve model of :mod:`gpbo.early_stopping.freeze_thaw` (a GP over
configurations for the final value, a shared mean trend, and a per-trial
exponential-decay GP; Swersky, Snoek & Adams 2014) and stops trial ``i`` when

    P(y_i(max_step) > y*) < p_stop,

``y*`` the best value reported at ``max_step`` so far, the predictive std
scaled by how far off the model was on the complete trials at the decision's
step (``recalibrate``, :mod:`gpbo.early_stopping.calibration`: a
leave-one-out backtest; the freeze-thaw model alone was too sure of itself by
a factor 1.5-4 on LCBench, and stopped configurations that would have won).
The scale is never below the backtests at the later checkpoints, 1/4, 1/2
and 3/4 of ``max_step``: the complete trials are the ones this rule let
through, and their short prefixes were easy to predict, so at early steps
the backtest alone said 1.0-1.1 where the trials the rule stopped there were
off by 3.5-5.3 (measured on LCBench; docs/decisions/0057-early-scale.md).
Safeguards:

- never before ``min_fraction * max_step``, and never a trial whose value
  already reaches ``y*``;
- never while fewer than ``min_complete_share`` (1/9) of the trials with a
  report reached ``max_step``: the rule judges from whole curves, and one
  that stops nearly everything early has none left to check itself against
  (measured on LCBench task 7593: 3 of 16 studies stopped 134-198 trials,
  keeping 6-14 whole, and lost their best configurations);
- until ``min_complete`` trials have reached ``max_step`` there is no ``y*``
  to beat and too little to fit: the rule falls back to the median rule
  (Optuna's ``MedianPruner``, Golovin et al. 2017): stop when the trial's best
  value so far is below the median of the other trials' values at its step,
  given at least ``min_complete`` such trials;
- a model that cannot be factored (:class:`gpbo.errors.FitError`) never
  crashes the study: the rule falls back to the median rule;
- without a finite ``max_step`` (a study that did not set one, or
  `gpbo.integrations.optuna.GPBOPruner` before a trial finished) there is no
  final value to predict: the median rule decides, with ``min_complete``
  peers, and `predict_final` gives the last reports;
- a **rerun** is never stopped: a trial whose configuration is within
  ``rerun_tol`` (in every encoded coordinate) of a trial that was stopped
  early. The search proposed that configuration again although the curve
  model had predicted it cannot win, so the configuration model and the
  curve model disagree; the rerun runs to ``max_step`` and its full curve
  settles it (a "thaw" in freeze-thaw terms: a stopped configuration is
  continued, from the start, because trials cannot be resumed). Without
  this, a deterministic objective is stopped at the same step every time
  the search proposes it again, and the study can spend its budget on one
  configuration (measured on LCBench task 7593: 7 reruns of one stopped
  configuration in one study, whose full run would have been the best).

Cost: the hyperparameters are fitted on the complete trials (those that
reached ``max_step``; the finished ones while fewer than ``min_complete``
are complete), on a deterministic subsample whose membership changes when
their count crosses a geometric grid (×1.25), so a study of 200 trials
refits about 20 times; conditioning on all reports is ``O(N³ + Σ k_n³)`` and
runs on every new content. Both are cached by content, so a fresh rule on
the same curves decides exactly as a long-lived one (the rule is stateless
in the protocol's sense). `should_stop_many` decides for several studies at
once (a rule and cache each): their fits, conditionings and backtests are
batched over the studies (docs/decisions/0058-curve-model-over-studies.md). Why complete trials only: the trials this rule
stopped are cut where the model thought they could not win, so fitting to
them teaches it that curves change little after that point, which makes it
more confident and stop more (measured on LCBench task 7593, whose curves
cross late). See docs/decisions/0030-model-based-early-stopping.md.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gpbo.early_stopping.calibration import upper_tail_scale
from gpbo.early_stopping.freeze_thaw import MIN_TAU, CurveData, curve_blocks, fit_theta, pad_to, predict_from_blocks
from gpbo.early_stopping.protocol import Curves
from gpbo.errors import FitError, InvalidArgumentError
from gpbo.threads import limited_cpu_threads
from gpbo.validation import check_int

__all__ = ["RERUN_TOL", "ModelBasedRule", "median_rule_stops", "should_stop_many"]

RERUN_TOL = 1e-3
"""The default ``rerun_tol``: configurations this close (max over encoded coordinates) are the same one."""

_GROWTH = 1.25  # fit-set sizes: the geometric grid round(2 * 1.25^k)
_CHECKPOINTS = (0.25, 0.5, 0.75)  # fractions of max_step whose backtest scale bounds an earlier decision's


def _check_fraction(name: str, value: Any, low: float, high: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if not ok or not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a real number in [{low}, {high}], got {value!r:.100}")
    return float(value)


def _grid_floor(n: int) -> int:
    """The largest ``round(2 * 1.25^k)`` that is ``<= n`` (n itself below 2)."""
    if n < 2:
        return n
    best, k = 2, 0
    while round(2 * _GROWTH ** (k + 1)) <= n:
        k += 1
        best = round(2 * _GROWTH**k)
    return best


@functools.lru_cache(maxsize=4096)
def _subsample(k: int, m: int) -> Tensor:
    """Indices (<= m,) of k reports, spread in log-index and always the last one (cached: never modify them)."""
    if k <= m:
        return torch.arange(k)
    idx = torch.logspace(0.0, math.log10(k), m, dtype=torch.float64).round().long() - 1
    return torch.unique(torch.cat([idx, torch.tensor([k - 1])]))


def _digest(*tensors: Tensor, extra: tuple[Any, ...] = (), chunks: Any = ()) -> str:
    """A content hash of tensors, a repr-able ``extra`` and raw byte ``chunks``."""
    h = hashlib.blake2b(repr(extra).encode(), digest_size=16)
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for pair in chunks:
        for chunk in pair:
            h.update(len(chunk).to_bytes(8, "little"))
            h.update(chunk)
    return h.hexdigest()


def _last(curves: Curves, i: int) -> tuple[float, float] | None:
    """(step, value) of trial i's last report, or None."""
    return curves.last_reports[i]


def median_rule_stops(curves: Curves, index: int, *, min_step: float, min_trials: int) -> bool:
    """The median rule: stop if trial ``index``'s best value so far is below the median of the others at its step.

    The others are the trials that reported at or past trial ``index``'s last
    step ``t``; each contributes its last value at a step ``<= t``. Never stops
    before ``min_step`` or with fewer than ``min_trials`` such trials.
    """
    last = _last(curves, index)
    if last is None or last[0] < min_step or last[0] >= curves.max_step:
        return False
    t = last[0]
    others = []
    for j in range(curves.n_trials):
        s = curves.steps[j]
        if j == index or len(s) == 0 or float(s[-1]) < t:
            continue
        k = int(torch.searchsorted(s.to(torch.float64), torch.tensor([t], dtype=torch.float64), right=True))
        if k > 0:
            others.append(curves.values[j][k - 1].to(torch.float64))
    if len(others) < min_trials:
        return False
    return bool(curves.values[index].max() < torch.stack(others).median())


@dataclass(frozen=True, kw_only=True)
class ModelBasedRule:
    """Stops a running trial when its predicted final value is unlikely to beat the best one.

    Options (keyword-only, validated):
        p_stop: stop when ``P(final > best final so far) < p_stop``; in (0, 0.5].
        min_fraction: never stop before ``min_fraction * max_step``; in [0, 1].
        min_complete: trials at ``max_step`` before the model decides (the
            median rule decides until then, with this many peers); >= 1.
        max_fit_trials: finished trials the hyperparameter fit uses at most
            (evenly spread over them); >= 2.
        max_fit_steps: reports per trial in the fit; max_steps: in the
            conditioning (log-spaced, always the last one); each >= 2.
        rerun_tol: a trial within this distance (max over encoded
            coordinates) of a trial stopped early is a rerun and is never
            stopped; >= 0 (0: only exact repeats).
        recalibrate: scale the predictive std by how far off the model was
            on the complete trials, backtested at the decision's step and
            the later checkpoints (the largest of them;
            :func:`~gpbo.early_stopping.calibration.upper_tail_scale`).
        min_complete_share: never stop while fewer than this share of the
            trials with a report reached ``max_step``; in [0, 1] (0: off).
            The default 1/9 is what ASHA with η = 3 sends to the last rung
            from the first: the rule is never more aggressive than that in
            aggregate, so it keeps whole curves to check itself against.
    """

    p_stop: float = 0.05
    min_fraction: float = 0.1
    min_complete: int = 3
    max_fit_trials: int = 64
    max_fit_steps: int = 12
    max_steps: int = 64
    rerun_tol: float = RERUN_TOL
    recalibrate: bool = True
    min_complete_share: float = 1 / 9
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_fraction("p_stop", self.p_stop, 1e-12, 0.5)
        _check_fraction("min_fraction", self.min_fraction, 0.0, 1.0)
        check_int("min_complete", self.min_complete, 1)
        check_int("max_fit_trials", self.max_fit_trials, 2)
        check_int("max_fit_steps", self.max_fit_steps, 2)
        check_int("max_steps", self.max_steps, 2)
        _check_fraction("rerun_tol", self.rerun_tol, 0.0, 1.0)
        _check_fraction("min_complete_share", self.min_complete_share, 0.0, 1.0)
        if not isinstance(self.recalibrate, bool):
            raise InvalidArgumentError(f"recalibrate must be a bool, got {self.recalibrate!r:.100}")

    def should_stop(self, curves: Curves, index: int) -> bool:
        """True if running trial ``index`` should stop now (see the module docstring).

        Raises:
            InvalidArgumentError: if ``index`` is not a trial of ``curves``.
        """
        return should_stop_many([(self, curves, index)])[0]

    @staticmethod
    def should_stop_many(requests: Sequence[tuple[ModelBasedRule, Curves, int]]) -> list[bool]:
        """`should_stop` of several studies, ``(rule, curves, index)`` each, batched (module `should_stop_many`)."""
        return should_stop_many(requests)

    def predict_final(self, curves: Curves) -> tuple[Tensor, Tensor]:
        """Predicted value at ``max_step`` of every trial, to maximise.

        A trial that reported at ``max_step`` (or past it) gets its last value
        and std 0; the others the curve model's posterior of the latent value.
        Without any report, or without a finite ``max_step``, there is no
        model: the mean is the last value (NaN for a trial without reports)
        and the std infinite.

        Returns:
            mean (T,), std (T,), float64.

        Raises:
            FitError: if the curve model cannot be factored.
        """
        _check_curves(curves)
        if not math.isfinite(curves.max_step):
            mean = torch.tensor([float(v[-1]) if len(v) else math.nan for v in curves.values], dtype=torch.float64)
            return mean, torch.full_like(mean, math.inf)
        with limited_cpu_threads(torch.device("cpu")):
            study = _Study.of(self, curves)
            (post,) = _posteriors([study], _fits([study]))
        if post is None:
            raise FitError("the freeze-thaw curve model's covariance is not positive definite")
        mean, std = post[0].clone(), post[1].clone()
        for j in range(curves.n_trials):
            if (v := _final(curves, j)) is not None:
                mean[j], std[j] = v, 0.0
        return mean, std

    def _plan(self, curves: Curves, index: int) -> bool | _Contest:
        """The decision where the curve model is not needed, else the contest it has to judge."""
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < curves.n_trials:
            raise InvalidArgumentError(f"index must be an int in [0, {curves.n_trials}), got {index!r:.100}")
        if not math.isfinite(curves.max_step):  # no final step to predict (see the module docstring)
            return bool(curves.running[index]) and median_rule_stops(curves, index, min_step=0.0,
                                                                     min_trials=self.min_complete)
        last = _last(curves, index)
        min_step = self.min_fraction * curves.max_step
        if last is None or not bool(curves.running[index]) or last[0] < min_step or last[0] >= curves.max_step:
            return False
        if _is_rerun(curves, index, self.rerun_tol):
            return False
        finals = [v for j in range(curves.n_trials) if j != index and (v := _final(curves, j)) is not None]
        started = sum(1 for j in range(curves.n_trials) if len(curves.steps[j]) > 0)
        if len(finals) < self.min_complete_share * started:
            return False
        if len(finals) < self.min_complete:
            return median_rule_stops(curves, index, min_step=min_step, min_trials=self.min_complete)
        best = max(finals)
        if last[1] >= best or float(curves.values[index].max()) >= best:
            return False
        return _Contest(index, best, last[0])

    def _judge(self, curves: Curves, contest: _Contest, post: tuple[Tensor, Tensor] | None,
               scale: float | None) -> bool:
        """Stop if ``P(final > best) < p_stop`` (the median rule where the model could not be factored)."""
        if post is None or scale is None:
            return median_rule_stops(curves, contest.index, min_step=self.min_fraction * curves.max_step,
                                     min_trials=self.min_complete)
        mean, std = float(post[0][contest.index]), float(post[1][contest.index])
        z = (mean - contest.best) / max(scale * std, 1e-12)
        return 0.5 * math.erfc(-z / math.sqrt(2.0)) < self.p_stop

    def _scale_steps(self, curves: Curves, step: float) -> tuple[float, ...]:
        """The steps whose backtest scales bound a decision at ``step``: itself and the later `_CHECKPOINTS`."""
        return (step, *(f * curves.max_step for f in _CHECKPOINTS if f * curves.max_step > step))

    def _scale(self, curves: Curves, step: float) -> float:
        """The std scale of a decision at ``step``: the largest backtest at `_scale_steps`."""
        return max(self._backtests(curves, self._scale_steps(curves, step)))

    def _backtests(self, curves: Curves, steps: tuple[float, ...]) -> list[float]:
        """The std scale at each of ``steps`` (see `_scales`).

        Raises:
            FitError: if the curve model cannot be factored.
        """
        study = _Study.of(self, curves)
        (scales,) = _scales([study], _fits([study]), [steps])
        if scales is None:
            raise FitError("the freeze-thaw curve model's covariance is not positive definite")
        return scales

    def _blocks(self, fit: _Fit, max_step: float, steps: list[Tensor], values: list[Tensor],
                content: list[tuple[bytes, bytes]]) -> Tensor:
        """(T, 4, 4) each trial's factor (:func:`~gpbo.early_stopping.freeze_thaw.curve_blocks`).

        A trial's factor depends only on its own reports and the fit, so it is
        reused while both are unchanged (one new report refactors one trial).
        Trials are factored in groups of equal length, without padding, so a
        factor does not depend on which other trials were factored with it.
        """
        table: dict[int, tuple[tuple[bytes, bytes], Tensor]] = self._cache.get("blocks" + fit.key, {})
        fresh = {j: table[j] for j in range(len(steps)) if j in table and table[j][0] == content[j]}
        by_length: dict[int, list[int]] = {}
        for j in range(len(steps)):
            if j not in fresh:
                by_length.setdefault(len(steps[j]), []).append(j)
        for k, group in by_length.items():
            if k == 0:
                G = torch.zeros(len(group), 4, 4, dtype=torch.float64)
            else:
                tau = (torch.stack([steps[j] for j in group]) / max_step).clamp_min(MIN_TAU)
                y = (torch.stack([values[j] for j in group]) - fit.y_mean) / fit.y_std
                with torch.no_grad():
                    G, _, ok = curve_blocks(fit.theta, tau, y, torch.ones_like(tau, dtype=torch.bool))
                if not bool(ok.all()):
                    raise FitError("a trial's curve covariance is not positive definite")
            fresh.update({j: (content[j], G[n]) for n, j in enumerate(group)})
        _store(self._cache, "blocks", "blocks" + fit.key, fresh)
        return torch.stack([fresh[j][1] for j in range(len(steps))])

    @staticmethod
    def _pick(curves: Curves, rows: Any, m: int) -> tuple[list[Tensor], list[Tensor]]:
        steps, values = [], []
        for j in rows:
            s, v = curves.steps[j].detach().cpu().to(torch.float64), curves.values[j].detach().cpu().to(torch.float64)
            if len(s) > m:
                idx = _subsample(len(s), m)
                s, v = s[idx], v[idx]
            steps.append(s)
            values.append(v)
        return steps, values


@dataclass(frozen=True)
class _Contest:
    """A decision for the curve model: is trial ``index``'s final, judged at ``step``, likely to beat ``best``?"""

    index: int
    best: float
    step: float


@dataclass(frozen=True)
class _Fit:
    """The curve model fitted on a fit set: its content key, theta (D,) and the fit set's standardisation."""

    key: str
    theta: Tensor
    y_mean: float
    y_std: float


Request = tuple[ModelBasedRule, Curves, int]


@dataclass(frozen=True)
class _Study:
    """One study in a batched call: its rule (and cache), curves and fit set (`_fit_rows`), computed once."""

    rule: ModelBasedRule
    curves: Curves
    rows: tuple[int, ...]

    @classmethod
    def of(cls, rule: ModelBasedRule, curves: Curves) -> _Study:
        return cls(rule, curves, _fit_rows(rule, curves))


def should_stop_many(requests: Sequence[Request]) -> list[bool]:
    """`ModelBasedRule.should_stop` of P studies at once: ``(rule, curves, index)``, a rule (and cache) per study.

    The curve model's work is batched over the studies (:mod:`gpbo.early_stopping.freeze_thaw`
    takes a study dimension P): the missing fits are one batched L-BFGS-B,
    the posteriors one batched conditioning, the missing backtests one
    batched backtest. Each answer is the one the study's rule gives alone,
    up to floating-point rounding (docs/decisions/0058-curve-model-over-studies.md).

    Raises:
        InvalidArgumentError: if a rule is not a `ModelBasedRule`, or an
            ``index`` is not a trial of its ``curves``.
    """
    for rule, curves, _ in requests:
        if not isinstance(rule, ModelBasedRule):
            raise InvalidArgumentError(f"should_stop_many takes ModelBasedRule rules, got {type(rule).__name__}")
        _check_curves(curves)
    with limited_cpu_threads(torch.device("cpu")):
        plans = [rule._plan(curves, index) for rule, curves, index in requests]
        asked = [k for k, plan in enumerate(plans) if isinstance(plan, _Contest)]
        studies = [_Study.of(*requests[k][:2]) for k in asked]
        fits = _fits(studies)
        posts = _posteriors(studies, fits)
        scale_sets = _scales(studies, fits, [s.rule._scale_steps(s.curves, plans[k].step) if s.rule.recalibrate else ()
                                             for k, s in zip(asked, studies)])
        judged = {k: s.rule._judge(s.curves, plans[k], post, None if steps is None else max(steps, default=1.0))
                  for k, s, post, steps in zip(asked, studies, posts, scale_sets)}
        return [judged[k] if k in judged else plan for k, plan in enumerate(plans)]


def _fits(studies: Sequence[_Study]) -> list[_Fit | None]:
    """Each study's fit (cached by the fit set's content); the missing ones are one batched fit.

    None: no trial has a report, or the likelihood is not finite.
    """
    out: list[_Fit | None] = []
    todo: list[tuple[int, str, list[Tensor], list[Tensor]]] = []
    for k, s in enumerate(studies):
        if not s.rows:
            out.append(None)
            continue
        steps, values = s.rule._pick(s.curves, s.rows, s.rule.max_fit_steps)
        key = "fit" + _digest(s.curves.X[list(s.rows)], *steps, *values, extra=(s.curves.max_step,))
        out.append(s.rule._cache.get(key))
        if out[-1] is None:
            todo.append((k, key, steps, values))
    if todo:
        data = [CurveData.pad(studies[k].curves.X[list(studies[k].rows)], steps, values, studies[k].curves.max_step)
                for k, _, steps, values in todo]
        theta, ok = fit_theta(CurveData.stack(data))
        for p, (k, key, _, _) in enumerate(todo):
            if bool(ok[p]):
                out[k] = _Fit(key, theta[p], float(data[p].y_mean[0]), float(data[p].y_std[0]))
                _store(studies[k].rule._cache, "fit", key, out[k])
    return out


def _posteriors(studies: Sequence[_Study], fits: Sequence[_Fit | None]) -> list[tuple[Tensor, Tensor] | None]:
    """Each study's (T,) mean and std of the latent finals (cached by the curves' content); None: not factored.

    The missing ones are conditioned together: each study's per-trial
    factors (`ModelBasedRule._blocks`, cached per trial), padded to the
    largest T, then one batched :func:`~gpbo.early_stopping.freeze_thaw.predict_from_blocks`.
    """
    out: list[tuple[Tensor, Tensor] | None] = [None] * len(studies)
    ready: list[tuple[int, str, _Fit, Tensor]] = []
    for k, (s, fit) in enumerate(zip(studies, fits)):
        rule, curves = s.rule, s.curves
        steps, values = rule._pick(curves, range(curves.n_trials), rule.max_steps)
        content = [(t.numpy().tobytes(), v.numpy().tobytes()) for t, v in zip(steps, values)]
        key = "post" + _digest(curves.X, extra=(curves.max_step, s.rows), chunks=content)
        out[k] = rule._cache.get(key)
        if out[k] is None and not any(len(t) for t in steps):
            last = torch.full((curves.n_trials,), math.nan, dtype=torch.float64)
            out[k] = (last, torch.full_like(last, math.inf))
            _store(rule._cache, "post", key, out[k])
        elif out[k] is None and fit is not None:
            try:
                ready.append((k, key, fit, rule._blocks(fit, curves.max_step, steps, values, content)))
            except FitError:
                pass  # this study's posterior stays None
    if ready:
        T = max(G.shape[0] for *_, G in ready)
        d = studies[ready[0][0]].curves.X.shape[-1]
        theta = torch.stack([fit.theta for _, _, fit, _ in ready])  # (P, D)
        X = torch.stack([pad_to(studies[k].curves.X.to(torch.float64), (T, d), 0.0) for k, *_ in ready])  # (P, T, d)
        G = torch.stack([pad_to(G, (T, 4, 4), 0.0) for *_, G in ready])  # (P, T, 4, 4)
        trials = torch.stack([torch.arange(T) < G.shape[0] for *_, G in ready])  # (P, T)
        with torch.no_grad():
            mean, std, ok = predict_from_blocks(theta, X, G, trials)
        for p, (k, key, fit, G_k) in enumerate(ready):
            if bool(ok[p]):
                n = G_k.shape[0]
                out[k] = (mean[p, :n] * fit.y_std + fit.y_mean, std[p, :n] * fit.y_std)
                _store(studies[k].rule._cache, "post", key, out[k])
    return out


def _scales(studies: Sequence[_Study], fits: Sequence[_Fit | None],
            steps: Sequence[tuple[float, ...]]) -> list[list[float] | None]:
    """The std scale at each of a study's ``steps``, backtested on the complete trials of its fit set.

    Cached per fit and step; the missing (study, step) pairs are one batched
    :func:`~gpbo.early_stopping.calibration.upper_tail_scale`. Fewer than 3
    complete trials in the fit set: 1.0. None: the model could not be factored.
    """
    tables: list[dict[float, float] | None] = []
    todo: list[tuple[int, float, CurveData, _Fit]] = []  # (study, step, its complete trials, fit)
    grown: list[int] = []  # the studies whose cached table gets new steps
    for k, (s, fit, wanted) in enumerate(zip(studies, fits, steps)):
        rows = tuple(j for j in s.rows if _final(s.curves, j) is not None)
        if len(rows) < 3 or fit is None:
            tables.append(dict.fromkeys(wanted, 1.0) if len(rows) < 3 else None)
            continue
        table: dict[float, float] = s.rule._cache.get("scale" + fit.key, {})
        missing = [t for t in wanted if t not in table]
        if missing:
            picked, values = s.rule._pick(s.curves, rows, s.rule.max_steps)
            data = CurveData.pad(s.curves.X[list(rows)], picked, values, s.curves.max_step, (fit.y_mean, fit.y_std))
            todo += [(k, t, data, fit) for t in missing]
            grown.append(k)
        tables.append(table)
    if todo:
        theta = torch.stack([fit.theta for *_, fit in todo])  # (P, D), a row per (study, step)
        fraction = torch.tensor([t / studies[k].curves.max_step for k, t, _, _ in todo], dtype=torch.float64)
        k_scale, ok = upper_tail_scale(theta, CurveData.stack([data for _, _, data, _ in todo]), fraction)
        for p, (k, t, _, _) in enumerate(todo):
            table = tables[k]
            if table is not None and bool(ok[p]):
                table[t] = float(k_scale[p])
            else:
                tables[k] = None
    for k in grown:
        if (table := tables[k]) is not None and (fit := fits[k]) is not None:
            _store(studies[k].rule._cache, "scale", "scale" + fit.key, table)
    return [None if table is None else [table[t] for t in wanted] for wanted, table in zip(steps, tables)]


def _store(cache: dict[str, Any], kind: str, key: str, value: Any) -> None:
    """Keep one entry of each kind (the latest): a new content replaces the old one."""
    for old in [k for k in list(cache) if k.startswith(kind)]:
        cache.pop(old, None)
    cache[key] = value


def _is_rerun(curves: Curves, index: int, tol: float) -> bool:
    """True if a finished trial that was stopped early has trial ``index``'s configuration (within ``tol``)."""
    near = (curves.X - curves.X[index]).abs().amax(dim=-1) <= tol  # (T,)
    earlier = near & curves.stopped.to(near.device) & ~curves.running.to(near.device)
    earlier[index] = False
    return bool(earlier.any())


def _final(curves: Curves, j: int) -> float | None:
    """Trial j's last value if it reported at or past ``max_step``."""
    last = _last(curves, j)
    return last[1] if last is not None and last[0] >= curves.max_step else None


def _fit_rows(rule: ModelBasedRule, curves: Curves) -> tuple[int, ...]:
    """The trials the hyperparameters are fitted on, a function of the curves' content only.

    The complete trials (a report at ``max_step``), or, while fewer than
    ``min_complete`` are, the finished (not running) ones with a report; the
    first ``c`` of them by index, ``c`` their count rounded down to the ×1.25
    grid, then at most ``max_fit_trials`` of those, evenly spread. Fewer than
    2 such trials: every trial with a report.
    """
    has = [j for j in range(curves.n_trials) if len(curves.steps[j]) > 0]
    done = [j for j in has if not bool(curves.running[j])]
    complete = [j for j in has if _final(curves, j) is not None]
    pool = complete if len(complete) >= max(rule.min_complete, 2) else done
    if len(pool) < 2:
        return tuple(has)
    pool = pool[: _grid_floor(len(pool))]
    if len(pool) > rule.max_fit_trials:
        pick = torch.linspace(0, len(pool) - 1, rule.max_fit_trials).round().long().tolist()
        pool = [pool[k] for k in pick]
    return tuple(pool)


def _check_curves(curves: Curves) -> None:
    if not isinstance(curves, Curves):
        raise InvalidArgumentError(f"curves must be a gpbo.early_stopping.Curves, got {type(curves).__name__}")
    if not curves.max_step > 0:  # NaN fails too
        raise InvalidArgumentError(f"curves.max_step must be a number > 0 (inf: not known), got {curves.max_step!r}")
