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
in the protocol's sense). Why complete trials only: the trials this rule
stopped are cut where the model thought they could not win, so fitting to
them teaches it that curves change little after that point, which makes it
more confident and stop more (measured on LCBench task 7593, whose curves
cross late). See docs/decisions/0030-model-based-early-stopping.md.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gpbo.early_stopping.calibration import upper_tail_scale
from gpbo.early_stopping.freeze_thaw import MIN_TAU, CurveData, FreezeThaw, curve_blocks, fit_theta
from gpbo.early_stopping.protocol import Curves
from gpbo.errors import FitError, InvalidArgumentError
from gpbo.threads import limited_cpu_threads
from gpbo.validation import check_int

__all__ = ["ModelBasedRule", "median_rule_stops"]

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


def _subsample(k: int, m: int) -> Tensor:
    """Indices (<= m,) of k reports, spread in log-index and always the last one."""
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
    if len(curves.steps[i]) == 0:
        return None
    return float(curves.steps[i][-1]), float(curves.values[i][-1])


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
    rerun_tol: float = 1e-3
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
        _check_curves(curves)
        with limited_cpu_threads(torch.device("cpu")):
            return self._should_stop(curves, index)

    def _should_stop(self, curves: Curves, index: int) -> bool:
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
        try:
            mean, std = self._posterior(curves)
            scale = self._scale(curves, last[0]) if self.recalibrate else 1.0
        except FitError:
            return median_rule_stops(curves, index, min_step=min_step, min_trials=self.min_complete)
        z = (float(mean[index]) - best) / max(scale * float(std[index]), 1e-12)
        return 0.5 * math.erfc(-z / math.sqrt(2.0)) < self.p_stop

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
            mean, std = self._posterior(curves)
        mean, std = mean.clone(), std.clone()
        for j in range(curves.n_trials):
            if (v := _final(curves, j)) is not None:
                mean[j], std[j] = v, 0.0
        return mean, std

    def _posterior(self, curves: Curves) -> tuple[Tensor, Tensor]:
        """(T,) mean and std of the latent final values, cached by the curves' content."""
        steps, values = self._pick(curves, range(curves.n_trials), self.max_steps)
        content = [(s.numpy().tobytes(), v.numpy().tobytes()) for s, v in zip(steps, values)]
        rows = _fit_rows(self, curves)
        key = "post" + _digest(curves.X, extra=(curves.max_step, rows), chunks=content)
        result = self._cache.get(key)
        if result is not None:
            return result
        if not any(len(s) for s in steps):
            last = torch.full((curves.n_trials,), math.nan, dtype=torch.float64)
            result = (last, torch.full_like(last, math.inf))
        else:
            fit_key, theta, y_mean, y_std = self._fit(curves, rows)
            G = self._blocks(fit_key, theta, (y_mean, y_std), curves.max_step, steps, values, content)
            post = FreezeThaw.from_blocks(theta, curves.X.to(torch.float64), G, y_mean, y_std)
            result = (post.mean, post.std)
        _store(self._cache, "post", key, result)
        return result

    def _scale(self, curves: Curves, step: float) -> float:
        """The std scale of a decision at ``step``: the largest backtest at ``step`` and at the later `_CHECKPOINTS`."""
        later = [f * curves.max_step for f in _CHECKPOINTS if f * curves.max_step > step]
        return max(self._backtests(curves, (step, *later)))

    def _backtests(self, curves: Curves, steps: tuple[float, ...]) -> list[float]:
        """The std scale at each of ``steps`` backtested on the complete trials of the fit set (cached per fit and step)."""
        fit_rows = _fit_rows(self, curves)
        rows = tuple(j for j in fit_rows if _final(curves, j) is not None)
        if len(rows) < 3:
            return [1.0] * len(steps)
        fit_key, theta, y_mean, y_std = self._fit(curves, fit_rows)
        table: dict[float, float] = self._cache.get("scale" + fit_key, {})
        missing = [t for t in steps if t not in table]
        if missing:
            picked, values = self._pick(curves, rows, self.max_steps)
            data = CurveData.pad(curves.X[list(rows)], picked, values, curves.max_step, (y_mean, y_std))
            for t in missing:
                table[t] = upper_tail_scale(theta, data.X, data.tau, data.y, data.mask, t / curves.max_step)
            _store(self._cache, "scale", "scale" + fit_key, table)
        return [table[t] for t in steps]

    def _fit(self, curves: Curves, rows: tuple[int, ...]) -> tuple[str, Tensor, float, float]:
        """(key, theta, y_mean, y_std) fitted on the fit set (cached by its content; refitted from scratch)."""
        steps, values = self._pick(curves, rows, self.max_fit_steps)
        X = curves.X[list(rows)]
        key = "fit" + _digest(X, *steps, *values, extra=(curves.max_step,))
        fitted = self._cache.get(key)
        if fitted is None:
            data = CurveData.pad(X, steps, values, curves.max_step)
            fitted = (key, fit_theta(data), data.y_mean, data.y_std)
            _store(self._cache, "fit", key, fitted)
        return fitted

    def _blocks(
        self, fit_key: str, theta: Tensor, standardisation: tuple[float, float], max_step: float,
        steps: list[Tensor], values: list[Tensor], content: list[tuple[bytes, bytes]],
    ) -> Tensor:
        """(T, 4, 4) each trial's factor (:func:`~gpbo.early_stopping.freeze_thaw.curve_blocks`).

        A trial's factor depends only on its own reports and the fit, so it is
        reused while both are unchanged (one new report refactors one trial).
        Trials are factored in groups of equal length, without padding, so a
        factor does not depend on which other trials were factored with it.
        """
        table: dict[int, tuple[tuple[bytes, bytes], Tensor]] = self._cache.get("blocks" + fit_key, {})
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
                y = (torch.stack([values[j] for j in group]) - standardisation[0]) / standardisation[1]
                with torch.no_grad():
                    G, _, ok = curve_blocks(theta, tau, y, torch.ones_like(tau, dtype=torch.bool))
                if not bool(ok.all()):
                    raise FitError("a trial's curve covariance is not positive definite")
            fresh.update({j: (content[j], G[n]) for n, j in enumerate(group)})
        _store(self._cache, "blocks", "blocks" + fit_key, fresh)
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
