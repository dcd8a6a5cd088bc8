"""Map a pure function over many argument tuples, on every core when it pays.

Staging calls a standardisation function once per distinct raw value; a million records
hold hundreds of thousands of distinct e-mails, phones and names, and the functions are
pure Python, so one core would do all the work. :func:`map_tuples` cuts a large input
into chunks and runs them in a pool of worker processes. Small inputs, cheap functions
(timed on the first items) and machines with a single CPU run in this process, where
shipping the values to workers and back would cost more than it saves.

The pool is started on first use and kept for the life of the process, so workers start
once rather than once per call and the caches of :mod:`linkage.ingest.standardise` stay warm in
them from one field and source to the next. :func:`shutdown` stops it; it is also
stopped when the interpreter exits. Workers are started with ``spawn`` (``fork`` is not
safe in a process running DuckDB's threads), so they import the main module: a script
that stages data needs the usual ``if __name__ == "__main__":`` guard.

The function must be picklable: a module-level function or a ``functools.partial`` of
one, not a lambda or a closure.

Examples:
    >>> map_tuples(divmod, [(7, 2), (9, 4)])
    [(3, 1), (2, 1)]
    >>> map_tuples(divmod, [(7, 2)] * 3, min_items=2, max_workers=1)
    [(3, 1), (3, 1), (3, 1)]
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

__all__ = [
    "PARALLEL_MIN_ITEMS",
    "PARALLEL_MIN_SECONDS",
    "PendingMap",
    "available_cpus",
    "map_tuples",
    "shutdown",
    "submit_tuples",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

PARALLEL_MIN_ITEMS = 20_000
"""Inputs shorter than this run in this process: standardising 20,000 values takes well
under a second, less than starting the workers does the first time (a second or more,
as each imports Meld and its dependencies)."""
PARALLEL_MIN_SECONDS = 1.0
"""Inputs whose estimated time in this process is below this run here: copying a value
to a worker and its result back costs a few microseconds, as much as a cheap function."""
SAMPLE_ITEMS = 1_000
"""Items run and timed in this process to estimate the time of the whole input."""
CHUNKS_PER_WORKER = 8
"""Chunks per worker, so that a worker that finishes early takes over remaining work."""
MAX_CHUNK_ITEMS = 20_000

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_workers = 0


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _apply_chunk(function: Callable[..., T], chunk: Sequence[tuple[Any, ...]]) -> list[T]:
    return [function(*arguments) for arguments in chunk]


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown()
            logger.debug("starting %d worker processes", workers)
            _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            _pool_workers = workers
        return _pool


def shutdown() -> None:
    """Stop the worker processes, if any; the next large :func:`map_tuples` restarts them."""
    global _pool, _pool_workers
    with _lock:
        if _pool is not None:
            _pool.shutdown()
        _pool, _pool_workers = None, 0


class PendingMap(Generic[T]):
    """A :func:`submit_tuples` whose results are not collected yet.

    Attributes:
        in_process: The items run in this process, when :meth:`result` is called;
            otherwise they are already running in the worker processes.
    """

    def __init__(
        self,
        function: Callable[..., T],
        done: list[T],
        rest: Sequence[tuple[Any, ...]] = (),
        futures: Sequence[Future[list[T]]] = (),
    ) -> None:
        self._function = function
        self._done = done
        self._rest = rest
        self._futures = futures
        self.in_process = not futures

    def result(self) -> list[T]:
        """The results, in the order of the items (waits for the workers)."""
        results = self._done
        if self._rest:
            results.extend(self._function(*arguments) for arguments in self._rest)
            self._rest = ()
        try:
            for future in self._futures:
                results.extend(future.result())
        except BrokenProcessPool:
            shutdown()
            raise
        self._futures = ()
        return results


def submit_tuples(
    function: Callable[..., T],
    items: Sequence[tuple[Any, ...]],
    *,
    min_items: int = PARALLEL_MIN_ITEMS,
    min_seconds: float = PARALLEL_MIN_SECONDS,
    max_workers: int | None = None,
) -> PendingMap[T]:
    """Start :func:`map_tuples` and return at once: large inputs start running in the
    workers, small ones run in this process when their results are asked for.

    Submitting every field before collecting any keeps both the workers and this
    process busy: this process standardises the small fields (and stores results)
    while the workers work through the large ones.

    Examples:
        >>> pending = submit_tuples(divmod, [(7, 2), (9, 4)])
        >>> pending.result()
        [(3, 1), (2, 1)]
    """
    workers = max_workers or available_cpus()
    in_process = workers < 2 or len(items) < max(min_items, 1)
    if in_process or multiprocessing.current_process().daemon:
        return PendingMap(function, [], items)
    done: list[T] = []
    if min_seconds > 0:
        started = time.perf_counter()
        done = [function(*arguments) for arguments in items[:SAMPLE_ITEMS]]
        per_item = (time.perf_counter() - started) / len(done)
        items = items[len(done) :]
        if per_item * len(items) < min_seconds:
            return PendingMap(function, done, items)
    size = max(1, min(MAX_CHUNK_ITEMS, -(-len(items) // (workers * CHUNKS_PER_WORKER))))
    pool = _get_pool(workers)
    try:
        futures = [
            pool.submit(_apply_chunk, function, items[start : start + size])
            for start in range(0, len(items), size)
        ]
    except BrokenProcessPool:
        shutdown()
        raise
    return PendingMap(function, done, futures=futures)


def map_tuples(
    function: Callable[..., T],
    items: Sequence[tuple[Any, ...]],
    *,
    min_items: int = PARALLEL_MIN_ITEMS,
    min_seconds: float = PARALLEL_MIN_SECONDS,
    max_workers: int | None = None,
) -> list[T]:
    """``[function(*item) for item in items]``, in worker processes when that pays.

    The first ``SAMPLE_ITEMS`` items run here and are timed; the rest go to the workers
    only when they would take ``min_seconds`` or more here.

    Args:
        function: A pure, picklable function (module-level, or a ``functools.partial`` of
            one); its arguments and results must be picklable too.
        items: Argument tuples.
        min_items: Run in this process when there are fewer items than this.
        min_seconds: Run in this process when the items would take less time than this
            here, as estimated from the first items; 0 sends all items to the workers.
        max_workers: Worker processes; default every CPU this process may use. One
            worker, or a daemonic process (which may not start children), runs in this
            process.

    Returns:
        The results, in the order of ``items``.

    Raises:
        Exception: Whatever ``function`` raised, with the worker's traceback as cause.
        concurrent.futures.process.BrokenProcessPool: A worker died (killed, out of
            memory); the pool is discarded and the next call starts a new one.

    Examples:
        ```py
        from functools import partial

        results = map_tuples(partial(parse_date, fmt="%Y-%m-%d"), [(raw,) for raw in values])
        ```
    """
    return submit_tuples(
        function,
        items,
        min_items=min_items,
        min_seconds=min_seconds,
        max_workers=max_workers,
    ).result()
