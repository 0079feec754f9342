"""`tocsin demo`: the whole pipeline against the bundled sandbox on loopback.

Starts the sandbox internet in ``./demo/`` (or ``--dir``), writes a config for
it, and runs each stage as a ``tocsin`` subprocess, exactly as a user would:
``init``, ``ingest`` the sandbox's feed, ``crawl``, ``enrich``, ``notify``,
``status``; then it makes an admin log-in for the board. A stage that is not
built yet (exit 2, "not available yet") is reported as skipped. Then the
sandbox stops (or, with ``--keep-running``, stays up until Ctrl-C) and the
command says where to look, and how to serve the board on the demo's store.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import UsageError
from tocsin.ui import err, out, table

STAGES: list[tuple[str, list[str]]] = [
    ("init", ["init"]),
    ("ingest", ["ingest", "{feed}", "--source", "sandbox"]),
    ("crawl", ["crawl"]),
    ("enrich", ["enrich"]),
    ("notify", ["notify"]),
    ("status", ["status"]),
]
# What a fresh demo run removes from its folder (only these names, nothing else).
STATE_NAMES = ("tocsin.db", "tocsin.db-wal", "tocsin.db-shm", "outbox", "evidence")


def _run_stage(
    argv: list[str], cwd: Path, timeout: float, env: dict[str, str]
) -> tuple[int, str, float]:
    """Run one ``tocsin`` subprocess, echoing its output live; keep stderr for the verdict."""
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        argv,
        cwd=cwd,
        stdout=None,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    captured: list[bytes] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in iter(proc.stderr.readline, b""):
            captured.append(line)
            sys.stderr.buffer.write(line)
            sys.stderr.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        captured.append(f"demo: stopped after {timeout:.0f}s\n".encode())
    reader.join(timeout=5)
    return code, b"".join(captured).decode("utf-8", "replace"), time.monotonic() - started


DEMO_USER = "demo"


def _board_login(base: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, str] | None:
    """An admin log-in for the demo's board, with a new password each run."""
    password = secrets.token_urlsafe(12)
    proc = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [*base, "user", "add", DEMO_USER, "--role", "admin", "--password-stdin"],
        cwd=cwd,
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        err.print(proc.stderr.strip())
        return None
    return DEMO_USER, password


def app_config_url(config_path: Path) -> str:
    """The board's address as the demo's config gives it."""
    from tocsin.config import load

    return load(config_path).board.base_url.rstrip("/")


@click.command(name="demo")
@click.option(
    "--dir",
    "folder",
    default="demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the sandbox, its config, the database, outbox and evidence go.",
)
@click.option("--keep-running", is_flag=True, help="Leave the sandbox up until Ctrl-C.")
@click.option(
    "--guard",
    type=click.Choice(["open", "strict"]),
    default="open",
    show_default=True,
    help="open: network.allow_private; strict: only the sandbox's providers are reachable.",
)
@click.option("--with-hostile", is_flag=True, help="Feed the hostile pages too (slower).")
@click.option(
    "--stage-timeout",
    default=900.0,
    show_default=True,
    help="Seconds before a stage is stopped.",
)
@click.option("--keep-state", is_flag=True, help="Keep the previous run's database and outbox.")
@click.option(
    "--stages",
    default=",".join(name for name, _ in STAGES),
    show_default=True,
    help="Which stages to run, comma-separated, in pipeline order.",
)
@pass_app
def command(
    app: App,
    folder: Path,
    keep_running: bool,
    guard: str,
    with_hostile: bool,
    stage_timeout: float,
    keep_state: bool,
    stages: str,
) -> int:
    """The whole pipeline against the bundled sandbox on loopback."""
    from tocsin.sandbox import Sandbox

    chosen = {s.strip() for s in stages.split(",") if s.strip()}
    unknown = chosen - {name for name, _ in STAGES}
    if unknown:
        raise UsageError(f"--stages: unknown stage(s) {', '.join(sorted(unknown))}")

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if not keep_state:
        for name in STATE_NAMES:
            target = folder / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    database_url = f"sqlite:///{folder / 'tocsin.db'}"
    config_path = folder / "tocsin.toml"
    sandbox = Sandbox(folder / "sandbox")
    err.print(f"[bold]Starting the sandbox internet[/] in {sandbox.workdir}")
    sandbox.start()
    rows: list[list[object]] = []
    failed = False
    try:
        sandbox.write_config(config_path, database_url, guard=guard)
        kinds = ["compromised", "payload", "clean", "tricky-clean", "offline", "ssrf"]
        if with_hostile:
            kinds.append("hostile")
        feed = sandbox.write_feed(folder / "feed.txt", kinds=kinds)
        urls = len(feed.read_text(encoding="utf-8").splitlines())
        err.print(
            f"  {len(sandbox.sites)} sites on {len(sandbox.providers)} providers; "
            f"feed of {urls} URLs at {feed}"
        )
        base = [sys.executable, "-m", "tocsin", "--config", str(config_path)]
        if app.clock.frozen is not None:
            base += ["--now", app.clock.frozen.isoformat()]
        env = {k: v for k, v in os.environ.items() if k != "TOCSIN_CONFIG"}
        for name, args in STAGES:
            if name not in chosen:
                continue
            argv = base + [a.replace("{feed}", str(feed)) for a in args]
            err.rule(f"tocsin {name}")
            code, stderr, seconds = _run_stage(argv, folder, stage_timeout, env)
            if code == 2 and "not available yet" in stderr:
                outcome = "skipped (not built yet)"
            elif code == 0:
                outcome = "ok"
            elif code == 1:
                outcome = "ran, some items failed"
            else:
                outcome = f"failed (exit {code})"
                failed = True
            rows.append([name, outcome, round(seconds, 1)])
        login = _board_login(base, folder, env)
        out.print(table("Demo stages", ["stage", "outcome", "seconds"], rows))
        out.print(
            f"\n[bold]Where to look[/]\n"
            f"  config    {config_path}\n"
            f"  database  {database_url}\n"
            f"  outbox    {folder / 'outbox'}  (one file per notice, a maildir)\n"
            f"  evidence  {folder / 'evidence'}\n"
            f"  feed      {feed}\n"
            f"  status    tocsin --config {config_path} status\n"
            f"  export    tocsin --config {config_path} export --format json\n"
            f"  report    tocsin --config {config_path} report asn --since 7d\n"
            f"  package   tocsin --config {config_path} package TICKET -o case.zip"
            f"  (timestamped by the sandbox's TSA: only while it runs, --keep-running)\n"
        )
        board_url = app_config_url(config_path)
        out.print(
            f"[bold]The board[/]\n"
            f"  serve it  tocsin board --config {config_path}\n"
            f"  open      {board_url}/\n"
            f"  log in    {login[0]} / {login[1]}\n"
            if login
            else "[bold]The board[/]: could not create a demo log-in (see above).\n"
        )
        if keep_running:
            out.print(
                f"The sandbox is up (sites on port {sandbox.http_port}/{sandbox.https_port}, "
                f"SMTP {sandbox.smtp.host}:{sandbox.smtp.port}). Ctrl-C to stop."
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        sandbox.stop()
        err.print("Sandbox stopped.")
    return 1 if failed else 0
