"""Helpers of the command-line tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_tocsin(
    cwd: Path, config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``tocsin --config CONFIG ARGS...`` started in ``cwd``, without the caller's
    ``TOCSIN_*`` variables; several run at once (``communicate()`` each)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    full_env.update(env or {}, COLUMNS="200")
    return subprocess.Popen(
        [sys.executable, "-m", "tocsin", "--config", str(config), *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
