"""What a surrogate model offers: the base protocol and small capabilities.

A surrogate is anything with ``posterior(X)`` returning a :class:`Posterior`
(joint Gaussian over the ``q`` points of each problem) and ``condition(X, Y)``
returning a new surrogate with extra observations and the same
hyperparameters (:class:`Surrogate`). Shapes follow DESIGN.md: ``X`` is
``(..., P, q, d)``, the posterior mean ``(..., P, q)`` and covariance
``(..., P, q, q)``, in the original units of Y. LogEI, LogPI, UCB, the
posterior mean and qLogNEI need nothing more.

Some acquisitions need more, each written as one small capability protocol
that a model may follow in addition (gpbo's ExactGP and SVGP follow all
three; the ExactGP also :class:`PointNoise`, the SVGP :class:`PathwiseUpdate`):

- :class:`NoiseAndScale`: ``noise`` and ``y_std``, so the observation noise
  in Y units is known (augmented EI, and so the default ``"log_aei_ucb"``;
  the BoTorch adapter's ``observation_noise=True``).
- :class:`Lengthscales`: ``lengthscale``, the per-dim scales that
  precondition the acquisition ascent (optional: without it the ascent is
  not preconditioned; see :func:`lengthscale_of`).
- :class:`ThompsonFeatures`: the kernel, its hyperparameters and the
  training data, from which Thompson sampling draws pathwise samples;
  :class:`PointNoise` and :class:`PathwiseUpdate` refine it.

The multi-outcome Monte-Carlo acquisitions sample new points jointly with a
fixed baseline; a model with :class:`CrossPosterior` precomputes the
baseline's part once (without it they take the posterior of the
concatenation, :class:`gpbo.models.cross.ConcatenatedCross`). A model with
:class:`MeanOnly` gives its posterior mean without the variance's cost, which
the augmented EI's incumbent search over many observations uses.

An acquisition that needs a capability checks it with :func:`require` when
it is built from a context, so a model that lacks it fails at once, with an
error that names the capability, the model and what needed it.

A researcher's own surrogate enters through a :class:`SurrogateFactory`
(``gpbo.Settings(model=factory)``): an object whose ``fit(X, Y, *,
categorical, seed, warm_start)`` returns a fitted :class:`Surrogate`; the
engine calls it where it would fit gpbo's GP (:func:`check_factory`
validates it when the settings are built).

:func:`psd_cholesky` is the jitter-fallback Cholesky used by
:meth:`Posterior.rsample` and by the Monte-Carlo acquisitions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.kernel import SpectralKernel

__all__ = [
    "BaselineCross",
    "CrossPosterior",
    "Lengthscales",
    "MeanOnly",
    "NoiseAndScale",
    "PathwiseUpdate",
    "PointNoise",
    "PointValueAndGrad",
    "Posterior",
    "Surrogate",
    "SurrogateFactory",
    "ThompsonFeatures",
    "capability_members",
    "check_factory",
    "lengthscale_of",
    "noise_variance",
    "psd_cholesky",
    "require",
]

# Relative diagonal jitter (times the largest diagonal entry) of the first and
# of the fallback factorisation. Float32 needs more: its epsilon is ~1e-7.
_JITTER = {torch.float64: (1e-12, 1e-6), torch.float32: (1e-7, 1e-3)}


def psd_cholesky(A: Tensor) -> Tensor:
    """Lower Cholesky factor of symmetric PSD matrices, with a jitter fallback.

    Every matrix is factorised with a tiny relative jitter; the matrices that
    fail are factorised again with a larger one (``_JITTER``). Both passes
    always run, so there is no host synchronisation (cheap for the small
    ``q x q`` matrices this is used on). Only the chosen pass is
    differentiated. Matrices that fail both passes give NaN factors, which
    optimisers treat as rejected points.

    Args:
        A: (..., m, m) symmetric positive semi-definite matrices.

    Returns:
        (..., m, m) lower-triangular factors ``L`` with ``L L^T ~= A``.
    """
    small, large = _JITTER.get(A.dtype, _JITTER[torch.float32])
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    diag_max = A.diagonal(dim1=-2, dim2=-1).amax(-1, keepdim=True).unsqueeze(-1)
    scale = diag_max.detach().clamp_min(torch.finfo(A.dtype).tiny)  # (..., 1, 1)
    with torch.no_grad():
        _, info = torch.linalg.cholesky_ex(A + small * scale * eye)
    failed = (info > 0)[..., None, None]  # (..., 1, 1)
    jitter = torch.where(failed, large * scale, small * scale)
    L, info = torch.linalg.cholesky_ex(A + jitter * eye)
    return torch.where((info > 0)[..., None, None], torch.full_like(L, float("nan")), L)


@dataclass(frozen=True)
class Posterior:
    """Joint Gaussian posterior of the latent function, in original Y units.

    Attributes:
        mean: (..., P, q) posterior means.
        covariance: (..., P, q, q) posterior covariances.
    """

    mean: Tensor
    covariance: Tensor

    @classmethod
    def from_standardised(cls, mean: Tensor, covariance: Tensor, y_mean: Tensor, y_std: Tensor) -> Posterior:
        """Undo per-problem outcome standardisation ``Y = y_std * Y_s + y_mean``.

        Args:
            mean: (..., P, q) and covariance: (..., P, q, q), standardised.
            y_mean, y_std: (P,) the standardisation.
        """
        scale = y_std.unsqueeze(-1)  # (P, 1)
        return cls(mean=mean * scale + y_mean.unsqueeze(-1), covariance=covariance * scale.unsqueeze(-1).pow(2))

    @property
    def variance(self) -> Tensor:
        """(..., P, q) marginal variances (the covariance diagonal)."""
        return self.covariance.diagonal(dim1=-2, dim2=-1)

    def rsample(self, base_samples: Tensor) -> Tensor:
        """Reparameterised samples ``mean + L z`` with ``L L^T = covariance``.

        Args:
            base_samples: (S, ..., P, q) standard normals. Any of the middle
                dims may be 1 or missing (e.g. ``(S, q)`` shares one draw
                across problems and batch dims); they broadcast.

        Returns:
            (S, ..., P, q) samples, differentiable w.r.t. mean and covariance.

        Raises:
            InvalidArgumentError: if ``base_samples`` has more dims than (S, ..., P, q).
        """
        z = base_samples
        missing = self.mean.dim() + 1 - z.dim()
        if missing < 0:
            raise InvalidArgumentError(
                f"base_samples has {z.dim()} dims; expected at most "
                f"{self.mean.dim() + 1} for a posterior of shape {tuple(self.mean.shape)}"
            )
        z = z.reshape(z.shape[:1] + (1,) * missing + z.shape[1:]).to(self.mean)
        L = psd_cholesky(self.covariance)  # (..., P, q, q)
        return self.mean + (L @ z.unsqueeze(-1)).squeeze(-1)  # (S, ..., P, q)


@runtime_checkable
class Surrogate(Protocol):
    """The base protocol: what every acquisition may use from a fitted model.

    LogEI, LogPI, UCB, PosteriorMean and qLogNEI need nothing more; the
    engine's kriging believer uses ``condition`` to add each chosen point.
    """

    def posterior(self, X: Tensor) -> Posterior:
        """Joint posterior at ``X`` (..., P, q, d): mean (..., P, q), cov (..., P, q, q)."""
        ...

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> Surrogate:
        """A copy with observations ``X`` (P, k, d), ``Y`` (P, k) added, same hypers.

        ``noiseless``: the new points get the noise floor (believed fantasies).
        """
        ...


@runtime_checkable
class SurrogateFactory(Protocol):
    """How a custom surrogate is fitted: ``gpbo.Settings(model=factory)``.

    The engine calls ``factory.fit`` once per suggestion, where it would fit
    gpbo's own GP, with the outcomes after the output warp
    (``Settings.warp``), to be maximised. A class whose ``fit`` is a
    classmethod is itself a factory. Raising :class:`gpbo.errors.FitError`
    makes the `gpbo.Optimizer` fall back to Sobol points for that ask.
    """

    def fit(
        self, X: Tensor, Y: Tensor, *, categorical: tuple[int, ...], seed: int, warm_start: Surrogate | None
    ) -> Surrogate:
        """Fit a surrogate to P problems at once.

        Args:
            X: (P, n, d) inputs in the unit cube.
            Y: (P, n) finite outcomes (warped when ``Settings.warp`` is on).
            categorical: encoded dims that are categorical (only equality matters).
            seed: seed of any random draw of the fit.
            warm_start: the model this factory returned for the previous
                suggestion of the same problems, or None (a first fit,
                ``Settings.warm_start=False``, or the facade, which does
                not keep a custom model between asks).

        Returns:
            A fitted :class:`Surrogate` (plus whatever capabilities the
            acquisition needs, e.g. :class:`NoiseAndScale` for the default).
        """
        ...


_FIT_KEYWORDS = ("categorical", "seed", "warm_start")


def check_factory(factory: object) -> SurrogateFactory:
    """``factory``, checked to follow :class:`SurrogateFactory` as far as it can be without calling it.

    Checks that ``factory.fit`` exists, is callable and accepts
    ``(X, Y, *, categorical, seed, warm_start)``.

    Raises:
        InvalidArgumentError: naming the factory and what it lacks.
    """
    where = (
        f"model must be one of ('auto', 'exact', 'svgp') or a surrogate factory with "
        f"fit(X, Y, *, {', '.join(_FIT_KEYWORDS)}) -> Surrogate (gpbo.models.protocol.SurrogateFactory); "
        f"got {type(factory).__name__} {factory!r:.120}"
    )
    fit = getattr(factory, "fit", None)
    if not callable(fit):
        raise InvalidArgumentError(f"{where}, which has no fit method")
    try:
        signature = inspect.signature(fit)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return factory  # type: ignore[return-value]
    params = signature.parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        missing = [k for k in _FIT_KEYWORDS if k not in params or params[k].kind is inspect.Parameter.POSITIONAL_ONLY]
        if missing:
            raise InvalidArgumentError(f"{where}, whose fit lacks the keyword argument(s) {', '.join(missing)}")
    try:
        signature.bind(None, None, categorical=(), seed=0, warm_start=None)
    except TypeError as exc:
        hint = " (pass an instance, not the class?)" if isinstance(factory, type) else ""
        raise InvalidArgumentError(f"{where}, whose fit cannot be called so: {exc}{hint}") from None
    return factory  # type: ignore[return-value]


@runtime_checkable
class NoiseAndScale(Protocol):
    """Capability: the observation noise, for acquisitions that discount it.

    The model works on standardised outcomes ``Y_s = (Y - y_mean) / y_std``;
    its noise variance in Y units is ``noise * y_std**2``
    (:func:`noise_variance`). Needed by ``LogAugmentedEI`` (and so by the
    default ``"log_aei_ucb"``) and by the BoTorch adapter's
    ``observation_noise=True``.

    Attributes:
        noise: (P,) observation-noise variance of each problem, standardised units.
        y_std: (P,) outcome scale of each problem (Y units per standardised unit).
    """

    noise: Tensor
    y_std: Tensor


@runtime_checkable
class Lengthscales(Protocol):
    """Capability: per-dim lengthscales, which precondition the acquisition ascent.

    Optional for every acquisition: the engine reads it with
    :func:`lengthscale_of`, and without it the ascent runs unpreconditioned.

    Attributes:
        lengthscale: (P, d) positive lengthscales of each problem's kernel,
            in unit-cube coordinates.
    """

    lengthscale: Tensor


@runtime_checkable
class ThompsonFeatures(NoiseAndScale, Lengthscales, Protocol):
    """Capability: the prior and data behind the posterior, for Thompson sampling.

    Contract: the model's posterior is that of a zero-mean GP on standardised
    outcomes whose prior covariance is ``kernel``: ``outputscale *
    base_kernel(r²)``, an ARD kernel with ``lengthscale`` that uses the
    indicator distance ``1[x != x'] / lengthscale**2`` on the ``categorical``
    dims, observed at ``X_train`` with targets ``Y_train`` and Gaussian noise
    ``noise`` (:class:`PointNoise` refines it per point;
    :class:`PathwiseUpdate` replaces the exact update for sparse models).
    Thompson sampling draws prior paths from random Fourier features of the
    spectral measure of ``base_kernel``
    (:class:`gpbo.models.kernel.SpectralKernel`: gpbo's Matérn-5/2 and RBF)
    and updates them with Matheron's rule, so ``kernel`` must be exactly
    that kernel, or the samples come from another posterior.

    Attributes:
        lengthscale: (P, d) (from :class:`Lengthscales`).
        noise, y_std: (P,) (from :class:`NoiseAndScale`).
        outputscale: (P,) signal variance, standardised units.
        X_train: (P, n, d) training inputs in the unit cube.
        Y_train: (P, n) standardised targets, ``Y = Y_train * y_std + y_mean``.
        y_mean: (P,) the standardisation's offset.
        categorical: encoded dims with the indicator distance.
        base_kernel: the correlation of the squared scaled distance
            (:class:`gpbo.models.kernel.SpectralKernel`, e.g. ``Matern52()``, ``RBF()``).
    """

    outputscale: Tensor
    X_train: Tensor
    Y_train: Tensor
    y_mean: Tensor
    categorical: tuple[int, ...]
    base_kernel: SpectralKernel

    def kernel(self, X1: Tensor, X2: Tensor) -> Tensor:
        """Prior covariance of X1 (..., P, a, d) and X2 (P, b, d): (..., P, a, b), standardised."""
        ...


@runtime_checkable
class PointNoise(Protocol):
    """Optional refinement of :class:`ThompsonFeatures`: noise per training point.

    Attributes:
        point_noise: (P, n) noise variance of each training point, standardised
            units (gpbo's ExactGP: ``noise`` for observations, the floor for a
            believed fantasy). Without it every training point has ``noise``.
    """

    point_noise: Tensor


@runtime_checkable
class PathwiseUpdate(Protocol):
    """Optional refinement of :class:`ThompsonFeatures` for sparse models.

    A sample path is ``f = g + kernel(., B) v``: the prior path ``g`` plus an
    update carried on the basis points ``B`` (the SVGP: its inducing points)
    instead of the exact update on ``X_train``.

    Attributes:
        pathwise_basis: (P, b, d) the basis points ``B``.
    """

    pathwise_basis: Tensor

    def pathwise_weights(self, prior_at_basis: Tensor, eps: Tensor) -> Tensor:
        """Weights ``v`` (P, s, b) from prior path values at B (P, s, b) and normals eps (s, b)."""
        ...


@runtime_checkable
class MeanOnly(Protocol):
    """Capability: the posterior mean alone, without the variance's cost.

    Optional: `gpbo.acquisition.analytic.effective_best` uses it to rank many
    observed points by their mean and compute the variance only at the best
    ones (an SVGP's variance costs O(M^2) a point, its mean O(M)).
    """

    def posterior_mean(self, X: Tensor) -> Tensor:
        """(..., P, q) posterior mean at X (..., P, q, d), in Y units."""
        ...


@runtime_checkable
class PointValueAndGrad(Protocol):
    """Optional capability: a function of the one-point posterior with its
    gradient in closed form, for the acquisition ascent's hot path.

    One-point acquisitions (LogEI, augmented EI, UCB) offer a fused
    value-and-gradient when the model has this; the ascent then needs no
    autograd (docs/decisions/0040-fused-one-point-acquisition-gradient.md).
    """

    def point_value_and_grad(
        self, X: Tensor, outer: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor]:
        """``outer(mean, var)`` at X (..., P, 1, d): value (..., P), gradient (..., P, 1, d).

        ``outer`` maps the posterior mean and variance (..., P), Y units, to the
        value and its partial derivatives with respect to each.
        """
        ...


@runtime_checkable
class BaselineCross(Protocol):
    """The posterior at new points jointly with a fixed baseline X_b (P, nb, d).

    Shapes in the model's posterior layout (Y units): a single-output model
    returns mean_x (..., P, q), cov_bx (..., P, nb, q), cov_xx (..., P, q, q);
    a multi-output one mean_x (..., P, q, O), cov_bx (..., P, O, nb, q),
    cov_xx (..., P, O, q, q).
    """

    def at(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(mean_x, cov_bx, cov_xx)`` at X (..., P, q, d): Cov(f(X_b), f(X)) and Cov(f(X), f(X)); differentiable in X."""
        ...


@runtime_checkable
class CrossPosterior(Protocol):
    """Optional capability: the joint posterior of a fixed baseline and new
    points, with the baseline-only work (its kernel with the training data)
    done once instead of per call (the multi-outcome Monte-Carlo acquisitions).
    """

    def cross_posterior(self, X_b: Tensor) -> BaselineCross:
        """The :class:`BaselineCross` of the baseline X_b (P, nb, d)."""
        ...


_Capability = TypeVar("_Capability")


def capability_members(capability: type) -> tuple[str, ...]:
    """The attribute and method names a capability protocol asks for, its bases' first."""
    names: dict[str, None] = {}
    for base in reversed(capability.__mro__):
        if base is object or base.__module__ == "typing":  # Protocol, Generic
            continue
        names.update(dict.fromkeys(vars(base).get("__annotations__", {})))
        names.update(dict.fromkeys(
            name for name, value in vars(base).items() if callable(value) and not name.startswith("_")
        ))
    return tuple(names)


def require(model: object, capability: type[_Capability], who: str) -> _Capability:
    """``model``, checked to offer ``capability`` (one of this module's protocols).

    Acquisitions call it when they are built from a context, not per
    evaluation. Only the presence of the members is checked; their shapes
    are the capability's contract.

    Args:
        model: the fitted surrogate.
        capability: e.g. :class:`NoiseAndScale` or :class:`ThompsonFeatures`.
        who: what needs it, for the error message (e.g. ``"LogAugmentedEI"``).

    Returns:
        ``model`` itself, typed as the capability.

    Raises:
        InvalidArgumentError: naming the capability, its members, the model's
            type and the members it lacks.
    """
    members = capability_members(capability)
    missing = [name for name in members if not hasattr(model, name)]
    if missing:
        raise InvalidArgumentError(
            f"{who} needs a surrogate with the {capability.__name__} capability "
            f"(attributes {', '.join(members)}; see gpbo.models.protocol.{capability.__name__}); "
            f"{type(model).__name__} lacks {', '.join(missing)}"
        )
    return model  # type: ignore[return-value]


def lengthscale_of(model: object) -> Tensor | None:
    """(P, d) lengthscales that precondition the acquisition ascent, or None.

    None when the model does not offer :class:`Lengthscales` (the ascent is
    then not preconditioned).

    Raises:
        InvalidArgumentError: if the model's ``lengthscale`` is not a 2-dim tensor.
    """
    if not isinstance(model, Lengthscales):
        return None
    scale = model.lengthscale
    if not isinstance(scale, Tensor) or scale.dim() != 2:
        shape = tuple(scale.shape) if isinstance(scale, Tensor) else type(scale).__name__
        raise InvalidArgumentError(
            f"{type(model).__name__}.lengthscale must be a (P, d) tensor (the Lengthscales "
            f"capability preconditions the acquisition ascent), got {shape}"
        )
    return scale


def noise_variance(model: object, who: str) -> Tensor:
    """(P,) observation-noise variance of a fitted model, in the units of Y.

    Args:
        model: the fitted surrogate, with the :class:`NoiseAndScale` capability.
        who: what needs the noise, for the error message.

    Raises:
        InvalidArgumentError: if the model lacks :class:`NoiseAndScale`.
    """
    checked = require(model, NoiseAndScale, who)
    return checked.noise * checked.y_std.pow(2)
