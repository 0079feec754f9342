"""The sandbox in a child process, for benchmarks.

In the benchmarked process the sandbox's servers (aiohttp in a thread) would
compete with tocsin for the GIL, and on two cores that decides the result. Run
in a child, they sit apart as real servers would, and every side of a
comparison (tocsin, bare Scrapy, PlaywrightCapture...) is measured against the
same servers.

    with SandboxProcess(workdir, scale=2000) as sandbox:
        sandbox.sites       # the scale sites: id, host, ip, url, tags
        sandbox.write_config(path, "sqlite:///...", crawl={...})

The child is ``python bench/sandbox_proc.py DIR --scale N [--mix JSON]``; it
writes ``DIR/sandbox.json``, prints ``ready`` and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


class SandboxProcess:
    """A :class:`tocsin.sandbox.Sandbox` with ``scale`` synthetic sites, in a child."""

    def __init__(self, workdir: str | Path, scale: int, mix: dict[str, float] | None = None):
        self.workdir = Path(workdir).resolve()
        self.scale = scale
        self.mix = mix
        self.sites: list[dict[str, Any]] = []
        self.tables: dict[str, dict[str, Any]] = {}
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> SandboxProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, str(self.workdir), "--scale", str(self.scale)]
        if self.mix:
            command += ["--mix", json.dumps(self.mix)]
        self._child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert self._child.stdout is not None
            line = self._child.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"the sandbox child did not start (said {line!r})")
            info = json.loads((self.workdir / "sandbox.json").read_text())
        except BaseException:
            self.__exit__()
            raise
        self.sites, self.tables = info["sites"], info["tables"]
        return self

    def __exit__(self, *exc: object) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    @property
    def pid(self) -> int:
        """The child's process id (its servers' CPU is measured there)."""
        assert self._child is not None
        return self._child.pid

    def config_tables(self, database_url: str, **overrides: dict[str, Any]) -> dict[str, Any]:
        """The sandbox's config tables (guard "open") with ``overrides`` merged in."""
        tables = json.loads(json.dumps(self.tables))
        tables["database"] = {"url": database_url}
        for table, values in overrides.items():
            tables.setdefault(table, {}).update(values)
        return tables

    def write_config(self, path: str | Path, database_url: str, **overrides: Any) -> Path:
        """Write a ``tocsin.toml`` for the sandbox; ``overrides`` merge into tables."""
        from tocsin.sandbox.core import to_toml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_toml(self.config_tables(database_url, **overrides)), encoding="utf-8")
        return path


def serve(workdir: Path, scale: int, mix: dict[str, float] | None) -> None:
    """Child process: run the sandbox until stdin closes."""
    import logging

    from tocsin.sandbox import Sandbox

    logging.basicConfig(level=logging.ERROR)
    with Sandbox(workdir / "sandbox", scale=scale, mix=mix) as sb:
        sites = [
            {"id": s.id, "host": s.host, "ip": s.ip, "url": sb.url(s.id), "tags": list(s.tags)}
            for s in sb.sites.values()
            if "scale" in s.tags
        ]
        tables = sb.config_tables("sqlite://")
        (workdir / "sandbox.json").write_text(json.dumps({"sites": sites, "tables": tables}))
        print("ready", flush=True)
        sys.stdin.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--mix", type=json.loads, default=None)
    args = parser.parse_args()
    serve(args.workdir, args.scale, args.mix)


if __name__ == "__main__":
    main()
