"""Children started through devstack.process die with their parent, even on SIGKILL."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading

from consumer.devstack.process import spawn

_PARENT = """
import sys
from consumer.devstack.process import spawn
child = spawn(["sleep", "300"])
print(child.pid, flush=True)
sys.stdin.read()  # keep running until the test kills us
"""


def test_child_is_killed_when_parent_is_sigkilled() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        pidfd = os.pidfd_open(child_pid)
        try:
            parent.kill()
            parent.wait(10)
            # A pidfd becomes readable when the process exits: wait on that, with a deadline.
            readable, _, _ = select.select([pidfd], [], [], 10.0)
        finally:
            os.close(pidfd)
        assert readable, f"child {child_pid} outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        if parent.stdin:
            parent.stdin.close()
        if parent.stdout:
            parent.stdout.close()


def test_spawn_from_worker_thread_child_outlives_that_thread() -> None:
    """The parent-death signal follows the forking thread; spawn forks from a long-lived one."""
    started: list[subprocess.Popen[bytes]] = []
    worker = threading.Thread(target=lambda: started.append(spawn(["sleep", "300"])))
    worker.start()
    worker.join()
    (child,) = started
    try:
        assert child.poll() is None
        # Give a (wrongly) armed parent-death signal time to arrive: wait on the child itself.
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(0.5)
        assert child.poll() is None, "child died with the thread that asked for it"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
