"""Use any BoTorch acquisition function on a gpbo surrogate.

:class:`GpboBoTorchModel` wraps a gpbo :class:`~gpbo.models.protocol.Surrogate`
as a single-output BoTorch ``Model`` whose batch shape is ``(P,)``.
:class:`BoTorchAcquisition` turns a factory ``(model, ctx) -> AcquisitionFunction``
into a gpbo acquisition. BoTorch's ``X`` is ``batch x q x d``; gpbo's
``(..., P, q, d)`` is such a tensor with batch ``(..., P)``, and BoTorch's
output ``(..., P)`` is gpbo's. Example::

    from botorch.acquisition import qUpperConfidenceBound
    from botorch.sampling import SobolQMCNormalSampler

    def make_qucb(model, ctx):
        seed = gpbo.acquisition.draw_seed(ctx.generator)  # reproducible samples
        sampler = SobolQMCNormalSampler(torch.Size([256]), seed=seed)
        return qUpperConfidenceBound(model, beta=0.2, sampler=sampler, X_pending=...)

    suggest(X, Y, q=4, acquisition=BoTorchAcquisition(make_qucb))

BoTorch's analytic functions need a per-problem ``best_f`` shaped ``(P, 1)``
(``ctx.best_f.unsqueeze(-1)``) to broadcast against their ``(..., P, 1)``
means; the MC ones take ``(P,)``.

BoTorch's MC samplers share base samples across batch dims, so P problems
see the same draws, as gpbo's own acquisitions do. The factory owns the
seed: without ``seed=``, BoTorch seeds its samplers from the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.objective import PosteriorTransform
from botorch.models.model import Model
from botorch.posteriors import GPyTorchPosterior, Posterior
from gpytorch.distributions import MultivariateNormal
from linear_operator import to_linear_operator
from torch import Tensor

from gpbo.acquisition.protocol import AcquisitionContext, AcquisitionFn
from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import Surrogate, noise_variance

__all__ = ["GpboBoTorchModel", "BoTorchAcquisition", "BoTorchFactory"]

BoTorchFactory = Callable[[Model, AcquisitionContext], AcquisitionFunction]


class GpboBoTorchModel(Model):
    """A gpbo surrogate seen as a single-output BoTorch model.

    The surrogate is held outside ``nn.Module`` registration, so BoTorch's
    ``.to(X)`` calls never move or cast it.

    Args:
        surrogate: fitted gpbo surrogate with ``posterior(X (..., P, q, d))``.
    """

    def __init__(self, surrogate: Surrogate) -> None:
        super().__init__()
        object.__setattr__(self, "_surrogate", surrogate)

    @property
    def surrogate(self) -> Surrogate:
        """The wrapped gpbo surrogate."""
        return self._surrogate  # type: ignore[attr-defined]

    @property
    def num_outputs(self) -> int:
        """Always 1."""
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        """``(P,)`` when the surrogate has ``X_train (P, n, d)``, else ``()``."""
        X_train = getattr(self.surrogate, "X_train", None)
        return X_train.shape[:-2] if isinstance(X_train, Tensor) else torch.Size([])

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: PosteriorTransform | None = None,
        **kwargs: object,
    ) -> Posterior:
        """Joint posterior at ``X`` (..., P, q, d) as a ``GPyTorchPosterior``.

        Args:
            X: (..., P, q, d) points.
            output_indices: None or ``[0]`` (single output).
            observation_noise: add the surrogate's noise (needs the
                :class:`~gpbo.models.protocol.NoiseAndScale` capability) or a
                given (..., q, 1) noise tensor in Y units to the diagonal.
            posterior_transform: optional BoTorch posterior transform.

        Returns:
            Posterior with mean (..., P, q, 1) and covariance (..., P, q, q).

        Raises:
            InvalidArgumentError: on other output indices, or observation
                noise requested from a surrogate that has none.
        """
        if output_indices is not None and list(output_indices) != [0]:
            raise InvalidArgumentError(f"the gpbo model has one output; got {output_indices=}")
        post = self.surrogate.posterior(X)
        cov = post.covariance  # (..., P, q, q)
        noise = self._observation_noise(observation_noise, post.mean)
        if noise is not None:
            cov = cov + torch.diag_embed(noise)
        # A lazy covariance: GPyTorch then factorises it with its jittered
        # psd_safe_cholesky when sampling, instead of failing on the singular
        # joint covariance of coinciding q points (common at the box's corners).
        result: Posterior = GPyTorchPosterior(MultivariateNormal(post.mean, to_linear_operator(cov)))
        if posterior_transform is not None:
            result = posterior_transform(result)
        return result

    def _observation_noise(self, observation_noise: bool | Tensor, mean: Tensor) -> Tensor | None:
        """(..., P, q) noise variances in Y units, or None."""
        if isinstance(observation_noise, Tensor):
            return observation_noise.squeeze(-1).to(mean).expand_as(mean)
        if not observation_noise:
            return None
        noise = noise_variance(self.surrogate, "observation_noise=True")  # (P,)
        return noise.to(mean).unsqueeze(-1).expand_as(mean)


class BoTorchAcquisition:
    """Adapter: a BoTorch ``AcquisitionFunction`` factory as a gpbo acquisition.

    Args:
        factory: ``factory(model, ctx) -> AcquisitionFunction`` where ``model``
            is a :class:`GpboBoTorchModel` around ``ctx.model``. Use
            ``ctx.best_f`` (P,), ``ctx.X`` (P, n, d) (e.g. as ``X_baseline``)
            and ``ctx.pending`` (``X_pending``) as needed.
        joint: True (default) when the BoTorch function scores whole
            q-batches (the q* MC family); False for analytic, q = 1 ones so
            the engine builds batches greedily.

    Raises:
        InvalidArgumentError: if ``factory`` is not callable.
    """

    def __init__(self, factory: BoTorchFactory, *, joint: bool = True) -> None:
        if not callable(factory):
            raise InvalidArgumentError(
                f"BoTorchAcquisition needs a callable factory(model, ctx), got {factory!r}"
            )
        self.factory = factory
        self.joint = bool(joint)

    def __repr__(self) -> str:
        return f"BoTorchAcquisition({getattr(self.factory, '__name__', self.factory)!r})"

    def __call__(self, ctx: AcquisitionContext) -> AcquisitionFn:
        """Build ``X (..., P, q, d) -> (..., P)`` calling the BoTorch function."""
        acqf = self.factory(GpboBoTorchModel(ctx.model), ctx)
        if not isinstance(acqf, AcquisitionFunction):
            raise InvalidArgumentError(
                f"the BoTorchAcquisition factory must return a botorch AcquisitionFunction, "
                f"got {type(acqf).__name__}"
            )

        def botorch_acq(X: Tensor) -> Tensor:
            if X.dim() < 3:
                raise InvalidArgumentError(
                    f"expected X of shape (..., P, q, d), got {tuple(X.shape)}"
                )
            return acqf(X)

        return botorch_acq
