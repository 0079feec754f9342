"""`tocsin demo` starts the sandbox, runs stages as subprocesses, and stops it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin import config as tocsin_config


@pytest.mark.slow
def test_demo_runs_stages_and_says_where_to_look(sqlite_cli, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = sqlite_cli("demo", "--dir", str(folder), "--stages", "init,status", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Sandbox stopped." in result.stderr
    for stage in ("init", "status"):
        assert stage in result.stdout
    assert "ingest" not in result.stdout.split("Demo stages")[1].split("Where to look")[0]
    assert "Where to look" in result.stdout and str(folder / "outbox") in result.stdout
    cfg = tocsin_config.load(folder / "tocsin.toml", environ={})
    assert cfg.database.url == f"sqlite:///{folder / 'tocsin.db'}"
    urls = (folder / "feed.txt").read_text().splitlines()
    assert len(urls) > 30 and all(u.startswith("http") for u in urls)
    assert (folder / "tocsin.db").exists()
    # It ends with the board: how to serve it, where, and a log-in that works.
    board = result.stdout.split("The board")[1]
    assert f"tocsin board --config {folder / 'tocsin.toml'}" in board
    assert "http://127.0.0.1:8080/" in board
    name, password = board.split("log in")[1].split()[0::2][:2]
    from board import auth
    from store.db import Database
    from tocsin.clock import utcnow

    db = Database(cfg.database.url)
    with db.session() as s:
        assert auth.login(s, name, password, utcnow(), cfg.board.session_ttl) is not None
    db.dispose()


def test_demo_rejects_unknown_stage(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tocsin.cli import cli
    from tocsin.errors import UsageError

    folder = tmp_path / "d"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder), "--stages", "crawl,dance"])
    assert isinstance(result.exception, UsageError)
    assert "dance" in str(result.exception)
    assert not (folder / "sandbox").exists()  # refused before starting anything
