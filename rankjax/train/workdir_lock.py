"""One writer per workdir: an advisory lock file taken before a run writes anything.

The lock is ``WORKDIR/.lock-process<i>`` (one per process index, so the processes of one multi-host
run do not exclude each other) holding the owner's host, pid and start time. Liveness comes from
``fcntl.flock`` on that file, which the kernel drops when the owner dies, so a file left behind by
a killed run (kill -9, OOM, power loss) is a stale lock: it is taken over with a warning. A lock
held by a live process is an error naming that process.

flock is not reliable on every network filesystem; there the lock still records the owner and
catches the common mistake of rerunning a command in a second terminal on the same machine.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from absl import logging

_HELD: dict[str, int] = {}  # lock path -> open fd, for locks this process holds


class WorkdirLockedError(RuntimeError):
  """Another live process is writing to the same workdir."""


def lock_path(workdir: str, process_index: int = 0) -> str:
  return os.path.join(workdir, f".lock-process{process_index}")


def _describe(text: str) -> str:
  try:
    d = json.loads(text)
    return f"pid {d['pid']} on host {d['host']} (started {d.get('started', '?')})"
  except (ValueError, KeyError, TypeError):
    return f"an unknown process (lock content {text[:200]!r})"


def _read(fd: int) -> str:
  os.lseek(fd, 0, os.SEEK_SET)
  return os.read(fd, 4096).decode("utf-8", "replace").strip()


def acquire(workdir: str, process_index: int = 0) -> str:
  """Takes this process's lock on ``workdir`` (created if needed) and returns the lock's path.

  Re-entrant within a process: a second run in the same process (a resumed run in a test or a
  notebook) keeps the lock it already holds.
  """
  os.makedirs(workdir, exist_ok=True)
  path = lock_path(workdir, process_index)
  key = os.path.realpath(path)
  if key in _HELD:
    return path
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    owner = _describe(_read(fd))
    os.close(fd)
    raise WorkdirLockedError(
        f"workdir {workdir} is in use by {owner} (lock file {path}). Two runs writing the same "
        f"checkpoints and results would corrupt each other: wait for that run, stop it, or use "
        f"another --workdir.") from None
  previous = _read(fd)
  if previous:
    logging.warning("workdir %s: taking over the stale lock of %s, which is no longer running "
                    "(lock file %s)", workdir, _describe(previous), path)
  me = {"host": socket.gethostname(), "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
  os.ftruncate(fd, 0)
  os.lseek(fd, 0, os.SEEK_SET)
  os.write(fd, (json.dumps(me) + "\n").encode())
  os.fsync(fd)
  _HELD[key] = fd
  return path


def release(workdir: str, process_index: int = 0) -> None:
  """Drops the lock. The file stays, emptied: removing it could let two later runs lock two
  different files of the same name."""
  fd = _HELD.pop(os.path.realpath(lock_path(workdir, process_index)), None)
  if fd is None:
    return
  os.ftruncate(fd, 0)
  os.close(fd)
