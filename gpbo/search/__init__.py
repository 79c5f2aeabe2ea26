"""The acquisition search: multi-start maximisation over a mixed unit cube.

Above :mod:`gpbo.acquisition` (it maximises acquisition functions) and below
the engine; the general batched solver it calls is :mod:`gpbo.optim`.
"""

from gpbo.search.avoid import avoid_observed
from gpbo.search.multistart import maximize_acquisition

__all__ = ["avoid_observed", "maximize_acquisition"]
