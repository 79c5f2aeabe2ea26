"""gpbo.acquisition.botorch: fantasies by Gaussian conditioning, one-shot capability, bad input."""

from __future__ import annotations

import pytest
import torch
from botorch.acquisition import qKnowledgeGradient
from botorch.sampling import SobolQMCNormalSampler

from gpbo.acquisition import BoTorchAcquisition, GpboBoTorchModel, augmented_q, botorch, extract_candidates
from gpbo.errors import InvalidArgumentError, UnsupportedAcquisitionError
from gpbo.models.exact import ExactGP


def _gp(P: int = 2, n: int = 8, d: int = 2) -> ExactGP:
    g = torch.Generator().manual_seed(1)
    X = torch.rand(P, n, d, generator=g, dtype=torch.float64)
    return ExactGP.fit(X, torch.sin(4 * X).sum(-1))


def test_condition_on_observations_equals_refitting_with_the_points() -> None:
    gp = _gp()
    g = torch.Generator().manual_seed(2)
    X_new = torch.rand(2, 3, 2, generator=g, dtype=torch.float64)
    Y_new = torch.randn(2, 3, generator=g, dtype=torch.float64)
    X_test = torch.rand(5, 2, 4, 2, generator=g, dtype=torch.float64)
    ours = GpboBoTorchModel(gp).condition_on_observations(X_new, Y_new.unsqueeze(-1)).posterior(X_test)
    ref = gp.condition(X_new, Y_new).posterior(X_test)
    torch.testing.assert_close(ours.mean.squeeze(-1), ref.mean)
    torch.testing.assert_close(ours.mvn.covariance_matrix, ref.covariance, atol=1e-9, rtol=1e-6)


def test_fantasize_adds_the_sample_dim() -> None:
    model = GpboBoTorchModel(_gp())
    sampler = SobolQMCNormalSampler(torch.Size([3]), seed=0)
    fantasy = model.fantasize(torch.rand(7, 2, 1, 2, dtype=torch.float64), sampler)
    assert fantasy.batch_shape == (3, 7, 2)
    assert fantasy.posterior(torch.rand(3, 7, 2, 1, 2, dtype=torch.float64)).mean.shape == (3, 7, 2, 1, 1)


def test_problem_view_is_one_problem() -> None:
    gp = _gp(P=3)
    X = torch.rand(4, 2, 2, dtype=torch.float64)
    view = GpboBoTorchModel(gp).problem(1)
    assert view.batch_shape == torch.Size([])
    torch.testing.assert_close(view.posterior(X).mean.squeeze(-1), gp.posterior(X.unsqueeze(-3).expand(4, 3, 2, 2)).mean[:, 1])


def test_one_shot_capability() -> None:
    acq = botorch("qKnowledgeGradient", num_fantasies=5)
    assert acq.joint and augmented_q(acq, 2) == 7
    X = torch.rand(3, 7, 2)
    assert torch.equal(extract_candidates(acq, X, 2), X[:, :2])
    assert augmented_q(botorch("qLogExpectedImprovement"), 2) == 2


def test_factory_returning_a_one_shot_class_must_declare_its_fantasies() -> None:
    from gpbo.acquisition import AcquisitionContext

    gp = _gp()
    ctx = AcquisitionContext.from_data(gp, gp.X_train, gp.Y_train * gp.y_std[:, None] + gp.y_mean[:, None])
    acq = BoTorchAcquisition(lambda model, c: qKnowledgeGradient(model, num_fantasies=4))
    with pytest.raises(UnsupportedAcquisitionError, match=r"qKnowledgeGradient .* num_fantasies=4"):
        acq(ctx)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("qNoSuchThing",), {}, InvalidArgumentError, "unknown BoTorch acquisition 'qNoSuchThing'"),
        ((int,), {}, InvalidArgumentError, "concrete botorch AcquisitionFunction"),
        (("qKnowledgeGradient",), {"betta": 1}, InvalidArgumentError, r"takes no argument\(s\) \['betta'\]"),
        (("qMultiFidelityKnowledgeGradient",), {}, InvalidArgumentError, "fidelity_dim"),
        (("qLogExpectedImprovement",), {"num_samples": 0}, InvalidArgumentError, "num_samples must be an int >= 1"),
        (("qKnowledgeGradient",), {"num_fantasies": "a"}, InvalidArgumentError, "num_fantasies must be an int >= 1"),
        (("qMultiFidelityKnowledgeGradient",), {"fidelity_dim": "a"}, InvalidArgumentError, "fidelity_dim must be an int"),
        (("qMultiFidelityKnowledgeGradient",), {"fidelity_dim": 1, "target_fidelity": 5.0}, InvalidArgumentError,
         r"target_fidelity must be in \[0, 1\], got 5.0"),
        (("qMultiFidelityKnowledgeGradient",), {"fidelity_dim": 1, "fixed_cost": -1}, InvalidArgumentError,
         "fixed_cost must be a finite number > 0"),
        (("qLogExpectedImprovement",), {"per_problem": "yes"}, InvalidArgumentError, "per_problem must be None or a bool"),
        (("qPredictiveEntropySearch",), {}, UnsupportedAcquisitionError, "qPredictiveEntropySearch cannot run"),
    ],
)
def test_bad_input(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        botorch(*args, **kwargs)
