"""L-BFGS curvature history and search direction, batched per element.

Used by :mod:`gpbo.optim.lbfgsb`. Each batch element keeps its own ring of
the last m curvature pairs ``(s, y)``, newest first.
"""

from __future__ import annotations

import torch
from torch import Tensor

History = tuple[Tensor, Tensor, Tensor]  # S, Y (m, *B, D) newest first; valid (m, *B) bool


# Batch elements from which the CPU takes the two-loop recursion: each batched
# product of the compact form costs a GEMM call per element there (m x D
# matrices), the loops' ~100 elementwise ops do not. 13 restarts x 64 problems:
# 0.8 ms against 3.6 ms per direction; 11 elements: 0.30 ms against 0.22 ms
# (docs/decisions/0048-two-loop-recursion-for-large-batches.md).
TWO_LOOP_MIN_BATCH = 64


def _quasi_newton(
    g: Tensor, free: Tensor, S: Tensor, Y: Tensor, valid: Tensor
) -> tuple[Tensor, Tensor]:
    """L-BFGS direction ``-H g`` on the free coordinates, batched.

    Pairs are restricted to the free coordinates; a pair whose restricted
    curvature ``s.y <= eps |y|^2`` is ignored for this step (per element), so the
    implied inverse Hessian is positive definite on the free subspace.

    ``H g`` is the same product either way, computed by the compact
    representation (small batches and accelerators) or the two-loop
    recursion (large batches on the CPU, :data:`TWO_LOOP_MIN_BATCH`).

    Args:
        g: ``(*B, D)`` gradient.
        free: ``(*B, D)`` bool free coordinates.
        S, Y: ``(m, *B, D)`` history, newest pair first.
        valid: ``(m, *B)`` bool, which history slots hold a pair.

    Returns:
        ``d (*B, D)`` direction (zero on held coordinates) and ``has (*B,)``
        bool, whether any pair was used (else ``d`` is plain ``-g``).
    """
    fm = free.to(g.dtype)
    Sz, Yz, gz = S * fm, Y * fm, g * fm  # (m, *B, D), (m, *B, D), (*B, D)
    sy, yy = (Sz * Yz).sum(-1), (Yz * Yz).sum(-1)  # (m, *B)
    use = valid & (sy > torch.finfo(g.dtype).eps * yy) & (yy > 0)
    has = use.any(0)
    newest = use.to(g.dtype).argmax(0, keepdim=True)  # (1, *B) first usable slot
    gamma = (sy / yy.clamp_min(torch.finfo(g.dtype).tiny)).gather(0, newest).squeeze(0)
    gamma = torch.where(has, gamma, torch.ones_like(gamma)).unsqueeze(-1)  # (*B, 1)
    if g.device.type == "cpu" and gz[..., 0].numel() >= TWO_LOOP_MIN_BATCH:
        return -_two_loop(gz, Sz, Yz, sy, use, gamma), has
    return -_compact(gz, Sz, Yz, use, gamma), has


def _compact(gz: Tensor, Sz: Tensor, Yz: Tensor, use: Tensor, gamma: Tensor) -> Tensor:
    """``H g`` by the compact representation of Byrd, Nocedal & Schnabel (1994, eq. 3.1).

    Equal to the two-loop recursion, in a fixed number of small batched
    matrix ops instead of ~5 ops per stored pair and loop:
    ``H g = gamma g + S p - gamma Y u``, ``u = R^-1 S^T g``,
    ``p = R^-T ((D + gamma Y^T Y) u - gamma Y^T g)``, with ``R`` the triangle of
    ``S^T Y`` (lower here: pairs are stored newest first) and ``D`` its diagonal.
    Shapes as :func:`_two_loop`.
    """
    gamma = gamma.unsqueeze(-1)  # (*B, 1, 1)
    um = use.to(gz.dtype).movedim(0, -1).unsqueeze(-1)  # (*B, m, 1)
    Sm, Ym = Sz.movedim(0, -2) * um, Yz.movedim(0, -2) * um  # (*B, m, D), unused pairs zeroed
    gz = gz.unsqueeze(-1)  # (*B, D, 1)
    A = Sm @ Ym.transpose(-1, -2)  # (*B, m, m), A_ij = s_i . y_j
    R = A.tril() + torch.diag_embed(1.0 - um.squeeze(-1))  # unused slots: identity rows
    u = torch.linalg.solve_triangular(R, Sm @ gz, upper=False)  # (*B, m, 1)
    inner = torch.diag_embed(A.diagonal(dim1=-2, dim2=-1)) + gamma * (Ym @ Ym.transpose(-1, -2))
    p = torch.linalg.solve_triangular(
        R.transpose(-1, -2), inner @ u - gamma * (Ym @ gz), upper=True
    )  # (*B, m, 1)
    Hg = gamma * gz + Sm.transpose(-1, -2) @ p - gamma * (Ym.transpose(-1, -2) @ u)  # (*B, D, 1)
    return Hg.squeeze(-1)


def _two_loop(gz: Tensor, Sz: Tensor, Yz: Tensor, sy: Tensor, use: Tensor, gamma: Tensor) -> Tensor:
    """``H g`` by the two-loop recursion (Nocedal & Wright 2006, Algorithm 7.4).

    Args:
        gz: ``(*B, D)`` gradient on the free coordinates.
        Sz, Yz: ``(m, *B, D)`` pairs on the free coordinates, newest first.
        sy: ``(m, *B)`` their curvatures; use: ``(m, *B)`` bool, pairs in use
            (the others get ``rho = 0`` and change nothing).
        gamma: ``(*B, 1)`` initial inverse-Hessian scale.

    Returns:
        ``(*B, D)`` the product.
    """
    rho = torch.where(use, 1.0 / torch.where(use, sy, torch.ones_like(sy)), torch.zeros_like(sy)).unsqueeze(-1)
    q, alpha = gz, []
    for i in range(Sz.shape[0]):  # newest pair first
        alpha.append(rho[i] * (Sz[i] * q).sum(-1, keepdim=True))  # (*B, 1)
        q = q - alpha[i] * Yz[i]
    r = gamma * q
    for i in reversed(range(Sz.shape[0])):
        r = r + (alpha[i] - rho[i] * (Yz[i] * r).sum(-1, keepdim=True)) * Sz[i]
    return r


def direction(
    x: Tensor, g: Tensor, free: Tensor, box: tuple[Tensor, Tensor], hist: History, sd_scale: Tensor
) -> tuple[Tensor, Tensor]:
    """Search direction per element: L-BFGS, or scaled projected steepest descent.

    Args:
        x, g, free: ``(*B, D)`` point, gradient, free mask.
        box: ``(lower, upper)``, each ``(*B, D)``.
        hist: L-BFGS history, see :func:`_quasi_newton`.
        sd_scale: ``(*B,)`` length of the steepest-descent direction.

    Returns:
        ``d (*B, D)`` and ``use_qn (*B,)`` bool (False: steepest descent).
    """
    lower, upper = box
    d, has = _quasi_newton(g, free, *hist)
    outward = ((x <= lower) & (d < 0)) | ((x >= upper) & (d > 0))
    d = torch.where(outward, torch.zeros_like(d), d)
    use_qn = has & ((g * d).sum(-1) < 0)
    gz = g * free.to(g.dtype)
    gnorm = torch.linalg.vector_norm(gz, dim=-1).clamp_min(torch.finfo(g.dtype).tiny)
    d_sd = -gz * (sd_scale / gnorm).unsqueeze(-1)
    return torch.where(use_qn.unsqueeze(-1), d, d_sd), use_qn


def push_pair(hist: History, s: Tensor, y: Tensor, push: Tensor) -> History:
    """Prepend ``(s, y) (*B, D)`` to the history of elements where ``push (*B,)``."""
    S, Y, valid = hist
    S_new = torch.cat([s.unsqueeze(0), S[:-1]])
    Y_new = torch.cat([y.unsqueeze(0), Y[:-1]])
    V_new = torch.cat([torch.ones_like(valid[:1]), valid[:-1]])
    p = push.unsqueeze(-1)
    return torch.where(p, S_new, S), torch.where(p, Y_new, Y), torch.where(push, V_new, valid)
