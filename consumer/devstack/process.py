"""Child processes that never outlive this Python process.

Each child asks the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to be killed when its
parent dies, so even a ``kill -9`` of the test run leaves no broker JVM behind. Linux sends
that signal when the *thread* that forked the child exits, not the process: a child forked
from a short-lived worker thread (``asyncio.to_thread``) would be killed when that thread
ends. So every child is forked from one launcher thread that lives as long as the
interpreter.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO

__all__ = ["spawn"]

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
# Resolved here, in the parent: the child, between fork and exec, should do as little as possible.
_PRCTL = _LIBC.prctl


def _die_with_parent_hook(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that arms the parent-death signal, then checks the parent still lives."""

    def hook() -> None:
        if _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl; the signal would never come then.
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


_Job = tuple[Callable[[], "subprocess.Popen[bytes]"], "Future[subprocess.Popen[bytes]]"]


class _Launcher:
    """One daemon thread that forks every child (see the module docstring for why)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="devstack-launcher", daemon=True
                )
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((start, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            start, done = self._jobs.get()
            try:
                done.set_result(start())
            except BaseException as exc:  # noqa: BLE001 -- handed to the waiting caller
                done.set_exception(exc)


_LAUNCHER = _Launcher()


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    output: IO[bytes] | int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group; it is SIGKILLed if this process dies.

    Args:
        argv: The program and its arguments (no shell).
        cwd: Working directory of the child.
        env: Its environment (default: ours).
        output: File that receives the child's stdout and stderr, or ``subprocess.PIPE``
            (default: discarded).
    """
    hook = _die_with_parent_hook(os.getpid())
    sink: IO[bytes] | int = output if output is not None else subprocess.DEVNULL

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=hook,
            start_new_session=True,
        )

    return _LAUNCHER.submit(start)
