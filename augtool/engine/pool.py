"""Worker processes forked from this one: ``expand``'s scan and render on Linux.

A worker forked from the main process starts with every module the main
process has imported (numpy, OpenCV, augtool), so it is ready at once. A
joblib (loky) worker is a new interpreter: on the 2-core test machine each one
spent about 1 CPU second importing, and loky added a resource-tracker process
(0.5 CPU s) and a parent that polls for results every 10 ms; together about a
tenth of a whole ``expand`` of the ALL-IDB1-sized workload
(``benchmarks/bench_expand.py``; docs/performance.md).

:func:`run_ordered` hands out indices into a list the workers inherited (no
task is pickled), gathers the results, and yields them in the order of the
list. Guarantees, as with joblib before:

* the results, and so the output bytes, do not depend on the number of
  workers or on which worker runs what (the functions are pure);
* an exception raised by the function reaches the caller unchanged;
* a worker that dies (out of memory, killed) is reported as
  :class:`~augtool.errors.ClusterError`, never waited for forever;
* workers die with the main process, even by ``kill -9``
  (:func:`die_with_parent`: on Linux the kernel kills a worker whose parent
  died, as ``prctl(PR_SET_PDEATHSIG)``), and are stopped when
  the caller stops reading (an interrupt, a write error).

Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the main
process alone decides what to stop and what to keep. Where ``fork`` is not
the platform's safe default (macOS, Windows), :func:`fork_available` is false
and callers use joblib.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import TypeVar

from augtool.errors import ClusterError, literal

T = TypeVar("T")
R = TypeVar("R")

#: Tasks handed out ahead per worker: enough that a worker never waits for the
#: main process (busy writing), few enough that results never pile up in memory.
AHEAD_PER_WORKER = 2
#: Seconds a worker gets to exit after the last task before it is terminated.
EXIT_GRACE = 5.0


def fork_available() -> bool:
    """True where workers are forked (Linux); elsewhere callers use joblib."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _worker(
    func: Callable[[T], R],
    items: Sequence[T],
    tasks: Connection,
    results: Connection,
    parent: int,
) -> None:
    """Loop of one worker: read an index, send ``(index, ok, result or exception)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent.__wrapped__()  # the main process's cached answer is not this process's
    if os.getppid() != parent:  # the main process died before the request took effect
        os._exit(1)
    while True:
        try:
            index = tasks.recv()
        except EOFError:
            return
        if index is None:
            return
        try:
            message: tuple = (index, True, func(items[index]))
        except BaseException as err:  # sent back and raised in the main process
            message = (index, False, _picklable(err))
        results.send(message)


def _picklable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling, else a RuntimeError that carries its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        text = "".join(traceback.format_exception_only(type(err), err)).strip()
        return RuntimeError(f"a worker process failed: {text}")
    return err


def run_ordered(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    describe: Callable[[T], str] = str,
) -> Iterator[R]:
    """Yield ``func(item)`` for every item, in order, computed by ``workers`` forked processes.

    Args:
        func: A function of one item; it and ``items`` are inherited by the
            workers, not pickled. Its results and exceptions are pickled back.
        items: The work.
        workers: Processes to fork (at most ``len(items)``).
        describe: Names an item in the message when a worker dies.

    Yields:
        The results, in the order of ``items``.

    Raises:
        ClusterError: If a worker process dies while working.
        BaseException: Whatever ``func`` raised, for the first item that raised.
    """
    if not items:
        return
    pool = _Pool(func, items, max(1, min(workers, len(items))), describe)
    finished = False
    try:
        pool.hand_out()
        for wanted in range(len(items)):
            while wanted not in pool.done:
                pool.receive()
                pool.hand_out()
            yield pool.done.pop(wanted)
        finished = True
    finally:
        pool.stop(graceful=finished)


@contextlib.contextmanager
def opencv_ready_to_fork() -> Iterator[int | None]:
    """OpenCV with one thread while the block forks; its thread count back afterwards.

    OpenCV's thread pool, once started, cannot be used or stopped in a forked child
    (the child waits forever for threads that were not copied; seen with
    ``cv2.setNumThreads`` and with resizing); with one thread there is no pool.

    Yields:
        The thread count to give a child that wants the parent's (None when OpenCV
        is not imported).
    """
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        yield None
        return
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield previous
    finally:
        cv2.setNumThreads(previous)


class _Pool:
    """The forked workers of one :func:`run_ordered` call, and what each one holds."""

    def __init__(
        self,
        func: Callable[[T], R],
        items: Sequence[T],
        n: int,
        describe: Callable[[T], str],
    ) -> None:
        ctx = multiprocessing.get_context("fork")
        self.items = items
        self.describe = describe
        self.parent = os.getpid()
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.to_workers: list[Connection] = []
        self.from_workers: list[Connection] = []
        self.busy: list[list[int]] = []  # indices handed to each worker, oldest first
        self.done: dict[int, object] = {}
        self.following = 0  # next index to hand out
        # Each worker keeps the one OpenCV thread it is forked with: the workers
        # already keep every core busy.
        with opencv_ready_to_fork():
            try:
                for _ in range(n):
                    task_read, task_write = ctx.Pipe(duplex=False)
                    result_read, result_write = ctx.Pipe(duplex=False)
                    proc = ctx.Process(
                        target=_worker,
                        args=(func, items, task_read, result_write, self.parent),
                        daemon=True,
                    )
                    self.procs.append(proc)
                    self.to_workers.append(task_write)
                    self.from_workers.append(result_read)
                    self.busy.append([])
                    proc.start()
                    task_read.close()
                    result_write.close()
            except BaseException:
                self.stop(graceful=False)
                raise

    def hand_out(self) -> None:
        """Give every worker tasks until it holds :data:`AHEAD_PER_WORKER`."""
        for w, conn in enumerate(self.to_workers):
            while len(self.busy[w]) < AHEAD_PER_WORKER and self.following < len(self.items):
                try:
                    conn.send(self.following)
                except OSError:  # the worker is gone; receive() says why
                    return
                self.busy[w].append(self.following)
                self.following += 1

    def receive(self) -> None:
        """Wait for the next result of any worker; keep it, or raise its exception.

        Raises:
            ClusterError: If a worker died.
        """
        by_sentinel = {p.sentinel: w for w, p in enumerate(self.procs)}
        ready = wait([*self.from_workers, *by_sentinel])
        for conn in ready:
            if isinstance(conn, Connection):
                w = self.from_workers.index(conn)
                try:
                    index, ok, value = conn.recv()
                except EOFError:
                    continue  # the worker died while sending; its sentinel says so
                self.busy[w].remove(index)
                if not ok:
                    raise value
                self.done[index] = value
                return
        for sentinel in ready:
            if not isinstance(sentinel, Connection):
                w = by_sentinel[sentinel]
                self.procs[w].join(EXIT_GRACE)  # its sentinel may fire before it can be reaped
                code = self.procs[w].exitcode
                how = f"killed by signal {-code}" if code is not None and code < 0 else "exited"
                held = self.busy[w]
                item = self.describe(self.items[held[0]]) if held else "its next task"
                raise ClusterError(
                    f"a worker process died ({literal(how)}) while working on {literal(item)}: "
                    "out of memory? Try fewer {workers}",
                    refs=True,
                )

    def stop(self, graceful: bool) -> None:
        """End the workers: ask them to exit after a complete run, else terminate them now."""
        for proc, conn in zip(self.procs, self.to_workers, strict=True):
            if graceful and proc.is_alive():
                with contextlib.suppress(OSError):
                    conn.send(None)
            conn.close()
        for proc in self.procs:
            if proc.pid is None:  # never started
                continue
            if graceful:
                proc.join(EXIT_GRACE)
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for conn in self.from_workers:
            conn.close()


_PR_SET_PDEATHSIG = 1


@functools.cache
def die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when its parent dies (once per process).

    Call it only in worker processes: in the main process it would tie augtool's
    life to the shell or program that started it.

    Returns:
        True when the request was accepted (Linux), else False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
