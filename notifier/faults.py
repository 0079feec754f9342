"""Test-only fault injection: crash the process at a named point of the send path.

The exactly-once tests kill a real ``tocsin notify`` between handing a message
to the relay and marking it sent. ``TOCSIN_FAULT=after-send`` (or
``before-send``, ``after-claim``) makes the process die there with SIGKILL,
as a power cut would: no cleanup, no flush. It is not a setting (settings are
read in ``tocsin.config``); it exists only for those tests.
"""

from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    """Die here if the test asked for it."""
    if os.environ.get("TOCSIN_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
