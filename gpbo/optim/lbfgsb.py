"""Batched projected L-BFGS-B that runs entirely on the tensors' device.

Every batch element ``b`` of ``x0 (*B, D)`` is an independent box-constrained
minimisation problem with its own L-BFGS history, active set, line search and
convergence flag. One iteration for all elements at once:

1. Active set: coordinates at a bound whose negative gradient points outward
   (and ``fixed`` coordinates) are held for the step.
2. Direction: L-BFGS (compact representation) restricted to the free
   coordinates by masking. Elements without usable curvature pairs, or whose
   direction is not a descent direction, take a projected steepest-descent
   step of unit length instead (SciPy's first-iteration rule).
3. Line search, two modes:
   - accelerators: ``n_steps`` step sizes ``t = max_step, max_step/2, ...``
     are projected onto the box and evaluated (values only) in ONE call of
     ``fun`` as an extra leading dim L; the gradient is then taken at the
     chosen step alone. Among the steps that satisfy Armijo on the projected
     step, the lowest value wins. No host sync.
   - CPU (``unit_first``): one trial step per iteration with its gradient,
     the unit step first; an element that fails Armijo retries 4x shorter
     in the next iteration. Reading the per-iteration flags is free on the
     CPU, and this needs one call of ``fun`` per iteration instead of two.
     With ``pack_rows``, ``fun`` is called only on the rows of the first
     batch dim that hold an unfinished element (see :func:`_evaluate_active`).
4. Convergence: projected-gradient inf-norm ``<= pgtol``, relative decrease
   ``<= ftol``, or no acceptable step even for tiny steepest-descent steps.
   Finished elements are frozen by a mask; the host only checks "all done"
   every ``check_every`` iterations (every iteration on the CPU).

On CUDA the iterations are replayed from a captured CUDA graph
(:mod:`gpbo.optim.graphed`): an iteration is hundreds of tiny kernels, and
launching them one by one from Python costs far more than running them.

A failed quasi-Newton line search clears that element's history (as SciPy
does); a failed steepest-descent search shrinks its next trial steps.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from gpbo.errors import InvalidArgumentError
from gpbo.optim.graphed import iterate
from gpbo.optim.lbfgs_history import direction, push_pair

__all__ = ["LbfgsbResult", "minimize_lbfgsb"]

_ARMIJO_C1 = 1e-4
_BACKTRACK = 0.25  # CPU mode: shrink factor of a failed trial step


@dataclass(frozen=True)
class LbfgsbResult:
    """Result of :func:`minimize_lbfgsb`.

    Attributes:
        x: ``(*B, D)`` final points (inside the box, detached).
        f: ``(*B,)`` final values; ``inf`` where ``fun(x0)`` was not finite.
        n_iter: ``(*B,)`` int64 iterations each element was active for.
        converged: ``(*B,)`` bool; False for elements that hit ``max_iter`` or
            whose starting value or gradient was not finite.
        graphed: whether the iterations were replayed from a CUDA graph.
    """

    x: Tensor
    f: Tensor
    n_iter: Tensor
    converged: Tensor
    graphed: bool = False


class _Objective(NamedTuple):
    """The function to minimise and, optionally, its fused value-and-gradient."""

    value: Callable[[Tensor], Tensor]
    value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]] | None


def _evaluate(obj: _Objective, x: Tensor, *, grad: bool = True) -> tuple[Tensor, Tensor]:
    """Values and gradients of ``obj``; non-finite points get ``f = inf, g = 0``.

    Args:
        obj: ``value`` maps ``(*L, *B, D)`` to ``(*L, *B)``, one value per
            element; ``value_and_grad``, if given, returns ``(f, g)`` without autograd.
        x: ``(*L, *B, D)`` points.
        grad: compute gradients (else ``g`` is zero and no graph is built).

    Returns:
        ``f (*L, *B)`` and ``g (*L, *B, D)``, both detached.
    """
    if grad and obj.value_and_grad is not None:
        f, g = obj.value_and_grad(x.detach())
        _check_shape(f, x)
        return _finite(f.detach().to(x.dtype), g.detach().to(x.dtype))
    fun = obj.value
    with torch.set_grad_enabled(grad):
        xr = x.detach().requires_grad_(True)
        f = fun(xr)
        _check_shape(f, x)
        if f.requires_grad:
            (g,) = torch.autograd.grad(f.sum(), xr, allow_unused=True)
            g = torch.zeros_like(x) if g is None else g
        else:
            g = torch.zeros_like(x)
    return _finite(f.detach().to(x.dtype), g.detach())


def _evaluate_active(obj: _Objective, x: Tensor, f: Tensor, g: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
    """``_evaluate`` on the unfinished elements only, packed along the first batch dim.

    The first batch dim must index independent problems that ``fun`` accepts
    in any number (the restarts of a multi-start search, ``x (R, *C, D)``).
    Each column ``c`` of ``*C`` moves its unfinished elements to the front;
    ``fun`` then sees ``(R', *C, D)`` with ``R'`` the largest count of
    unfinished elements in a column. Finished elements keep ``f`` and ``g``
    (their step is zero: they are masked). In a multi-start ascent most
    restarts converge in a quarter of the iterations the slowest one needs
    (measured: docs/decisions/0050-packed-restarts.md), and every call of
    ``fun`` used to cost all R rows.

    Args:
        x: ``(R, *C, D)`` trial points. f, g: ``(R, *C)``, ``(R, *C, D)``
            values and gradients kept where ``active`` is False.
        active: ``(R, *C)`` bool.

    Returns:
        ``f (R, *C)``, ``g (R, *C, D)``.
    """
    rows = int(active.sum(0).max())
    if rows == active.shape[0]:
        return _evaluate(obj, x)
    if rows == 0:  # every element finished (possible between "all done" checks)
        return f, g
    order = active.to(torch.int8).sort(dim=0, descending=True, stable=True).indices[:rows]  # (R', *C)
    index = order.unsqueeze(-1).expand(*order.shape, x.shape[-1])
    f_rows, g_rows = _evaluate(obj, x.gather(0, index))
    return f.scatter(0, order, f_rows), g.scatter(0, index, g_rows)


def _check_shape(f: object, x: Tensor) -> None:
    """Raise unless ``f`` is a tensor of shape ``x.shape[:-1]``."""
    if not isinstance(f, Tensor) or f.shape != x.shape[:-1]:
        shape = getattr(f, "shape", type(f).__name__)
        raise InvalidArgumentError(
            "fun must return a tensor with one value per batch element, shape "
            f"{tuple(x.shape[:-1])}; got {shape}"
        )


def _finite(f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """``f = inf, g = 0`` where ``f`` or ``g`` is not finite."""
    ok = torch.isfinite(f) & torch.isfinite(g).all(-1)
    f = torch.where(ok, f, torch.full_like(f, float("inf")))
    return f, torch.where(ok.unsqueeze(-1), g, torch.zeros_like(g))


def _project(x: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Clamp ``x (..., *B, D)`` into the box ``[lower, upper] (*B, D)``."""
    return torch.maximum(torch.minimum(x, upper), lower)


def _free_mask(
    x: Tensor, g: Tensor, lower: Tensor, upper: Tensor, movable: Tensor
) -> Tensor:
    """Coordinates that may move this step, ``(*B, D)`` bool.

    A coordinate is held if it is fixed or sits on a bound with ``-g`` pointing
    out of the box.
    """
    held = ((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0))
    return movable & ~held


def _projected_grad_norm(x: Tensor, g: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Inf-norm of SciPy's projected gradient ``x - P(x - g)``, shape ``(*B,)``."""
    return (x - _project(x - g, lower, upper)).abs().amax(-1)


_SearchResult = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def _armijo(x: Tensor, f: Tensor, g: Tensor, x_new: Tensor, f_new: Tensor) -> Tensor:
    """Sufficient decrease along the projected step ``x_new - x`` (``(..., *B)`` bool)."""
    dec = (g * (x_new - x)).sum(-1)  # first-order change, < 0 for descent
    return (dec < 0) & (f_new <= f + _ARMIJO_C1 * dec)


def _line_search(
    fun: _Objective,
    x: Tensor,
    f: Tensor,
    g: Tensor,
    d: Tensor,
    box: tuple[Tensor, Tensor],
    steps: Tensor,
    t0: Tensor | None,
    active: Tensor | None,
) -> _SearchResult:
    """The line search; see :func:`_backtrack` for arguments and results.

    With ``t0`` (``(*B,)``, the CPU mode) one step ``t0 * d`` is tried with its
    gradient, as SciPy tries the unit step first: one function call per
    iteration, on the ``active (*B,)`` elements' rows only when given. Where
    it fails Armijo, :func:`_step` shrinks ``t0`` and the element retries
    next iteration with the same direction, so backtracking is spread over
    iterations instead of costing a batched call for every element whenever
    one of them fails. Without ``t0`` (accelerators) all
    step sizes are tried in one batched call, with no host sync.
    """
    if t0 is None:
        return _backtrack(fun, x, f, g, d, box, steps)
    x1 = _project(x + t0.unsqueeze(-1) * d, *box)
    f1, g1 = _evaluate(fun, x1) if active is None else _evaluate_active(fun, x1, f, g, active)
    good = _armijo(x, f, g, x1, f1)
    return good, x1, f1, g1, (x1 - x).abs().amax(-1), torch.zeros_like(good)


def _backtrack(
    fun: _Objective,
    x: Tensor,
    f: Tensor,
    g: Tensor,
    d: Tensor,
    box: tuple[Tensor, Tensor],
    steps: Tensor,
) -> _SearchResult:
    """Batched projected backtracking: values at all step sizes in one call,
    then value and gradient at the chosen step only.

    Args:
        x, g, d: ``(*B, D)`` point, gradient, direction.
        f: ``(*B,)`` value at ``x``.
        box: ``(lower, upper)``, each ``(*B, D)``.
        steps: ``(L,)`` step sizes, largest first.

    Returns:
        ``ok (*B,)`` bool (some step passed Armijo), ``x_new (*B, D)``,
        ``f_new (*B,)``, ``g_new (*B, D)`` (the passing step with the lowest
        value, largest on ties), ``move (*B,)``, the inf-norm displacement
        of the largest trial step, and ``longest (*B,)``, whether the largest
        trial step was the one chosen.
    """
    shape = (-1,) + (1,) * x.dim()
    xc = _project(x + steps.view(shape) * d, *box)  # (L, *B, D)
    fc, _ = _evaluate(fun, xc, grad=False)  # (L, *B): values only, no graph
    ok = _armijo(x, f, g, xc, fc)  # (L, *B)
    best = torch.where(ok, fc, torch.full_like(fc, float("inf"))).argmin(0, keepdim=True)
    idx = best.unsqueeze(-1).expand((1,) + x.shape)  # (1, *B, D)
    x_new = xc.gather(0, idx).squeeze(0)
    # the gradient only at the chosen step: one backward of B, not L * B, elements
    f_new, g_new = _evaluate(fun, x_new)
    move = (xc[0] - x).abs().amax(-1)
    longest = best.squeeze(0) == 0  # the largest trial step won: the direction was too short
    return ok.any(0) & torch.isfinite(f_new), x_new, f_new, g_new, move, longest


class _State(NamedTuple):
    """Per-element optimiser state; ``x, g (*B, D)``, ``S, Y (m, *B, D)``,
    ``valid (m, *B)``, the rest ``(*B,)``."""

    x: Tensor
    f: Tensor
    g: Tensor
    S: Tensor  # L-BFGS history, see gpbo.optim.lbfgs_history
    Y: Tensor
    valid: Tensor
    sd_scale: Tensor  # length of the next steepest-descent trial direction
    t0: Tensor | None  # CPU mode: the next trial step (1 unless backtracking)
    n_iter: Tensor
    converged: Tensor
    done: Tensor  # converged, or unusable start: frozen


def _step(
    fun: _Objective,
    st: _State,
    box: tuple[Tensor, Tensor],
    movable: Tensor,
    steps: Tensor,
    pgtol: float,
    ftol: float,
    pack_rows: bool,
) -> _State:
    """One masked L-BFGS-B iteration for every element that is not done."""
    x, f, g, hist = st.x, st.f, st.g, (st.S, st.Y, st.valid)
    eps = torch.finfo(x.dtype).eps
    active = ~st.done
    free = _free_mask(x, g, *box, movable)
    d, use_qn = direction(x, g, free, box, hist, st.sd_scale)
    d = d * active.unsqueeze(-1).to(d.dtype)
    ok, x_new, f_new, g_new, move, longest = _line_search(fun, x, f, g, d, box, steps, st.t0,
                                                          active if pack_rows else None)
    acc, fail = ok & active, ~ok & active
    t0 = st.t0
    if t0 is not None:  # CPU mode: a failed trial step is retried 4x shorter first
        retry = fail & (t0 * _BACKTRACK > steps[-1])
        t0 = torch.where(retry, t0 * _BACKTRACK, torch.ones_like(t0))
        fail = fail & ~retry
    # curvature pair, skipped per element when s.y <= eps |y|^2
    s, y = x_new - x, g_new - g
    sy, yy = (s * y).sum(-1), (y * y).sum(-1)
    S, Y, valid = push_pair(hist, s, y, acc & (sy > eps * yy) & (sy > 0))
    # A failed search, a step through negative curvature, or one whose longest
    # trial step won (stale curvature makes the quasi-Newton step far too short)
    # clears the history: the next step is steepest descent of unit length,
    # which the line search can stretch or shrink.
    valid = valid & ~(fail | (acc & (longest | (sy <= 0)))).unsqueeze(0)
    sd_fail = fail & ~use_qn  # shrink the next steepest-descent trials below this round's
    # (kept while a CPU-mode element retries a shorter step; back to 1 on success)
    sd_scale = torch.where(sd_fail, st.sd_scale * 2.0 ** -steps.numel(), torch.where(acc, torch.ones_like(f), st.sd_scale))
    stalled = sd_fail & (move <= 10 * eps * (1 + x.abs().amax(-1)))
    scale = torch.maximum(torch.maximum(f.abs(), f_new.abs()), torch.ones_like(f))
    small_dec = acc & (f - f_new <= ftol * scale)
    x = torch.where(acc.unsqueeze(-1), x_new, x)
    f = torch.where(acc, f_new, f)
    g = torch.where(acc.unsqueeze(-1), g_new, g)
    pg_ok = _projected_grad_norm(x, g, *box) <= pgtol
    converged = st.converged | (active & (small_dec | stalled | pg_ok))
    n_iter = st.n_iter + active.to(torch.int64)
    return _State(x, f, g, S, Y, valid, sd_scale, t0, n_iter, converged, st.done | converged)


def _first(mask: Tensor) -> tuple[int, ...]:
    """Index of the first True entry of ``mask`` (error messages only)."""
    return tuple(int(i) for i in mask.nonzero()[0])


def _broadcast(name: str, bound: Tensor | float, x0: Tensor) -> Tensor:
    """``bound`` as a ``(*B, D)`` tensor of ``x0``'s dtype and device."""
    try:
        return torch.as_tensor(bound, dtype=x0.dtype, device=x0.device).detach().expand_as(x0)
    except (RuntimeError, TypeError, ValueError) as exc:
        got = tuple(bound.shape) if isinstance(bound, Tensor) else f"{bound!r:.80}"
        raise InvalidArgumentError(
            f"{name} must be a number or a tensor broadcastable to x0's shape {tuple(x0.shape)}; got {got}"
        ) from exc


def _prepare(
    x0: Tensor, lower: Tensor | float, upper: Tensor | float, fixed: Tensor | None
) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
    """Validate inputs; return ``x``, ``(lower, upper)`` and ``movable``, all ``(*B, D)``.

    Fixed coordinates get ``lower = upper = x0`` so that projection pins them.
    """
    if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.dim() < 1 or x0.shape[-1] < 1:
        got = f"{x0.dtype} tensor of shape {tuple(x0.shape)}" if isinstance(x0, Tensor) else f"{x0!r:.80}"
        raise InvalidArgumentError(f"x0 must be a floating tensor of shape (*B, D), D >= 1; got {got}")
    x0 = x0.detach()
    lo, hi = (_broadcast(name, bound, x0) for name, bound in (("lower", lower), ("upper", upper)))
    if not bool(torch.isfinite(x0).all()):
        index = _first(~torch.isfinite(x0))
        raise InvalidArgumentError(f"x0 must be finite; got x0{list(index)} = {x0[index].item()}")
    bad = (lo > hi) | lo.isnan() | hi.isnan()
    if bool(bad.any()):
        index = _first(bad)
        raise InvalidArgumentError(
            "lower must be <= upper everywhere (and not NaN); got "
            f"lower{list(index)} = {lo[index].item()}, upper{list(index)} = {hi[index].item()}"
        )
    movable = torch.ones_like(x0, dtype=torch.bool)
    if fixed is not None:
        movable = ~torch.as_tensor(fixed, device=x0.device).to(torch.bool).expand_as(x0)
    lo, hi = torch.where(movable, lo, x0), torch.where(movable, hi, x0)
    return _project(x0, lo, hi), (lo, hi), movable


def _check_options(**options: int) -> None:
    """``max_iter >= 0`` and the other counts ``>= 1``, all integers (not bools)."""
    for name, value in options.items():
        least = 0 if name == "max_iter" else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise InvalidArgumentError(f"{name} must be an int >= {least}; got {value!r}")


def minimize_lbfgsb(
    fun: Callable[[Tensor], Tensor],
    x0: Tensor,
    lower: Tensor | float,
    upper: Tensor | float,
    *,
    fixed: Tensor | None = None,
    max_iter: int = 200,
    history: int = 10,
    pgtol: float = 1e-6,
    ftol: float = 1e-12,
    check_every: int | None = None,
    n_steps: int = 12,
    max_step: float = 16.0,
    unit_first: bool | None = None,
    graph: bool | None = None,
    value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
    pack_rows: bool = False,
) -> LbfgsbResult:
    """Minimise independent box-constrained problems with batched L-BFGS-B.

    Args:
        fun: maps ``x (*L, *B, D)`` (any number of leading dims L, possibly
            none) to ``(*L, *B)``: one value per batch element, never summed.
            Gradients come from autograd. Non-finite values count as ``+inf``.
        x0: ``(*B, D)`` finite starting points; they set dtype and device.
            Free coordinates outside the box are first projected into it.
        lower, upper: broadcastable to ``x0``; ``-inf`` / ``inf`` allowed.
        fixed: optional bool, broadcastable to ``x0``: coordinates never moved
            (they keep their ``x0`` value even if outside the box).
        max_iter: iterations per element.
        history: L-BFGS memory ``m``.
        pgtol: stop when the projected-gradient inf-norm is ``<= pgtol``.
        ftol: stop when ``f_old - f_new <= ftol * max(|f_old|, |f_new|, 1)``.
        check_every: iterations between host checks of "all done". None:
            every iteration on the CPU, where reading a flag costs nothing,
            and every 10 on an accelerator, where it is a device sync.
        n_steps: number L of step sizes tried per line search.
        max_step: the largest, the others halving: ``max_step * 2**-k``.
        unit_first: try the unit step with its gradient before the batched
            search (see :func:`_line_search`). None: on the CPU only, where
            the per-iteration check it needs costs no device sync.
            Steps above 1 let an element whose quasi-Newton step is far too
            short (stale curvature after the active set changed) move in one
            iteration, as SciPy's extrapolating line search does.
        graph: replay the iterations from a captured CUDA graph (CUDA and
            ``unit_first=False`` only). None: on CUDA unless the environment
            variable ``GPBO_CUDA_GRAPHS`` is ``0``. ``fun`` must then be free
            of host syncs; if the capture fails, the call warns once and
            runs eagerly, with the same results.
        value_and_grad: optional ``x (*B, D) -> (f (*B,), g (*B, D))``, the
            values of ``fun`` and their gradients in closed form; used
            instead of autograd wherever a gradient is needed (``fun`` alone
            still evaluates the batched line search's trial steps).
        pack_rows: with ``unit_first``, call ``fun`` (and ``value_and_grad``)
            only on the rows of the first batch dim that hold an unfinished
            element, packed to the front (``x0`` must be ``(R, *C, D)``, and
            ``fun`` must accept any number of independent rows). The results
            are those of the unpacked run up to the rounding of ``fun`` on a
            smaller batch.

    Returns:
        :class:`LbfgsbResult` with detached ``x (*B, D)``, ``f (*B,)``,
        ``n_iter (*B,)``, ``converged (*B,)`` and ``graphed``.

    Raises:
        gpbo.errors.InvalidArgumentError: (a ``ValueError``) bad options,
            ``x0`` not a floating ``(*B, D)`` tensor or not finite,
            ``lower > upper`` or NaN bounds, or ``fun`` not returning shape
            ``(*L, *B)``.
    """
    on_cpu = isinstance(x0, Tensor) and x0.device.type == "cpu"
    check_every = (1 if on_cpu else 10) if check_every is None else check_every
    unit_first = on_cpu if unit_first is None else unit_first
    if graph is None:
        graph = not on_cpu and os.environ.get("GPBO_CUDA_GRAPHS", "1") != "0"
    graph = graph and not unit_first and isinstance(x0, Tensor) and x0.device.type == "cuda"
    _check_options(history=history, check_every=check_every, n_steps=n_steps, max_iter=max_iter)
    pack_rows = pack_rows and unit_first and isinstance(x0, Tensor) and x0.dim() > 1
    obj = _Objective(fun, value_and_grad)
    with torch.no_grad():
        x, box, movable = _prepare(x0, lower, upper, fixed)
        f, g = _evaluate(obj, x)
        steps = max_step * 2.0 ** -torch.arange(n_steps, device=x.device, dtype=x.dtype)  # (L,)
        S = torch.zeros((history,) + x.shape, dtype=x.dtype, device=x.device)  # (m, *B, D)
        valid = torch.zeros(S.shape[:-1], dtype=torch.bool, device=x.device)  # (m, *B)
        converged = torch.isfinite(f) & (_projected_grad_norm(x, g, *box) <= pgtol)
        n_iter = torch.zeros(f.shape, dtype=torch.int64, device=x.device)
        t0 = torch.ones_like(f) if unit_first else None
        st = _State(x, f, g, S, S.clone(), valid, torch.ones_like(f), t0, n_iter, converged,
                    converged | ~torch.isfinite(f))
        st, graphed = iterate(
            lambda s: _step(obj, s, box, movable, steps, pgtol, ftol, pack_rows), st, lambda s: s.done,
            max_iter=max_iter, check_every=check_every, graph=graph,
        )
    return LbfgsbResult(x=st.x, f=st.f, n_iter=st.n_iter, converged=st.converged, graphed=graphed)
