"""Files written atomically: a temporary file in the same directory, fsync, rename — readers see the old file or the
whole new one. :func:`atomic_write_text` writes the small JSON / text files (metrics.json, result.json, reports);
checkpoints go through mmengine's file backend ``atomic_local`` (:mod:`classification.foundation.atomic_backend`).
Standard library only.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Callable



def process_exists(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this host (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(directory: str) -> list:
    """Delete the temporary files of :func:`atomic_write` that writers killed mid-write (SIGKILL, out of memory) left
    in ``directory``: ``.tmp-<pid>-…`` files whose process no longer runs on this host. Returns their paths.
    (One host writes a work dir's checkpoints — rank 0 — so a pid that is not running here is a dead writer.)"""
    removed = []
    for name in os.listdir(directory):
        parts = name.split("-", 2)
        if name.startswith(".tmp-") and len(parts) == 3 and parts[1].isdigit() and not process_exists(int(parts[1])):
            try:
                os.unlink(osp.join(directory, name))
                removed.append(osp.join(directory, name))
            except FileNotFoundError:
                pass
    return removed


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a temporary file ``.tmp-<pid>-…`` next to ``path``, fsync, then ``os.replace`` it onto
    ``path``: readers see the old file or the whole new one, never a truncated one. An exception removes the
    temporary file; one left by a killed writer is removed by the next write into that directory
    (:func:`remove_stale_temporaries`)."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{os.getpid()}-", suffix="-" + osp.basename(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions of a new file
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    """:func:`atomic_write` of ``data``."""
    def write(temporary: str) -> None:
        with open(temporary, "wb") as f:
            f.write(data)
    atomic_write(path, write)


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write` of ``text`` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))
