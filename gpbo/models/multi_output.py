"""One independent GP per outcome, batched with the problems: P x O surrogates in one model.

A study with O outcomes (objectives and constraints, see `gpbo.outcomes`)
gets one GP per outcome. Rather than a list of models, the (P, O) pairs are
folded into the batch of one batched surrogate (ExactGP or SVGP, already
independent per batch element): row ``p * O + o`` of the inner model is
outcome o of problem p, fitted on X[p] and Y[p, :, o] with its own
hyperparameters. So the fit, the posterior and the conditioning are single
batched calls, whatever O.

:class:`MultiOutputGP` is the thin view the multi-outcome acquisitions use:

- ``posterior(X (..., P, q, d))``: :class:`MultiPosterior`, mean (..., P, q, O)
  and one covariance per outcome (..., P, O, q, q) (outcomes independent);
- ``cross_posterior(X_b (P, nb, d))``: :class:`MultiOutputCross`, the
  posterior at new points jointly with a fixed baseline, per outcome;
- ``condition(X (P, k, d), Y (P, k, O))``;
- ``theta``: (P, O, d + 1) raw hyperparameters, which warm-start the next
  fit (as a model or as a tensor, e.g. ``torch.tensor(theta.tolist())``);
- ``outcome(o)``: the single-output surrogate of outcome o (a sliced
  ExactGP / SVGP with every capability of the inner model);
- ``lengthscale``: (P, d) the smallest lengthscale over outcomes, which
  preconditions the acquisition ascent (the fastest-varying outcome sets it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from gpbo.models.cross import cross_posterior_of
from gpbo.models.protocol import BaselineCross

__all__ = ["MultiOutputCross", "MultiOutputGP", "MultiPosterior", "fold_outcomes", "unfold_theta"]


def fold_outcomes(X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor]:
    """X (P, n, d), Y (P, n, O) -> X (P*O, n, d), Y (P*O, n), row p * O + o = outcome o of problem p."""
    P, n, O = Y.shape
    X_f = X.unsqueeze(1).expand(P, O, n, X.shape[-1]).reshape(P * O, n, X.shape[-1])
    return X_f, Y.transpose(1, 2).reshape(P * O, n)


def unfold_theta(theta: object, P: int, O: int) -> object:
    """A (P, O, k) theta tensor as the inner model's (P*O, k); anything else unchanged."""
    if isinstance(theta, Tensor) and theta.dim() == 3 and theta.shape[:2] == (P, O):
        return theta.reshape(P * O, theta.shape[-1])
    return theta


@dataclass(frozen=True)
class MultiPosterior:
    """Posterior of O independent outcomes at q points, in the (warped) outcome units.

    Attributes:
        mean: (..., P, q, O).
        covariance: (..., P, O, q, q), one joint covariance per outcome.
    """

    mean: Tensor
    covariance: Tensor

    @property
    def variance(self) -> Tensor:
        """(..., P, q, O) marginal variances."""
        return self.covariance.diagonal(dim1=-2, dim2=-1).transpose(-1, -2)


@dataclass(frozen=True)
class MultiOutputGP:
    """O outcomes of P problems as one batched surrogate (see the module docstring).

    Attributes:
        model: the inner batched surrogate over P * O rows (``ExactGP`` or ``SVGP``).
        n_outcomes: O.
        n_objectives: m; the inner model holds the outcomes after the first m
            (constraints, feasible iff <= 0) negated, so that every inner GP
            sees "higher is better" and its prior mean at the worst
            observation (the default) is pessimistic for constraints too:
            unexplored regions look infeasible rather than feasible. None: m = O.
    """

    model: object
    n_outcomes: int
    n_objectives: int | None = None

    def _signs(self, like: Tensor) -> Tensor:
        """(O,) +1 for the objectives, -1 for the constraints."""
        signs = torch.ones(self.n_outcomes, dtype=like.dtype, device=like.device)
        if self.n_objectives is not None:
            signs[self.n_objectives:] = -1.0
        return signs

    @property
    def n_problems(self) -> int:
        """P."""
        return self.model.X_train.shape[0] // self.n_outcomes

    def _fold_X(self, X: Tensor) -> Tensor:
        """(..., P, q, d) -> (..., P*O, q, d)."""
        *batch, P, q, d = X.shape
        return X.unsqueeze(-3).expand(*batch, P, self.n_outcomes, q, d).reshape(*batch, P * self.n_outcomes, q, d)

    def posterior(self, X: Tensor) -> MultiPosterior:
        """Joint posterior per outcome at X (..., P, q, d)."""
        post = self.model.posterior(self._fold_X(X))  # mean (..., P*O, q), cov (..., P*O, q, q)
        return MultiPosterior(mean=self._unfold_mean(post.mean), covariance=self._unfold_cov(post.covariance))

    def _unfold_mean(self, mean: Tensor) -> Tensor:
        """The inner model's mean (..., P*O, q) -> (..., P, q, O), constraints negated back."""
        return mean.reshape(*mean.shape[:-2], -1, self.n_outcomes, mean.shape[-1]).transpose(-1, -2) * self._signs(mean)

    def _unfold_cov(self, cov: Tensor) -> Tensor:
        """The inner model's covariance (..., P*O, a, b) -> (..., P, O, a, b)."""
        return cov.reshape(*cov.shape[:-3], -1, self.n_outcomes, *cov.shape[-2:])

    def cross_posterior(self, X_b: Tensor) -> MultiOutputCross:
        """The posterior at new points jointly with the baseline X_b (P, nb, d): the inner
        model's :class:`gpbo.models.protocol.CrossPosterior` if it has one, else the
        posterior of the concatenation (:func:`gpbo.models.cross.cross_posterior_of`)."""
        return MultiOutputCross(self, cross_posterior_of(self.model, self._fold_X(X_b)))

    def condition(self, X: Tensor, Y: Tensor, *, noiseless: bool = False) -> MultiOutputGP:
        """Add observations X (P, k, d), Y (P, k, O), keeping the hyperparameters."""
        X_f, Y_f = fold_outcomes(X, Y * self._signs(Y))
        return MultiOutputGP(self.model.condition(X_f, Y_f, noiseless=noiseless), self.n_outcomes, self.n_objectives)

    @property
    def theta(self) -> Tensor:
        """(P, O, k) raw hyperparameters of each outcome's GP (k = d + 1 for the exact GP)."""
        theta = self.model.theta
        return theta.reshape(-1, self.n_outcomes, theta.shape[-1])

    @property
    def lengthscale(self) -> Tensor:
        """(P, d) smallest lengthscale over the outcomes."""
        ls = self.model.lengthscale
        return ls.reshape(-1, self.n_outcomes, ls.shape[-1]).amin(-2)

    def outcome(self, o: int) -> object:
        """The single-output surrogate of outcome ``o`` for the P problems (inner rows o, o + O, ...).

        For a constraint (``o >= n_objectives``) it is the GP of the negated constraint.
        """
        step = self.n_outcomes
        changes = {
            f.name: getattr(self.model, f.name)[o::step]
            for f in dataclasses.fields(self.model)
            if isinstance(getattr(self.model, f.name), Tensor) and getattr(self.model, f.name).dim() >= 1
        }
        return dataclasses.replace(self.model, **changes)


@dataclass(frozen=True)
class MultiOutputCross:
    """The O outcomes' posterior at new points jointly with a fixed baseline (P, nb, d).

    Attributes:
        gp: the MultiOutputGP.
        inner: the inner model's :class:`gpbo.models.protocol.BaselineCross` of the folded baseline (P*O, nb, d).
    """

    gp: MultiOutputGP
    inner: BaselineCross

    def at(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """mean_x (..., P, q, O), cov_bx (..., P, O, nb, q), cov_xx (..., P, O, q, q) at X (..., P, q, d)."""
        mean, cov_bx, cov_xx = self.inner.at(self.gp._fold_X(X))
        return self.gp._unfold_mean(mean), self.gp._unfold_cov(cov_bx), self.gp._unfold_cov(cov_xx)
