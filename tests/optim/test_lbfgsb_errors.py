"""minimize_lbfgsb's bad-input errors are gpbo.errors types naming the bad value."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from gpbo.errors import GpboError, InvalidArgumentError
from gpbo.optim import minimize_lbfgsb


def _sq(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(-1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_iter=-1), "max_iter must be an int >= 0; got -1"),
        (dict(max_iter=2.5), "max_iter must be an int >= 0; got 2.5"),
        (dict(history=0), "history must be an int >= 1; got 0"),
        (dict(check_every=0), "check_every must be an int >= 1; got 0"),
        (dict(n_steps=True), "n_steps must be an int >= 1; got True"),
        (dict(x0=torch.zeros(2, 3, dtype=torch.int64)),
         "x0 must be a floating tensor of shape (*B, D), D >= 1; got torch.int64 tensor of shape (2, 3)"),
        (dict(x0=torch.zeros(2, 0)), "D >= 1; got torch.float32 tensor of shape (2, 0)"),
        (dict(x0=[[0.0, 1.0]]), "x0 must be a floating tensor of shape (*B, D), D >= 1; got [[0.0, 1.0]]"),
        (dict(x0=torch.tensor([[0.0, 0.0, 0.0], [0.0, math.nan, 0.0]])), "x0 must be finite; got x0[1, 1] = nan"),
        (dict(lower=torch.tensor([0.0, 2.0, 0.0]), upper=1.0),
         "lower must be <= upper everywhere (and not NaN); got lower[0, 1] = 2.0, upper[0, 1] = 1.0"),
        (dict(upper=torch.tensor([1.0, 1.0, math.nan])), "got lower[0, 2] = -1.0, upper[0, 2] = nan"),
        (dict(lower=torch.zeros(4)), "lower must be a number or a tensor broadcastable to x0's shape (2, 3); got (4,)"),
        (dict(upper="high"), "upper must be a number or a tensor broadcastable to x0's shape (2, 3); got 'high'"),
    ],
)
def test_bad_input_raises_invalid_argument_naming_the_value(kwargs, message):
    args = dict(x0=torch.zeros(2, 3), lower=-1.0, upper=1.0) | kwargs
    with pytest.raises(InvalidArgumentError, match=re.escape(message)) as info:
        minimize_lbfgsb(_sq, **args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, GpboError)


@pytest.mark.parametrize(
    "fun, got",
    [
        (lambda x: (x * x).sum(), "got torch.Size([])"),
        (lambda x: x, "got torch.Size([2, 3])"),
        (lambda x: 1.0, "got float"),
    ],
)
def test_fun_with_the_wrong_output_raises_invalid_argument(fun, got):
    message = f"fun must return a tensor with one value per batch element, shape (2,); {got}"
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        minimize_lbfgsb(fun, torch.zeros(2, 3), -1.0, 1.0)


def test_integer_like_options_are_accepted():
    out = minimize_lbfgsb(_sq, torch.ones(2, 3, dtype=torch.float64), -1.0, 1.0,
                          max_iter=np.int64(50), history=np.int32(5))
    assert bool(out.converged.all())
