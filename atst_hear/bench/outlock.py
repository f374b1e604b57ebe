"""One ``atst-hear bench`` process per output folder.

Two runs on one ``--out`` would compute the same units at once and race on ``status.json`` and
``run.json``; the second is refused with a message naming the first. The lock is an OS file lock
(``filelock``), which the kernel drops when its process ends, even on ``kill -9``, so a crashed
run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ..fileio import write_json_atomic

LOCK_NAME = ".bench.lock"
OWNER_NAME = ".bench.lock.json"  # who holds the lock, for the refusal message


class OutputInUseError(RuntimeError):
    """Another process is running a benchmark into the same output folder."""


@contextlib.contextmanager
def exclusive_output(out: str | os.PathLike) -> Iterator[Path]:
    """Hold the output folder's lock for the duration of the block (creating the folder)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputInUseError(
            f"{out} is in use by another atst-hear bench run ({_owner(out)}); wait for it to "
            "finish, or give this run another --out"
        ) from None
    try:
        write_json_atomic(
            out / OWNER_NAME,
            {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()},
        )
        yield out
    finally:
        (out / OWNER_NAME).unlink(missing_ok=True)
        lock.release()


def _owner(out: Path) -> str:
    try:
        owner = json.loads((out / OWNER_NAME).read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["since"]))
        return f"pid {owner['pid']} on {owner['host']}, since {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"
