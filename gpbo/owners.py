"""Owners of RUNNING trials: which optimizer may still tell them.

Each optimizer gets an owner token ``host:pid:session`` and writes it on the
trials it asks. A RUNNING trial whose owner is gone (its process died, or
the optimizer was closed or garbage-collected) is an orphan that `ask` hands
out again. Owners on other hosts are assumed alive, and a dead process whose
pid was reused looks alive.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["new_owner", "owner_alive", "release_owner"]

_HOST = socket.gethostname()
_LIVE_SESSIONS: set[str] = set()  # owner tokens of this process's open optimizers


def new_owner() -> str:
    """A fresh owner token ``host:pid:session`` for an optimizer of this process."""
    token = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex}"
    _LIVE_SESSIONS.add(token)
    return token


def release_owner(token: str) -> None:
    """Marks an owner as gone: its RUNNING trials become orphans."""
    _LIVE_SESSIONS.discard(token)


def owner_alive(owner: str | None) -> bool:
    """Whether the optimizer that owns a RUNNING trial may still tell it."""
    if owner is None:
        return False
    host, pid, _ = owner.rsplit(":", 2)
    if host != _HOST:
        return True
    if int(pid) == os.getpid():
        return owner in _LIVE_SESSIONS
    return _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (Linux /proc; signal 0 elsewhere)."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
