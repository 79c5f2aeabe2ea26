"""Benchmark problems with known optimum values (all are minimised).

Each :class:`Problem` carries a light description of its parameters so that it
can build a :class:`gpbo.Space` (``problem.space()``) and also be sampled for
random search without gpbo (``problem.sample(rng)``).

- ``branin``: 2 reals, minimum 0.397887 (BoTorch's definition).
- ``hartmann6``: 6 reals in [0, 1], minimum -3.32237 (BoTorch's definition).
- ``mixed``: 2 categoricals, 1 integer, 2 reals; minimum exactly 0.0, checked
  numerically by :func:`brute_force_optimum` (enumerate the categoricals and
  the integer, minimise over the reals with a grid plus SciPy L-BFGS-B).
- ``ackley10``, ``rosenbrock4``, ``styblinski_tang8``: BoTorch's definitions
  on their standard boxes.
- ``<name>_noisy`` for the five synthetic functions: the same function, with
  ``noise_std`` = 1% of its range on the box (max - min; the max estimated from
  65536 scrambled-Sobol points plus the 2^d corners, see ``_RANGE``). The
  benchmark runner adds the noise and scores regret on the noiseless value.
- ``branin_diverge``, ``hartmann6_diverge`` (the ``diverging`` suite): the
  function plus a divergence, like a training run whose learning rate is too
  high. In the top 15% of the first parameter's range the value grows by
  10^3 to 10^9 (log-linearly along that parameter), so a few outcomes lie
  orders of magnitude above the rest. The optimum is unchanged (it lies
  outside the region for Hartmann6 and for two of Branin's three minima).

The sweep's other problems (Bayesmark-style HPO, the MLP on digits) live in
:mod:`benchmarks.hpo` and :mod:`benchmarks.mlp_task`; :func:`get` finds them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from botorch.test_functions.synthetic import Ackley, Branin, Hartmann, Rosenbrock, StyblinskiTang

__all__ = [
    "Cat",
    "DIVERGING",
    "Int",
    "Problem",
    "Real",
    "branin",
    "branin_fn",
    "brute_force_optimum",
    "get",
    "hartmann6",
    "hartmann6_fn",
    "hartmann6_tensor",
    "mixed",
    "mixed_fn",
    "mixed_value",
    "PROBLEMS",
    "SYNTHETIC",
    "ackley10",
    "rosenbrock4",
    "styblinski_tang8",
]


# --------------------------------------------------------------------------- #
# Parameter descriptions (independent of gpbo, so random search needs nothing) #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Real:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Cat:
    choices: tuple[Any, ...]


ParamSpec = Real | Int | Cat


def _sample_param(spec: ParamSpec, rng: np.random.Generator) -> Any:
    if isinstance(spec, Cat):
        return spec.choices[int(rng.integers(len(spec.choices)))]
    if isinstance(spec, Int):
        if spec.log:
            lo, hi = math.log(spec.low - 0.5 + 1e-9), math.log(spec.high + 0.5)
            return int(min(spec.high, max(spec.low, round(math.exp(rng.uniform(lo, hi))))))
        return int(rng.integers(spec.low, spec.high + 1))
    if spec.log:
        return float(math.exp(rng.uniform(math.log(spec.low), math.log(spec.high))))
    return float(rng.uniform(spec.low, spec.high))


@dataclass(frozen=True)
class Problem:
    """A minimisation problem over named parameters.

    Attributes:
        name: short identifier.
        params: parameter name -> :class:`Real` / :class:`Int` / :class:`Cat`.
        fn: objective, ``fn(params: dict) -> float``.
        optimum: the known global minimum value of ``fn`` (NaN if unknown).
        noise_std: standard deviation of the Gaussian observation noise the
            benchmark runner adds (``fn`` itself stays noiseless).
        kind: ``"synthetic"`` (scored by log-regret), ``"bayesmark"`` (scored
            by the Bayesmark score) or ``"raw"`` (best loss only).
        default_budget: evaluations the sweep uses when ``--budget`` is unset.
    """

    name: str
    params: dict[str, ParamSpec]
    fn: Callable[[dict[str, Any]], float]
    optimum: float
    noise_std: float = 0.0
    kind: str = "synthetic"
    default_budget: int = 100

    def __call__(self, params: dict[str, Any]) -> float:
        return self.fn(params)

    def space(self):
        """The same search space as a :class:`gpbo.Space`."""
        import gpbo

        out = {}
        for name, spec in self.params.items():
            if isinstance(spec, Real):
                out[name] = gpbo.Real(spec.low, spec.high, log=spec.log)
            elif isinstance(spec, Int):
                out[name] = gpbo.Integer(spec.low, spec.high, log=spec.log)
            else:
                out[name] = gpbo.Categorical(list(spec.choices))
        return gpbo.Space(out)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One uniform random configuration (log-uniform for ``log=True``)."""
        return {name: _sample_param(spec, rng) for name, spec in self.params.items()}

    def regret(self, value: float) -> float:
        return float(value) - self.optimum


# --------------------------------------------------------------------------- #
# Branin and Hartmann6 (BoTorch's definitions)                                #
# --------------------------------------------------------------------------- #
_BRANIN = Branin()
_HARTMANN6 = Hartmann(dim=6)


def _eval_botorch(f, x: list[float]) -> float:
    with torch.no_grad():
        return float(f(torch.tensor([x], dtype=torch.float64)).item())


def branin_fn(p: dict[str, float]) -> float:
    return _eval_botorch(_BRANIN, [p["x1"], p["x2"]])


def hartmann6_fn(p: dict[str, float]) -> float:
    return _eval_botorch(_HARTMANN6, [p[f"x{i}"] for i in range(6)])


def hartmann6_tensor(X: torch.Tensor) -> torch.Tensor:
    """Hartmann6 on a tensor ``X (n, 6)`` in [0,1]^6 -> ``(n,)``."""
    with torch.no_grad():
        return _HARTMANN6.to(X)(X)


branin = Problem(
    name="branin",
    params={"x1": Real(-5.0, 10.0), "x2": Real(0.0, 15.0)},
    fn=branin_fn,
    optimum=5.0 / (4.0 * math.pi),  # 0.3978873577...; BoTorch rounds it to 0.397887
    default_budget=40,
)

hartmann6 = Problem(
    name="hartmann6",
    params={f"x{i}": Real(0.0, 1.0) for i in range(6)},
    fn=hartmann6_fn,
    optimum=-3.322368011415515,  # BoTorch rounds it to -3.32237
)


# --------------------------------------------------------------------------- #
# Mixed problem: 2 categoricals, 1 integer, 2 reals                           #
# --------------------------------------------------------------------------- #
# f(c1, c2, k, x1, x2) = OFFSET[c1][c2] + 0.02 * (k - KSTAR[c2])**2
#                        + (x1 - a)**2 + 0.1 * (1 - cos(2*pi*(x1 - a)))
#                        + 0.5 * (x2 - B[c1] - 0.5*sin(2*x1))**2
# with a = A[c1] + 0.05 * (k - 10).  Every term is >= 0 except the offsets, and
# all vanish at k = KSTAR[c2], x1 = a, x2 = B[c1] + 0.5*sin(2a) (inside the box
# for every c1 and k), so min f = min OFFSET = 0.0 at c1="b", c2="y", k=13.
# The categoricals interact with the integer (KSTAR) and the reals (A, B), the
# integer shifts the real optimum, and the cosine adds ripples along x1.
_C1 = ("a", "b", "c")
_C2 = ("x", "y", "z")
_OFFSET = {
    "a": {"x": 0.6, "y": 0.3, "z": 0.9},
    "b": {"x": 0.4, "y": 0.0, "z": 0.5},
    "c": {"x": 0.8, "y": 0.7, "z": 0.2},
}
_KSTAR = {"x": 4, "y": 13, "z": 8}
_A = {"a": -1.0, "b": 0.5, "c": 1.2}
_B = {"a": 1.0, "b": 3.0, "c": 2.0}


def mixed_value(c1: str, c2: str, k: int, x1, x2):
    """The mixed objective; ``x1``, ``x2`` may be floats or NumPy arrays."""
    a = _A[c1] + 0.05 * (k - 10)
    return (
        _OFFSET[c1][c2]
        + 0.02 * (k - _KSTAR[c2]) ** 2
        + (x1 - a) ** 2
        + 0.1 * (1.0 - np.cos(2.0 * np.pi * (x1 - a)))
        + 0.5 * (x2 - _B[c1] - 0.5 * np.sin(2.0 * x1)) ** 2
    )


def mixed_fn(p: dict[str, Any]) -> float:
    return float(mixed_value(p["c1"], p["c2"], int(p["k"]), float(p["x1"]), float(p["x2"])))


mixed = Problem(
    name="mixed",
    params={
        "c1": Cat(_C1),
        "c2": Cat(_C2),
        "k": Int(1, 20),
        "x1": Real(-2.0, 2.0),
        "x2": Real(0.0, 5.0),
    },
    fn=mixed_fn,
    optimum=0.0,
)


def brute_force_optimum(problem: Problem = mixed, grid: int = 201) -> tuple[float, dict[str, Any]]:
    """Numerically minimise ``mixed``-style problems (categoricals x integers x 2 reals).

    Enumerates every categorical/integer combination, evaluates a ``grid x grid``
    mesh over the two reals and polishes the best grid point with SciPy's
    L-BFGS-B. Returns ``(value, params)``.
    """
    from itertools import product

    from scipy.optimize import minimize

    discrete = {n: s for n, s in problem.params.items() if not isinstance(s, Real)}
    reals = [n for n, s in problem.params.items() if isinstance(s, Real)]
    if len(reals) != 2:
        raise ValueError(f"brute_force_optimum needs exactly 2 real parameters, got {reals}")
    levels = [
        s.choices if isinstance(s, Cat) else range(s.low, s.high + 1) for s in discrete.values()
    ]
    r0, r1 = (problem.params[n] for n in reals)
    g0, g1 = np.meshgrid(np.linspace(r0.low, r0.high, grid), np.linspace(r1.low, r1.high, grid))
    best_val, best = math.inf, {}
    for combo in product(*levels):
        fixed = dict(zip(discrete, combo))

        def f(x, fixed=fixed):
            return problem.fn({**fixed, reals[0]: x[0], reals[1]: x[1]})

        vals = np.vectorize(lambda u, v: f((u, v)))(g0, g1)
        i = np.unravel_index(np.argmin(vals), vals.shape)
        res = minimize(f, [g0[i], g1[i]], method="L-BFGS-B",
                       bounds=[(r0.low, r0.high), (r1.low, r1.high)])
        if res.fun < best_val:
            best_val, best = float(res.fun), {**fixed, reals[0]: res.x[0], reals[1]: res.x[1]}
    return best_val, best


# --------------------------------------------------------------------------- #
# Ackley-10, Rosenbrock-4, StyblinskiTang-8 and the noisy variants            #
# --------------------------------------------------------------------------- #
def _botorch_problem(name: str, f, optimum: float) -> Problem:
    lo, hi = f.bounds[0].tolist(), f.bounds[1].tolist()
    names = [f"x{i}" for i in range(f.dim)]

    def fn(p: dict[str, float]) -> float:
        return _eval_botorch(f, [p[k] for k in names])

    return Problem(name=name, params={k: Real(a, b) for k, a, b in zip(names, lo, hi)},
                   fn=fn, optimum=optimum)


ackley10 = _botorch_problem("ackley10", Ackley(dim=10), 0.0)
rosenbrock4 = _botorch_problem("rosenbrock4", Rosenbrock(dim=4), 0.0)
styblinski_tang8 = _botorch_problem("styblinski_tang8", StyblinskiTang(dim=8), -39.16616570377142 * 8)

# max - min of each function on its box: max over 65536 scrambled-Sobol points
# (seed 0) and the 2^d corners, min the known optimum (computed 2025 with
# BoTorch 0.18's definitions; the noise only needs the order of magnitude).
_RANGE = {"branin": 307.731, "hartmann6": 3.32237, "ackley10": 22.0562,
          "rosenbrock4": 2.72274e6, "styblinski_tang8": 1313.33}


def _noisy(p: Problem) -> Problem:
    return Problem(name=f"{p.name}_noisy", params=p.params, fn=p.fn, optimum=p.optimum,
                   noise_std=0.01 * _RANGE[p.name], default_budget=p.default_budget)


_CLEAN = (branin, hartmann6, ackley10, rosenbrock4, styblinski_tang8)
SYNTHETIC: dict[str, Problem] = {
    p.name: p for p in (*_CLEAN, *(_noisy(c) for c in _CLEAN))
}

PROBLEMS: dict[str, Problem] = {p.name: p for p in (branin, hartmann6, mixed)}


# --------------------------------------------------------------------------- #
# Diverging variants: a few outcomes orders of magnitude worse than the rest  #
# --------------------------------------------------------------------------- #
DIVERGE_FROM = 0.85  # share of the first parameter's range where the divergence starts


def divergence(u: float) -> float:
    """The penalty at u, the first parameter's position in its range (0 .. 1).

    Zero below ``DIVERGE_FROM``; above it 10^3 rising log-linearly to 10^9 at u = 1.
    """
    if u <= DIVERGE_FROM:
        return 0.0
    return 10.0 ** (3.0 + 6.0 * (u - DIVERGE_FROM) / (1.0 - DIVERGE_FROM))


def _diverging(p: Problem) -> Problem:
    first, spec = next(iter(p.params.items()))

    def fn(params: dict[str, Any]) -> float:
        u = (params[first] - spec.low) / (spec.high - spec.low)
        return p.fn(params) + divergence(u)

    return Problem(name=f"{p.name}_diverge", params=p.params, fn=fn, optimum=p.optimum,
                   default_budget=p.default_budget)


DIVERGING: dict[str, Problem] = {p.name: p for p in (_diverging(branin), _diverging(hartmann6))}


def get(name: str) -> Problem:
    """A problem by name: ``PROBLEMS``, ``SYNTHETIC``, ``DIVERGING``, the multi-outcome and multi-fidelity ones, then
    the HPO suite."""
    for table in (PROBLEMS, SYNTHETIC, DIVERGING):
        if name in table:
            return table[name]
    from benchmarks.mo_problems import get_mo  # multi-outcome problems (imports this module)

    try:
        return get_mo(name)
    except KeyError:
        pass
    from benchmarks.mf_problems import get_mf  # multi-fidelity problems (imports this module)

    try:
        return get_mf(name)
    except KeyError:
        pass
    from benchmarks import hpo, mlp_task  # heavy imports (sklearn), only when needed

    if name == mlp_task.mlp_digits.name:
        return mlp_task.mlp_digits
    try:
        return hpo.problem(name)
    except ValueError:
        from benchmarks.mo_problems import MO_SUITE

        known = sorted({*PROBLEMS, *SYNTHETIC, *DIVERGING, *MO_SUITE, mlp_task.mlp_digits.name})
        raise ValueError(f"unknown problem {name!r}; expected one of {known} "
                         f"or a Bayesmark name like 'knn-iris-nll'") from None


if __name__ == "__main__":
    val, at = brute_force_optimum(mixed, grid=81)
    print(f"mixed: brute-force minimum {val:.3e} at {at} (declared optimum {mixed.optimum})")
