"""Engine ablations: the sweep with one choice of gpbo's engine changed, as a `gpbo.Settings` value.

    python -m benchmarks.ablations VARIANT [sweep options]   # e.g.
    python -m benchmarks.ablations rbf --problems synthetic --methods gpbo --seeds 16 --out DIR
    python -m benchmarks.ablations averagemean+freeze [sweep options]      # variants combine with "+"
    python -m benchmarks.ablations merge OUT DIR:METHOD=LABEL ...          # then benchmarks.report OUT

``merge`` copies the METHOD lines of each DIR/results.jsonl(.gz) into
OUT/results.jsonl under the method name LABEL, so variants and baselines go
into one report (``--methods`` lists the labels).

Each variant is a change of `gpbo.Settings` fields (:data:`VARIANTS`); the
sweep (:func:`benchmarks.sweep.main`) runs its gpbo methods with the changed
settings and nothing else, so the results file, resuming and the report are
the sweep's own. The variants answer "why is gpbo behind BoTorch's loop on
StyblinskiTang-8?"; what was measured and decided is in docs/decisions/.

Variants:

- ``rbf``: squared-exponential kernel instead of Matérn-5/2 (BoTorch's
  ``SingleTaskGP`` default since 0.12), same priors.
- ``noanchor``: no acquisition restarts next to the three best observations.
- ``nowarm``: the GP fit starts from the prior modes at every iteration.
- ``noprecond``: no lengthscale preconditioning of the acquisition ascent.
- ``accelerator``: every L-BFGS-B call (MAP fit and acquisition ascent) on
  the code path it takes on a GPU: all line-search steps in one batched call,
  "all done" checked every 10 iterations. The CUDA-graph replay repeats that
  path's kernels exactly, so this measures the GPU's search quality on a CPU.
- ``averagemean``: the GP's constant prior mean is the average observation
  (BoTorch's ``Standardize``) instead of the worst one.
- ``freeze``: the acquisition ascent holds every dim whose lengthscale
  exceeds ``FREEZE_LENGTHSCALE`` at its starting value (Sobol point or
  anchor), so that a dim the GP deems irrelevant is not pushed to a bound
  by a near-flat acquisition slope.
- ``nofence``: the output warp standardises the outcomes as they are, not
  pulled in beyond Tukey's far-out fences.
- ``fence10``: the fences 10 interquartile ranges out instead of 3.
- ``nodiscount``: the default portfolio's augmented EI without its noise
  discount, i.e. LogEI from the effective best (the posterior mean at the
  observed point with the highest mean - sigma).

Three variants measured earlier (``plugin``, ``meananchor``, ``botorch_fit``)
were rejected and are not settings; their records are in docs/decisions/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import open_results
from gpbo.acquisition import UCB, LogAugmentedEI, RoundRobin
from gpbo.settings import Settings

FREEZE_LENGTHSCALE = 2.0  # unit-cube lengthscale above which ``freeze`` holds a dim

# variant -> the gpbo.Settings fields it changes
VARIANTS: dict[str, dict[str, Any]] = {
    "rbf": {"kernel": "rbf"},
    "noanchor": {"n_anchors": 0},
    "nowarm": {"warm_start": False},
    "noprecond": {"precondition": False},
    "accelerator": {"solver_path": "accelerator"},
    "averagemean": {"prior_mean": "average"},
    "freeze": {"freeze_lengthscale": FREEZE_LENGTHSCALE},
    "nofence": {"warp_fence": None},
    "fence10": {"warp_fence": 10.0},
    "nodiscount": {"acquisition": RoundRobin((LogAugmentedEI(discount=False), UCB()))},
}


def variant_settings(spec: str, base: Settings | None = None) -> Settings:
    """``base`` (default: the defaults) with the changes of the variants in ``spec`` ("a+b+...").

    Raises:
        KeyError: naming an unknown variant.
    """
    changes: dict[str, Any] = {}
    for name in spec.split("+"):
        if name not in VARIANTS:
            raise KeyError(f"unknown variant {name!r}; expected one of {sorted(VARIANTS)}")
        changes.update(VARIANTS[name])
    return (base or Settings()).replace(**changes)


def merge(out: Path, sources: list[str]) -> int:
    """Write OUT/results.jsonl from ``DIR:METHOD=LABEL`` sources; returns the line count."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(out / "results.jsonl", "w") as dst:
        for source in sources:
            folder, _, rename = source.rpartition(":")
            method, _, label = rename.partition("=")
            with open_results(Path(folder)) as lines:
                for line in lines:
                    record = json.loads(line)
                    if record["method"] == method:
                        dst.write(json.dumps({**record, "method": label or method}) + "\n")
                        count += 1
    return count


def main(argv: list[str] | None = None) -> dict | int:
    from benchmarks import sweep

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"] and len(argv) > 2:
        return merge(Path(argv[1]), argv[2:])
    try:
        settings = variant_settings(argv[0]) if argv else None
    except KeyError:
        settings = None
    if settings is None:
        raise SystemExit(f"usage: python -m benchmarks.ablations {{{','.join(VARIANTS)}}}[+VARIANT...] [sweep options]"
                         " | merge OUT DIR:METHOD=LABEL ...")
    return sweep.main(argv[1:], settings=settings)


if __name__ == "__main__":
    main()
