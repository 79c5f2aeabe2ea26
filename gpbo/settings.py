"""One frozen, validated object for everything that shapes a suggestion.

``Settings`` is built (and so validated) once, where input enters: by the
user, by `gpbo.Optimizer` / `gpbo.minimize` (``settings=``) or by
`gpbo.engine.suggest`. It is then passed down unchanged; the engine is the
one place that reads its fields and hands each layer what it needs (the
model its kernel, the search its sizes). An ablation is a settings value::

    gpbo.Settings(kernel="rbf")                  # squared-exponential kernel
    gpbo.Settings(n_anchors=0, warm_start=False) # no anchored restarts, cold fits

Every field is a plain value (str, number, bool, torch dtype) except
``acquisition``, which may also be an acquisition object, and ``model``,
which may also be a surrogate factory (a researcher's own model, see
`gpbo.models.protocol.SurrogateFactory`)::

    gpbo.Settings(model=MyFactory(), acquisition="log_ei")

`to_dict` / `from_dict` give the JSON form kept in ``state_dict`` and in
storage (a custom acquisition, factory or stopping rule is saved as None;
early stopping switched off is saved as ``"none"``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch

from gpbo.acquisition import AUTO
from gpbo.acquisition import resolve as resolve_acquisition
from gpbo.acquisition.protocol import Acquisition
from gpbo.early_stopping import DEFAULT_RULE, StoppingRule
from gpbo.early_stopping import check as check_stopping_rule
from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import SurrogateFactory, check_factory
from gpbo.outcomes import Outcomes
from gpbo.validation import check_bool, check_choice, check_device, check_dtype, check_int

__all__ = ["Settings", "as_settings"]

MODELS = ("auto", "exact", "svgp")
KERNELS = ("matern52", "rbf")
NOISE_MODES = ("learned", "deterministic")
PRIOR_MEANS = ("worst", "average")
WARPS = ("yeo-johnson", "none")
SOLVER_PATHS = ("auto", "accelerator")
Q_BATCH = ("joint", "sequential")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What shapes a suggestion. Every field is checked at construction.

    Attributes:
        acquisition: A registry name or an object following
            `gpbo.acquisition.protocol.Acquisition`. The default ``"auto"``
            resolves against ``outcomes`` (`gpbo.acquisition.resolve`): one
            objective: ``"log_aei_ucb"`` (augmented EI and UCB taking turns,
            see `gpbo.acquisition.portfolio`); one objective and constraints:
            LogEI and UCB taking turns plus the log probability of
            feasibility; 2-4 objectives: ``"qlog_nehvi"``, and with
            constraints qLogNEHVI with a qLogNParEGO turn every third point
            (`gpbo.acquisition.constrained_multi_objective_default`); 5 or
            more: ``"qlog_parego"``. A name that cannot serve ``outcomes`` (e.g.
            ``"log_ei"`` for 2 objectives) is refused here.
        model: Surrogate: ``"auto"`` (exact GP up to
            ``gpbo.models.select.SVGP_THRESHOLD`` observations, SVGP above),
            ``"exact"``, ``"svgp"``, or a researcher's own surrogate factory:
            an object with ``fit(X (P, n, d), Y (P, n), *, categorical,
            seed, warm_start) -> Surrogate``
            (`gpbo.models.protocol.SurrogateFactory`). The engine calls it
            instead of fitting gpbo's GP, on the warped outcomes; the model
            it returns needs ``posterior`` and ``condition``
            (`gpbo.models.protocol.Surrogate`) and whatever capability the
            acquisition asks for (the default ``"log_aei_ucb"``:
            ``NoiseAndScale``; ``"log_ei"``, ``"ucb"``, ``"qlog_nei"``:
            nothing more). ``kernel``, ``noise``, ``prior_mean``,
            ``solver_path`` and ``svgp_adam_steps`` are gpbo's models' and
            are not passed to it.
        kernel: The GP's stationary kernel, ARD with categorical dims:
            ``"matern52"`` (default) or ``"rbf"``.
        noise: ``"learned"`` (the GP learns the observation noise, with a
            floor) or ``"deterministic"`` (noise fixed at the floor).
        prior_mean: The GP's constant prior mean: the ``"worst"`` observation
            (default, docs/decisions/0003-prior-mean-at-worst.md) or the
            ``"average"`` one.
        warp: Output warp before the fit: ``"yeo-johnson"`` or ``"none"``.
        warp_fence: Outcomes beyond the quartiles -/+ this many interquartile
            ranges are pulled in logarithmically before the warp; None pulls
            nothing in.
        n_initial: Trials drawn from the Sobol design before the GP takes
            over (facade only); None is ``max(5, d + 1)``.
        n_raw: Raw Sobol samples of the acquisition search.
        n_restarts: Local ascents per problem.
        n_anchors: Best observations whose neighbourhoods seed extra ascents.
        q_batch: How an acquisition that scores whole q-batches (qLogNEHVI,
            qLogNParEGO, qLogNEI, BoTorch's MC acquisitions) builds a batch
            of q > 1: ``"sequential"`` (default: one point at a time, each
            pick joining the pending points, as BoTorch's
            ``optimize_acqf(sequential=True)``) or ``"joint"`` (all q points
            optimised together; docs/decisions/0043-sequential-q-batches.md).
            One-point acquisitions always build batches by kriging believer,
            one-shot ones (knowledge gradients) always jointly.
        warm_start: Start each GP fit from the previous hyperparameters.
        precondition: Scale the acquisition ascent by the GP's lengthscales.
        freeze_lengthscale: Hold, during the ascent, every dim whose
            lengthscale exceeds this (unit-cube units); None holds none.
        solver_path: ``"auto"`` (the L-BFGS-B path that suits the device) or
            ``"accelerator"`` (the GPU's path, also on a CPU).
        svgp_adam_steps: Minibatch Adam steps on the SVGP's inducing points
            and variational state after its closed-form initialisation.
        device: Where the facade runs the engine; None is the CPU. The
            engine itself runs where its tensors are.
        dtype: torch.float64 (default) or torch.float32 (facade only, as device).
        outcomes: How the engine reads the columns of Y (P, n, O): objectives
            to maximise, then constraints feasible iff <= 0 (see
            `gpbo.outcomes.Outcomes`). The facade sets it from the user's
            ``objectives=`` / ``constraints=``; the default is one objective.
        early_stopping: The rule that stops a trial from its reported
            learning curve (`gpbo.Optimizer.should_stop`): ``"model"``
            (default, the model-based rule), ``"asha"``, ``"hyperband"``,
            ``"median"`` (`gpbo.early_stopping`), None or ``"none"`` (off), or
            an object with ``should_stop(curves, index) -> bool``
            (`gpbo.early_stopping.StoppingRule`). An objective that never
            reports is not affected.
        resume_stopped: When the search proposes again the configuration of
            a trial that was stopped early (within the rule's ``rerun_tol``,
            by default 1e-3 in every encoded coordinate), continue that
            trial instead of starting a new one: `gpbo.Optimizer.ask` hands
            it out RUNNING again, with its id, params and curve, and the
            objective resumes after its
            ``last_step`` (from a checkpoint; under `gpbo.minimize` an
            objective that restarts replays the recorded steps). A continued
            trial runs to ``max_step``: the search and the stopping rule
            disagree about it, and its whole curve settles it. Off by
            default: an ask/tell loop that restarts every trial from step 1
            would report a step that goes backwards.

    Raises:
        InvalidArgumentError: naming the field, the bad value and what was expected.
    """

    acquisition: str | Acquisition = AUTO
    model: str | SurrogateFactory = "auto"
    kernel: str = "matern52"
    noise: str = "learned"
    prior_mean: str = "worst"
    warp: str = "yeo-johnson"
    warp_fence: float | None = 3.0
    n_initial: int | None = None
    n_raw: int = 512
    n_restarts: int = 10
    n_anchors: int = 3
    q_batch: str = "sequential"
    warm_start: bool = True
    precondition: bool = True
    freeze_lengthscale: float | None = None
    solver_path: str = "auto"
    svgp_adam_steps: int = 0
    device: torch.device | str | None = None
    dtype: torch.dtype = torch.float64
    outcomes: Outcomes = Outcomes()
    early_stopping: str | StoppingRule | None = DEFAULT_RULE
    resume_stopped: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            check_choice("model", self.model, MODELS)
        else:
            check_factory(self.model)  # raises InvalidArgumentError naming what the factory lacks
        for name, choices in (
            ("kernel", KERNELS), ("noise", NOISE_MODES), ("prior_mean", PRIOR_MEANS),
            ("warp", WARPS), ("solver_path", SOLVER_PATHS), ("q_batch", Q_BATCH),
        ):
            check_choice(name, getattr(self, name), choices)
        for name, low in (("n_raw", 1), ("n_restarts", 1), ("n_anchors", 0), ("svgp_adam_steps", 0)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))  # a numpy int as int (JSON)
        if self.n_initial is not None:
            object.__setattr__(self, "n_initial", check_int("n_initial", self.n_initial, 0))
        for name in ("warm_start", "precondition", "resume_stopped"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        for name in ("warp_fence", "freeze_lengthscale"):
            object.__setattr__(self, name, _positive_or_none(name, getattr(self, name)))
        object.__setattr__(self, "device", check_device(self.device))
        dtype = _DTYPES.get(self.dtype, self.dtype) if isinstance(self.dtype, str) else self.dtype
        object.__setattr__(self, "dtype", check_dtype(dtype))
        outcomes = _outcomes(self.outcomes)
        if not isinstance(outcomes, Outcomes):
            raise InvalidArgumentError(f"outcomes must be a gpbo.outcomes.Outcomes or a dict of its fields, got {outcomes!r:.200}")
        object.__setattr__(self, "outcomes", outcomes)
        resolve_acquisition(self.acquisition, outcomes)  # an unknown name, or one that cannot serve the outcomes
        object.__setattr__(self, "early_stopping", check_stopping_rule(self.early_stopping))

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and validated)."""
        _check_fields(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: a custom acquisition object or surrogate factory is saved as None."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["acquisition"] = self.acquisition if isinstance(self.acquisition, str) else None
        out["model"] = self.model if isinstance(self.model, str) else None
        out["device"] = str(self.device)
        out["dtype"] = str(self.dtype).removeprefix("torch.")
        out["outcomes"] = dataclasses.asdict(self.outcomes)
        rule = self.early_stopping
        out["early_stopping"] = "none" if rule is None else rule if isinstance(rule, str) else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Inverse of `to_dict` (a None acquisition, model or early_stopping means the default)."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"Settings.from_dict needs a dict of fields, got {type(data).__name__} {data!r:.200}")
        data = dict(data)
        for name in ("acquisition", "model", "early_stopping"):
            if data.get(name) is None:
                data.pop(name, None)
        _check_fields(data)
        return cls(**data)


def as_settings(value: Settings | Mapping[str, Any] | None) -> Settings:
    """``value`` as `Settings`: itself, built from a dict of fields, or the defaults for None."""
    if value is None:
        return Settings()
    if isinstance(value, Settings):
        return value
    if isinstance(value, Mapping):
        _check_fields(value)
        return Settings(**value)
    raise InvalidArgumentError(f"settings must be a gpbo.Settings, a dict of its fields or None, got {type(value).__name__} {value!r:.200}")


def _outcomes(value: Any) -> Any:
    """A dict of `Outcomes` fields as `Outcomes` (its errors as gpbo errors); anything else unchanged."""
    if not isinstance(value, Mapping):
        return value
    fields = {f.name for f in dataclasses.fields(Outcomes)}
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise InvalidArgumentError(f"outcomes: unknown field {unknown[0]!r}; the fields are {sorted(fields)}")
    return Outcomes(**value)


def _check_fields(values: Mapping[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(Settings)}
    odd = [k for k in values if not isinstance(k, str)]
    if odd:
        raise InvalidArgumentError(f"settings names must be str, got {odd[0]!r}; the fields of gpbo.Settings are {sorted(known)}")
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidArgumentError(f"unknown settings {unknown}; the fields of gpbo.Settings are {sorted(known)}")


def _positive_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be None or a finite number > 0, got {type(value).__name__} {value!r}")
    return float(value)
