"""Description of the encoded dimensions of a search space.

A :class:`DimSpec` tells the models and the optimiser how to treat each of the
``d`` encoded dimensions of the unit cube ``[0, 1]^d``:

- a *continuous* dimension takes any value in ``[0, 1]``;
- a *discrete* dimension (integer or categorical parameter) takes only the
  values listed in ``levels[j]``;
- a *categorical* dimension is discrete and, in addition, is compared with an
  equal / not-equal (Hamming-type) kernel instead of a distance.

``DimSpec`` is immutable and hashable, so it can be used as a dictionary key
or cached alongside fitted models.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gpbo.errors import InvalidSpaceError, InvalidTrialError

__all__ = ["DimSpec", "FrozenLevels"]


class FrozenLevels(Mapping[int, tuple[float, ...]]):
    """Immutable, hashable mapping ``encoded dim -> allowed encoded values``.

    Keys are kept in increasing order. Behaves like a read-only ``dict``.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Iterable[tuple[int, tuple[float, ...]]] = ()) -> None:
        self._data: dict[int, tuple[float, ...]] = dict(sorted(items))
        self._hash: int | None = None

    def __getitem__(self, key: int) -> tuple[float, ...]:
        return self._data[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        parts = []
        for key, values in self._data.items():
            shown = repr(values) if len(values) <= 8 else f"<{len(values)} levels>"
            parts.append(f"{key}: {shown}")
        return "{" + ", ".join(parts) + "}"


def _as_index(value: Any, what: str) -> int:
    """Converts an integer-like (not bool) to ``int`` or raises InvalidSpaceError."""
    if isinstance(value, bool):
        raise InvalidSpaceError(f"{what} must be an integer, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidSpaceError(
            f"{what} must be an integer, got {value!r} ({type(value).__name__})"
        ) from None


def _check_levels(dim: int, values: Any) -> tuple[float, ...]:
    """Validates the levels of one dim: non-empty, finite, in [0, 1], increasing."""
    try:
        t = torch.as_tensor(values, dtype=torch.float64, device="cpu")
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.ndim != 1:
        raise InvalidSpaceError(
            f"levels[{dim}] must be a 1-D sequence of numbers, got {values!r:.200}"
        )
    if t.numel() == 0:
        raise InvalidSpaceError(f"levels[{dim}] must not be empty")
    levels = tuple(t.tolist())
    bad = ~(torch.isfinite(t) & (t >= 0.0) & (t <= 1.0))
    if bool(bad.any()):
        value = levels[int(bad.nonzero()[0, 0])]
        raise InvalidSpaceError(
            f"levels[{dim}] contains {value!r}; expected finite values in [0, 1]"
        )
    not_increasing = t[1:] <= t[:-1]
    if bool(not_increasing.any()):
        i = int(not_increasing.nonzero()[0, 0])
        raise InvalidSpaceError(
            f"levels[{dim}] must be strictly increasing, got {levels[i]!r} "
            f"followed by {levels[i + 1]!r}"
        )
    return levels


@dataclass(frozen=True)
class DimSpec:
    """Which encoded dims are categorical, and which are discrete with which levels.

    Args:
        d: Number of encoded dimensions (``>= 1``).
        categorical: Encoded dims that use a categorical (Hamming-type) kernel.
            Every categorical dim must also appear in ``levels``. Stored sorted.
        levels: Map from discrete dim (integer or categorical) to its allowed
            encoded values, strictly increasing and inside ``[0, 1]``. Dims not
            listed are continuous. Stored as a hashable :class:`FrozenLevels`.

    Raises:
        InvalidSpaceError: If a dim index is out of range or repeated, a
            categorical dim has no levels, or some levels are empty, unsorted,
            non-finite or outside ``[0, 1]``.
    """

    d: int
    categorical: tuple[int, ...] = ()
    levels: Mapping[int, tuple[float, ...]] = field(default_factory=FrozenLevels)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        d = _as_index(self.d, "DimSpec.d")
        if d < 1:
            raise InvalidSpaceError(f"DimSpec.d must be >= 1, got {d}")
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "categorical", self._checked_categorical())
        object.__setattr__(self, "levels", self._checked_levels())
        missing = [j for j in self.categorical if j not in self.levels]
        if missing:
            raise InvalidSpaceError(
                f"categorical dims {missing} have no levels; every categorical "
                "dim must list its allowed encoded values in `levels`"
            )

    def _check_dim(self, value: Any, what: str) -> int:
        j = _as_index(value, what)
        if not 0 <= j < self.d:
            raise InvalidSpaceError(f"{what} = {j} is out of range [0, {self.d})")
        return j

    def _checked_categorical(self) -> tuple[int, ...]:
        try:
            dims = [self._check_dim(j, "categorical dim") for j in self.categorical]
        except TypeError:
            raise InvalidSpaceError(
                f"categorical must be a sequence of dim indices, got {self.categorical!r}"
            ) from None
        if len(set(dims)) != len(dims):
            raise InvalidSpaceError(f"categorical dims repeat: {list(self.categorical)}")
        return tuple(sorted(dims))

    def _checked_levels(self) -> FrozenLevels:
        if not isinstance(self.levels, Mapping):
            raise InvalidSpaceError(
                f"levels must be a mapping dim -> values, got {type(self.levels).__name__}"
            )
        items = []
        for key, values in self.levels.items():
            j = self._check_dim(key, "levels dim")
            items.append((j, _check_levels(j, values)))
        if len({j for j, _ in items}) != len(items):
            raise InvalidSpaceError(f"levels dims repeat: {list(self.levels)}")
        return FrozenLevels(items)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = {}  # cached tensors may live on a device; rebuild lazily
        return state

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @classmethod
    def continuous(cls, d: int) -> DimSpec:
        """A spec whose ``d`` dims are all continuous."""
        return cls(d)

    @property
    def discrete_dims(self) -> tuple[int, ...]:
        """Dims with levels (integer and categorical), increasing."""
        return tuple(self.levels)

    @property
    def continuous_dims(self) -> tuple[int, ...]:
        """Dims without levels, increasing."""
        return tuple(j for j in range(self.d) if j not in self.levels)

    @property
    def is_continuous(self) -> bool:
        """True if no dim is discrete."""
        return not self.levels

    def continuous_mask(self, device: torch.device | str | None = None) -> Tensor:
        """Bool tensor ``(d,)``, True for the continuous dims."""
        mask = torch.ones(self.d, dtype=torch.bool, device=device)
        mask[list(self.levels)] = False
        return mask

    def categorical_mask(self, device: torch.device | str | None = None) -> Tensor:
        """Bool tensor ``(d,)``, True for the categorical dims."""
        mask = torch.zeros(self.d, dtype=torch.bool, device=device)
        mask[list(self.categorical)] = True
        return mask

    def level_tensor(
        self,
        dim: int,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """The levels of discrete ``dim`` as a 1-D tensor ``(k,)`` (cached).

        Raises:
            KeyError: If ``dim`` is continuous.
        """
        key = (dim, dtype, torch.device(device) if device is not None else None)
        cached = self._cache.get(key)
        if cached is None:
            cached = torch.tensor(self.levels[dim], dtype=dtype, device=device)
            self._cache[key] = cached
        return cached

    def snap(self, X: Tensor) -> Tensor:
        """Moves every discrete coordinate of ``X`` to its nearest level.

        Vectorised over points; loops only over the discrete dims. Continuous
        coordinates are returned unchanged, NaN stays NaN, and an exact tie
        between two levels goes to the lower one.

        Args:
            X: ``(..., d)`` floating tensor on any device.

        Returns:
            A new ``(..., d)`` tensor of the same dtype and device.

        Raises:
            InvalidTrialError: If the last dim of ``X`` is not ``d``.
        """
        if X.ndim < 1 or X.shape[-1] != self.d:
            raise InvalidTrialError(
                f"X must have shape (..., {self.d}), got {tuple(X.shape)}"
            )
        out = X.clone()
        for j in self.levels:
            lv = self.level_tensor(j, dtype=X.dtype, device=X.device)  # (k,)
            out[..., j] = _nearest(lv, X[..., j])
        return out


def _nearest(levels: Tensor, x: Tensor) -> Tensor:
    """Nearest element of sorted ``levels (k,)`` for every entry of ``x (...)``."""
    k = levels.shape[0]
    if k == 1:
        return torch.where(torch.isnan(x), x, levels[0].expand_as(x))
    hi = torch.searchsorted(levels, x.contiguous()).clamp(1, k - 1)  # (...)
    lo = hi - 1
    up = (levels[hi] - x) < (x - levels[lo])
    snapped = torch.where(up, levels[hi], levels[lo])
    return torch.where(torch.isnan(x), x, snapped)

