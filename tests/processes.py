"""Long-running ``tocsin`` processes a test starts (serve, workers), and their stop."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path


def start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``command`` in a session (process group) of its own, so a test can kill it with
    every child it spawned; stdout and stderr to ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(procs: Iterable[subprocess.Popen], timeout: float = 60) -> None:
    """SIGTERM those still running, then wait for each (SIGKILL its group if it hangs)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
