"""A local, restored limit on PyTorch's intra-op CPU threads.

gpbo's engine works on many small tensors (n x n Cholesky factors with n in
the hundreds, acquisition batches of a few thousand points). On the CPU, the
intra-op thread pool costs more than it gives at these sizes, and on a busy
2-core machine it is much slower (docs/decisions/0013-one-thread-in-suggest.md).
``suggest``
therefore runs with one thread on the CPU and restores the caller's setting
on exit. It never touches the setting for CUDA tensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def limited_cpu_threads(device: torch.device, n_threads: int = 1) -> Iterator[None]:
    """Run the block with at most ``n_threads`` intra-op threads on the CPU.

    The setting is process-wide while the block runs (a PyTorch limitation)
    and is restored afterwards, also on error.
    """
    previous = torch.get_num_threads()
    if device.type != "cpu" or previous <= n_threads:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
