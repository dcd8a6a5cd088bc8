"""One writer at a time per warehouse: a run lock the operating system releases.

A run (or a ``meld`` command that writes) holds an exclusive ``fcntl.flock`` on
``<warehouse>.run.lock`` for as long as it writes. The OS drops the lock when the
holder's process ends in any way, SIGKILL included, so a dead run never leaves a stuck
lock. The lock file also says who holds it (JSON: run id, job, pid, host, start time)
and whether that holder released it. A file that says "running" while nobody holds the
lock names a run that was killed or crashed before it finished: the next holder finds
it in :attr:`RunLock.stale` and records it as failed (``RunLock.mark_recorded``); until
then the file keeps it in its ``unfinished`` list, through any number of later holders.

The lock file is never deleted: removing a lock file another process has open would let
two processes hold "the" lock on two different files. It must live on a local file
system (as the DuckDB file must).

Examples:
    ```py
    with hold_run_lock(project.warehouse, run_id=run_id, job="meld_pipeline") as lock:
        for killed in lock.stale:
            ...  # record it as failed, then
        lock.mark_recorded([k.run_id for k in lock.stale])
        ...      # write the warehouse
    run_lock_holder(project.warehouse)  # None once released
    ```
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from linkage.errors import MeldError

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".run.lock"
RUN = "run"
COMMAND = "command"
RUNNING = "running"
RELEASED = "released"
ACQUIRE_WAIT_SECONDS = 0.5
"""How long an acquirer retries: a probe by :func:`run_lock_holder` holds a shared lock
for microseconds, which must not make a starting run fail."""
_POLL_SECONDS = 0.02


class RunInProgressError(MeldError, RuntimeError):
    """Another run (or a ``meld`` command that writes) holds the warehouse.

    Attributes:
        holder: Who holds it, when known.
    """

    def __init__(self, message: str, holder: RunLockInfo | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class RunLockFileError(MeldError, OSError):
    """The run lock file cannot be created or opened (a read-only folder, its owner)."""


@dataclass(frozen=True)
class RunLockInfo:
    """Who holds (or held) a warehouse's run lock.

    Attributes:
        run_id: The Dagster run id, or ``command-<hex>`` for a ``meld`` command.
        job: The Dagster job, or the command (``meld override``).
        pid: The holder's process id on ``host``.
        host: The machine the holder runs on.
        started_at: When it took the lock, ISO 8601 in UTC.
        kind: ``run`` (a Dagster run, recorded in the ledger when killed) or ``command``.
    """

    run_id: str
    job: str
    pid: int
    host: str
    started_at: str
    kind: str = RUN

    def describe(self) -> str:
        """The holder in words, for messages.

        Examples:
            >>> RunLockInfo("1f2e", "meld_pipeline", 42, socket.gethostname(),
            ...             "2026-01-02T03:04:05Z").describe()
            'run 1f2e (job meld_pipeline, started 2026-01-02 03:04:05 UTC, pid 42)'
        """
        where = f"pid {self.pid}"
        if self.host != socket.gethostname():
            where += f" on {self.host}"
        started = self.started_at.replace("T", " ").replace("Z", " UTC")
        if self.kind == COMMAND:
            return f"command '{self.job}' (started {started}, {where})"
        return f"run {self.run_id} (job {self.job}, started {started}, {where})"

    @classmethod
    def from_json(cls, data: Any) -> RunLockInfo | None:
        """Read one holder from the lock file; None when it is not one."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                run_id=str(data["run_id"]),
                job=str(data["job"]),
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                kind=str(data.get("kind", RUN)),
            )
        except (KeyError, TypeError, ValueError):
            return None


UNKNOWN_HOLDER = RunLockInfo(run_id="?", job="?", pid=0, host="?", started_at="?")
"""The holder when the lock is held but its file cannot be read (a holder mid-write)."""


@dataclass
class _LockFile:
    """The lock file's content."""

    holder: RunLockInfo | None = None
    state: str = RELEASED
    unfinished: list[RunLockInfo] = field(default_factory=list)

    def dumps(self) -> bytes:
        data = {
            "holder": asdict(self.holder) if self.holder is not None else None,
            "state": self.state,
            "unfinished": [asdict(info) for info in self.unfinished],
        }
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")

    @classmethod
    def loads(cls, text: bytes) -> _LockFile:
        try:
            data, _ = json.JSONDecoder().raw_decode(text.decode("utf-8").strip())
        except (UnicodeDecodeError, json.JSONDecodeError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        unfinished = [RunLockInfo.from_json(item) for item in data.get("unfinished") or []]
        return cls(
            holder=RunLockInfo.from_json(data.get("holder")),
            state=str(data.get("state", RELEASED)),
            unfinished=[info for info in unfinished if info is not None],
        )

    def stale(self) -> list[RunLockInfo]:
        """Runs that never finished, for a holder that just took the lock: the earlier
        ones, then the last holder when it did not release the lock."""
        runs = list(self.unfinished)
        if self.state == RUNNING and self.holder is not None:
            runs.append(self.holder)
        return runs


def lock_path(warehouse: Path) -> Path:
    """The run lock file of a warehouse.

    Examples:
        >>> lock_path(Path("/data/warehouse.duckdb")).name
        'warehouse.duckdb.run.lock'
    """
    return warehouse.with_name(warehouse.name + LOCK_SUFFIX)


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(fd: int) -> _LockFile:
    return _LockFile.loads(os.pread(fd, 1 << 20, 0))


def _write(fd: int, content: _LockFile) -> None:
    data = content.dumps()
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


class RunLock:
    """A run lock this process holds.

    Attributes:
        warehouse: The warehouse it protects.
        info: This holder.
        stale: Earlier runs that took the lock and never released it (killed or
            crashed), oldest first, not yet recorded as failed.
    """

    def __init__(self, warehouse: Path, fd: int, info: RunLockInfo, stale: list[RunLockInfo]):
        self.warehouse = warehouse
        self.info = info
        self.stale: tuple[RunLockInfo, ...] = tuple(stale)
        self._fd = fd
        self._guard = threading.Lock()

    def mark_recorded(self, run_ids: Iterable[str]) -> None:
        """Forget stale runs once they are recorded as failed, so no later holder
        records them again."""
        done = set(run_ids)
        with self._guard:
            self.stale = tuple(info for info in self.stale if info.run_id not in done)
            _write(self._fd, _LockFile(self.info, RUNNING, list(self.stale)))

    def _release(self) -> None:
        with self._guard:
            _write(self._fd, _LockFile(self.info, RELEASED, list(self.stale)))


_HELD: dict[str, RunLock] = {}
_HELD_GUARD = threading.Lock()


def _key(warehouse: Path) -> str:
    return str(lock_path(warehouse).resolve())


def held_run_lock(warehouse: Path) -> RunLock | None:
    """The run lock this process holds on ``warehouse``, if any."""
    with _HELD_GUARD:
        return _HELD.get(_key(warehouse))


def _try_exclusive(fd: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def busy_message(holder: RunLockInfo, warehouse: Path) -> str:
    """What to tell someone who wants to write while ``holder`` writes."""
    return (
        f"{holder.describe()} is writing the warehouse {warehouse}; wait for it to end or stop it"
    )


@contextmanager
def hold_run_lock(
    warehouse: Path, *, run_id: str, job: str, kind: str = RUN, wait: float = ACQUIRE_WAIT_SECONDS
) -> Iterator[RunLock]:
    """Hold the warehouse's run lock while the block runs.

    Args:
        warehouse: The DuckDB file; the lock file sits beside it (folder created).
        run_id: The Dagster run id, or a command's own id.
        job: The Dagster job or the command, for messages.
        kind: ``run`` for a Dagster run, ``command`` for a ``meld`` command.
        wait: Seconds to keep trying when the lock is taken.

    Raises:
        RunInProgressError: Another live process holds the lock; the message names it.

    Examples:
        ```py
        with hold_run_lock(warehouse, run_id="command-1a2b", job="meld erase",
                           kind="command") as lock:
            ...
        ```
    """
    path = lock_path(warehouse)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunLockFileError(
            f"cannot open the run lock file {path} for writing ({exc.strerror}): whoever "
            "writes the warehouse must be able to write its folder"
        ) from exc
    try:
        if not _try_exclusive(fd, wait):
            holder = _read(fd).holder or UNKNOWN_HOLDER
            raise RunInProgressError(busy_message(holder, warehouse), holder)
        info = RunLockInfo(run_id, job, os.getpid(), socket.gethostname(), _utc_now(), kind)
        stale = _read(fd).stale()
        _write(fd, _LockFile(info, RUNNING, stale))
    except BaseException:
        os.close(fd)  # closing drops the flock, if taken
        raise
    lock = RunLock(warehouse, fd, info, stale)
    if stale:
        logger.warning(
            "warehouse %s: %d earlier run(s) did not finish: %s",
            warehouse,
            len(stale),
            ", ".join(s.run_id for s in stale),
        )
    with _HELD_GUARD:
        _HELD[_key(warehouse)] = lock
    try:
        yield lock
    finally:
        with _HELD_GUARD:
            _HELD.pop(_key(warehouse), None)
        try:
            lock._release()
        finally:
            os.close(fd)


def _probe(warehouse: Path) -> tuple[bool, _LockFile] | None:
    """(held by a live process, file content); None when there is no lock file."""
    path = lock_path(warehouse)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable: nobody can be seen writing
        logger.warning("cannot read the run lock file %s (%s)", path, exc.strerror)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            return True, _read(fd)
        try:
            return False, _read(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def run_lock_holder(warehouse: Path) -> RunLockInfo | None:
    """Who holds the warehouse's run lock now; None when nobody does.

    The holder may be this process (see :func:`held_run_lock`).
    """
    held = held_run_lock(warehouse)
    if held is not None:
        return held.info
    probe = _probe(warehouse)
    if probe is None or not probe[0]:
        return None
    return probe[1].holder or UNKNOWN_HOLDER


def stale_runs(warehouse: Path) -> list[RunLockInfo]:
    """Runs that took the lock and never released it (killed or crashed), oldest
    first, not yet recorded as failed. A live holder is not among them."""
    held = held_run_lock(warehouse)
    if held is not None:
        return list(held.stale)
    probe = _probe(warehouse)
    if probe is None:
        return []
    live, content = probe
    return list(content.unfinished) if live else content.stale()


def stale_run(warehouse: Path) -> RunLockInfo | None:
    """The latest run that took the lock and never released it, if any.

    Examples:
        ```py
        killed = stale_run(project.warehouse)
        if killed is not None:
            print(f"{killed.describe()} was killed or crashed before it finished")
        ```
    """
    runs = stale_runs(warehouse)
    return runs[-1] if runs else None


def command_run_id() -> str:
    """A fresh id for a ``meld`` command that takes the lock.

    Examples:
        >>> command_run_id().startswith("command-")
        True
    """
    return f"command-{os.urandom(6).hex()}"
