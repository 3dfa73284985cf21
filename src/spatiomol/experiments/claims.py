"""Claim files: which process computes a run (`spatiomol.experiments.store.ResultsStore.claimed`).

A claim is a file created with ``O_CREAT | O_EXCL`` (atomic: exactly one process creates
it) holding its holder's pid, host, time and a token. It is *stale* when its holder is a
dead process on this host or when it has not been refreshed for `CLAIM_STALE_SECONDS`; a
stale claim is broken (moved aside) and created anew. The functions here take the claim
file's path; `ResultsStore` names it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

#: a claim not refreshed for this long (s) is abandoned, whoever holds it
CLAIM_STALE_SECONDS = 300.0


def create_claim(path: Path) -> str | None:
    """Create the claim file ``path`` (breaking a stale one); its token, or None if held elsewhere."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), "token": token}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not claim_is_stale(path):
                return None
            _break_claim(path)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(holder))
        return token
    return None


def release_claim(path: Path, token: str) -> None:
    """Remove the claim file ``path`` if it still holds ``token`` (this holder's claim)."""
    if _read_claim(path).get("token") == token:
        path.unlink(missing_ok=True)


def claim_is_stale(path: Path) -> bool:
    """Whether the claim file ``path`` is abandoned (absent, not refreshed, or its local holder died)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > CLAIM_STALE_SECONDS:
        return True
    holder = _read_claim(path)  # empty while its creator is still writing it: not stale
    return holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid"))


def _break_claim(path: Path) -> None:
    """Move a stale claim aside; a fresh claim moved by a racing breaker is put back."""
    try:
        before = path.stat()
        aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process broke it first
    try:
        moved = aside.stat()
        if (moved.st_ino, moved.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
            os.link(aside, path)  # not the claim judged stale: restore it unless a newer one exists
    except (FileExistsError, FileNotFoundError):
        pass
    finally:
        aside.unlink(missing_ok=True)


def _read_claim(path: Path) -> dict[str, Any]:
    """A claim file's holder record; ``{}`` when absent, empty or partly written."""
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` of this host is running (a zombie counts as dead)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
