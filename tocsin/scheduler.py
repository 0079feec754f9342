"""The schedule of ``tocsin serve``: each job on its interval, never two of one at once.

A job runs only under its lease in the store (``store.job_leases``), so two ``serve``
processes on one store share one schedule. A stop request (SIGTERM) is honoured
between jobs: the job in hand runs to its end and records how it went, then the loop
returns. Jobs run in this thread, one after the other, in the order given (feeds
first, so what a feed brings is crawled, enriched and notified in the same round).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from store import job_leases
from store.db import Database
from tocsin.errors import TocsinError
from tocsin.safe_text import terminal_text

log = logging.getLogger("tocsin.serve")


@dataclass(frozen=True)
class Job:
    """A scheduled job: its name, how often, and what runs it (an exit code).

    ``queued``: ``run`` only queues the work for ``tocsin worker`` (PostgreSQL), and the
    worker records the job's outcome when it finishes it (``tocsin.tasks``).
    """

    name: str
    every: timedelta
    run: Callable[[], int]
    queued: bool = False


class Scheduler:
    """Runs ``jobs`` on their intervals until :meth:`stop` (thread- and signal-safe)."""

    def __init__(
        self, db: Database, jobs: list[Job], *, lease: timedelta, tick: float = 1.0
    ) -> None:
        self.db = db
        self.jobs = [job for job in jobs if job.every > timedelta(0)]
        self.lease = lease
        self.tick = tick
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()

    def stop(self) -> None:
        """Finish the job in hand, start no other, and return from :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Round after round until stopped."""
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self.tick)

    def round(self) -> list[str]:
        """Run every job that is due and free now; the names of those that ran."""
        ran = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            try:
                held = job_leases.take(self.db, job.name, job.every, self.holder, self.lease)
            except Exception:  # the store is away for a moment: try again next tick
                log.warning("serve: cannot take the lease of %s", job.name, exc_info=True)
                continue
            if held is None:
                continue
            ran.append(job.name)
            error = None
            with self._extended(held):
                error = _run(job)
            try:
                job_leases.finish(self.db, held, error, outcome=not job.queued)
            except Exception:  # the lease lapses on its own; the next run records again
                log.warning("serve: cannot record the end of %s", job.name, exc_info=True)
        return ran

    @contextmanager
    def _extended(self, held: job_leases.Held) -> Iterator[None]:
        """Extend the job's lease every third of its term while it runs."""
        done = threading.Event()

        def keep() -> None:
            while not done.wait(self.lease.total_seconds() / 3):
                try:
                    if not job_leases.extend(self.db, held, self.lease):
                        log.warning("serve: the lease of %s was taken over", held.name)
                except Exception:
                    log.warning("serve: cannot extend the lease of %s", held.name, exc_info=True)

        thread = threading.Thread(target=keep, name=f"lease-{held.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def _run(job: Job) -> str | None:
    return attempt(job.name, job.run)


def attempt(name: str, run: Callable[[], int]) -> str | None:
    """Run one job; None when it ran (exit 0 or 1: some items failed), else why not.

    Shared by the schedule and the workers' jobs (``tocsin.tasks``), so a job's
    outcome means the same wherever it ran.
    """
    log.info("job %s starts", name)
    try:
        code = run() or 0
    except TocsinError as exc:
        error = str(exc)
    except Exception as exc:  # one job's bug must not stop the schedule
        log.exception("job %s failed", name)
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = None if code <= 1 else f"exit code {code}"
    if error:
        log.error("job %s failed: %s", name, terminal_text(error)[:300])
    return error
