"""`tocsin board` as a command: one-line errors, and the HTTPS-only cookie flag."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from starlette.testclient import TestClient

from board.app import create_app
from store import migrate
from store.db import Database
from tocsin.config import load


def test_a_taken_port_is_one_line_and_exit_2(sqlite_cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = sqlite_cli("board", "--host", "127.0.0.1", "--port", str(port), timeout=60)
    assert result.returncode == 2
    assert re.fullmatch(
        rf"tocsin: --port: cannot listen on 127\.0\.0\.1:{port}: .+\n",
        result.stderr.splitlines(True)[-1],
    )


def test_session_cookie_is_secure_when_the_board_is_served_over_https(tmp_path: Path) -> None:
    folder = tmp_path
    url = f"sqlite:///{folder / 'tocsin.db'}"
    db = Database(url)
    migrate.upgrade(db)
    config = load(
        None,
        {
            "TOCSIN_DATABASE_URL": url,
            "TOCSIN_BOARD_BASE_URL": "https://board.example.org",
            "TOCSIN_BOARD_SECRET": "k" * 32,
        },
    )
    from board import auth
    from tocsin.clock import utcnow

    with db.session() as s:
        auth.add_user(s, "alice", "analyst", "long enough pw", utcnow())
    with TestClient(create_app(config, db), base_url="https://board.example.org") as http:
        form = http.get("/login")
        assert "strict-transport-security" in form.headers
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
        answer = http.post(
            "/login",
            data={"csrf": csrf, "name": "alice", "password": "long enough pw"},
            follow_redirects=False,
        )
    assert answer.status_code == 303
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "tocsin_session" in v
    )
    assert "Secure" in cookie and "HttpOnly" in cookie
    db.dispose()


def test_board_takes_its_config_after_the_command_too(sqlite_cli, tmp_path: Path) -> None:
    missing = sqlite_cli("board", "--config", str(tmp_path / "nowhere.toml"), timeout=60)
    assert missing.returncode == 2
    assert (
        missing.stderr.strip()
        == f"tocsin: config error: --config: no such file: {tmp_path / 'nowhere.toml'}"
    )
