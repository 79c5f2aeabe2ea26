"""fold / unfold / per_problem_matmul against plain broadcasting."""

from __future__ import annotations

import pytest
import torch

from gpbo.models.per_problem import fold, per_problem_matmul, unfold


@pytest.mark.parametrize("lead", [(), (5,), (3, 4)])
def test_per_problem_matmul_equals_broadcasting(lead: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    A = torch.randn(*lead, 6, 2, 7, generator=g, dtype=torch.float64)
    B = torch.randn(6, 7, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(per_problem_matmul(A, B), A @ B)


@pytest.mark.parametrize("lead", [(), (5,), (3, 4)])
def test_fold_groups_rows_by_problem_and_unfold_inverts_it(lead: tuple[int, ...]) -> None:
    A = torch.randn(*lead, 6, 2, 7, dtype=torch.float64)
    F = fold(A)  # (P, B * a, k)
    assert F.shape == (6, 2 * int(torch.tensor(lead).prod()) if lead else 2, 7)
    for p in range(6):  # every row of problem p is one of A's rows of problem p
        torch.testing.assert_close(F[p], A[..., p, :, :].reshape(-1, 7))
    torch.testing.assert_close(unfold(F, A.shape[:-3], 2), A)
