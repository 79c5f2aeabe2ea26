"""A gpbo surrogate seen as a BoTorch ``Model``: posteriors, fantasies, one problem.

:class:`GpboBoTorchModel` wraps a gpbo :class:`~gpbo.models.protocol.Surrogate`
as a single-output BoTorch ``Model`` whose batch shape is ``(P,)``: BoTorch's
``X`` (batch x q x d) is gpbo's ``(..., P, q, d)`` with batch ``(..., P)``.

Conditioning (``condition_on_observations``, and so ``fantasize``, which
qKnowledgeGradient, qMultiFidelityKnowledgeGradient,
qNegIntegratedPosteriorVariance and qJointEntropySearch use) is Gaussian
conditioning of the surrogate's *joint* posterior: the posterior at ``X``
given observations ``Y_o`` at ``X_o`` is read off the joint posterior of
``(X_o, X)``::

    mean = m_x + S_xo (S_oo + N)^-1 (Y_o - m_o),   cov = S_xx - S_xo (S_oo + N)^-1 S_ox

which is exact for a GP and needs nothing of the surrogate beyond
``posterior`` (so it works for a researcher's own surrogate too). Each
evaluation costs one joint posterior of ``k + q`` points.

:meth:`GpboBoTorchModel.problem` gives the view of one problem (batch shape
``()``) for the BoTorch classes that need a single problem's ``X_baseline``,
candidate set or optimal inputs. It evaluates all P problems at the point and
keeps one: P times the posterior work, simple and right for any surrogate.
"""

from __future__ import annotations

import torch
from botorch.acquisition.objective import PosteriorTransform
from botorch.models.model import Model
from botorch.posteriors import GPyTorchPosterior, Posterior
from botorch.sampling import MCSampler
from gpytorch.distributions import MultivariateNormal
from linear_operator import to_linear_operator
from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.models.protocol import Surrogate, noise_variance, psd_cholesky

__all__ = ["GpboBoTorchModel"]

_CONDITION_NOISE_FLOOR = 1e-6  # relative to the prior variance, when the surrogate has no noise


class GpboBoTorchModel(Model):
    """A gpbo surrogate seen as a single-output BoTorch model of batch shape ``(P,)``.

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

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Mean (..., q) and covariance (..., q, q) at X (..., q, d), Y units (batch ends in P)."""
        post = self.surrogate.posterior(X)
        return post.mean, post.covariance

    def noise(self) -> Tensor:
        """(P,) observation-noise variances in Y units (NoiseAndScale capability)."""
        return noise_variance(self.surrogate, "observation_noise=True")

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
            X: (..., P, q, d) points ((..., q, d) for a :meth:`problem` view).
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
        mean, cov = self.joint(X)  # (..., q), (..., q, q)
        noise = self._observation_noise(observation_noise, mean)
        if noise is not None:
            cov = cov + torch.diag_embed(noise)
        # A lazy covariance: GPyTorch then factorises it with its jittered
        # psd_safe_cholesky when sampling, instead of failing on the singular
        # joint covariance of coinciding q points (common at the box's corners).
        result: Posterior = GPyTorchPosterior(MultivariateNormal(mean, to_linear_operator(cov)))
        if posterior_transform is not None:
            result = posterior_transform(result)
        return result

    def _observation_noise(self, observation_noise: bool | Tensor, mean: Tensor) -> Tensor | None:
        """(..., q) noise variances in Y units, or None."""
        if isinstance(observation_noise, Tensor):
            return observation_noise.squeeze(-1).to(mean).expand_as(mean)
        if not observation_noise:
            return None
        return self.noise().to(mean).unsqueeze(-1).expand_as(mean)

    def problem(self, p: int) -> GpboBoTorchModel:
        """The view of problem ``p``: batch shape ``()``, ``X`` (..., q, d)."""
        return _ProblemView(self, p)

    def condition_on_observations(self, X: Tensor, Y: Tensor, **kwargs: object) -> GpboBoTorchModel:
        """The model given ``Y`` (..., k, 1) observed at ``X`` (..., k, d) (Gaussian conditioning).

        Args:
            X: (..., k, d) observed points; Y: (..., k, 1) their values in Y
                units (leading dims broadcast against X's, e.g. fantasies).
            noise: optional (..., k, 1) observation-noise variances; default
                the surrogate's noise (or a floor for a surrogate without one).
        """
        noise = kwargs.get("noise")
        return _Conditioned(self, X, Y.squeeze(-1), None if noise is None else noise.squeeze(-1))

    def fantasize(
        self, X: Tensor, sampler: MCSampler, observation_noise: Tensor | None = None, **kwargs: object
    ) -> GpboBoTorchModel:
        """Model conditioned on ``sampler``'s draws of Y at ``X`` (..., k, d): batch (S, ...)."""
        post = self.posterior(X, observation_noise=True if observation_noise is None else observation_noise)
        Y = sampler(post)  # (S, ..., k, 1)
        return self.condition_on_observations(X, Y, noise=observation_noise)

    def _default_noise(self, mean: Tensor, prior_var: Tensor) -> Tensor:
        """(..., k) noise for conditioning: the surrogate's, else a floor."""
        try:
            return self.noise().to(mean).unsqueeze(-1).expand_as(mean)
        except InvalidArgumentError:
            return _CONDITION_NOISE_FLOOR * prior_var.detach()


class _ProblemView(GpboBoTorchModel):
    """Problem ``p`` of a P-problem model: ``X`` (..., q, d), batch shape ``()``."""

    def __init__(self, parent: GpboBoTorchModel, p: int) -> None:
        super().__init__(parent.surrogate)
        object.__setattr__(self, "_parent", parent)
        self.index = p

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        P = self._parent.batch_shape[-1]  # type: ignore[attr-defined]
        X_all = X.unsqueeze(-3).expand(*X.shape[:-2], P, *X.shape[-2:])  # (..., P, q, d)
        mean, cov = self._parent.joint(X_all)  # type: ignore[attr-defined]
        return mean[..., self.index, :], cov[..., self.index, :, :]

    def noise(self) -> Tensor:
        return self._parent.noise()[self.index]  # type: ignore[attr-defined]


class _Conditioned(GpboBoTorchModel):
    """``parent`` conditioned on Y_o (..., k) at X_o (..., k, d), by its joint posterior."""

    def __init__(self, parent: GpboBoTorchModel, X_o: Tensor, Y_o: Tensor, noise: Tensor | None) -> None:
        super().__init__(parent.surrogate)
        object.__setattr__(self, "_parent", parent)
        self.X_o, self.Y_o, self.noise_o = X_o, Y_o, noise

    @property
    def batch_shape(self) -> torch.Size:
        parent = self._parent.batch_shape  # type: ignore[attr-defined]
        return torch.broadcast_shapes(self.X_o.shape[:-2], self.Y_o.shape[:-1], parent)

    def noise(self) -> Tensor:
        return self._parent.noise()  # type: ignore[attr-defined]

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        k = self.X_o.shape[-2]
        batch = torch.broadcast_shapes(X.shape[:-2], self.X_o.shape[:-2], self.Y_o.shape[:-1])
        X_all = torch.cat([self.X_o.expand(*batch, *self.X_o.shape[-2:]), X.expand(*batch, *X.shape[-2:])], -2)
        mean, cov = self._parent.joint(X_all)  # type: ignore[attr-defined]  # (..., k + q), (..., k + q, k + q)
        m_o, m_x = mean[..., :k], mean[..., k:]
        S_oo, S_ox, S_xx = cov[..., :k, :k], cov[..., :k, k:], cov[..., k:, k:]
        if self.noise_o is None:
            noise = self._parent._default_noise(m_o, S_oo.diagonal(dim1=-2, dim2=-1))  # type: ignore[attr-defined]
        else:
            noise = self.noise_o.to(m_o).expand_as(m_o)
        L = psd_cholesky(S_oo + torch.diag_embed(noise))  # (..., k, k)
        A = torch.linalg.solve_triangular(L, S_ox, upper=False)  # (..., k, q)
        r = torch.linalg.solve_triangular(L, (self.Y_o - m_o).unsqueeze(-1), upper=False)  # (..., k, 1)
        return m_x + (A.transpose(-1, -2) @ r).squeeze(-1), S_xx - A.transpose(-1, -2) @ A

    def _default_noise(self, mean: Tensor, prior_var: Tensor) -> Tensor:
        return self._parent._default_noise(mean, prior_var)  # type: ignore[attr-defined]
