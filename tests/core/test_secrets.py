"""The database password never reaches the terminal, errors or logs (cron mail keeps them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from store.db import Database
from store.dburl import mask_password, shown_url
from tocsin.errors import ConfigError

SECRET = "s3cret/Pw@x"  # trust auth on the test server: any password connects
ENCODED = "s3cret%2FPw%40x"


def _with_password(url: str, password: str = SECRET) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _leaks(text: str) -> bool:
    return any(s in text for s in (SECRET, ENCODED, "s3cret"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql://postgres:{ENCODED}@db.example:5432/t",
            "postgresql://postgres:***@db.example:5432/t",
        ),
        (
            "postgresql://u:s3cret@h/t?password=s3cret&x=1",
            "postgresql://u:***@h/t?password=%2A%2A%2A&x=1",
        ),
        ("postgresql://u:s3cret@h:notaport/t", "postgresql://u:***@h:notaport/t"),
        ("postgresql://u:s3c:r@t@h:notaport/t", "postgresql://u:***@h:notaport/t"),
        ("not a url u:s3cret@h?password=s3cret", "not a url u:***@h?password=***"),
        ("sqlite:////var/lib/tocsin/tocsin.db", "sqlite:////var/lib/tocsin/tocsin.db"),
    ],
)
def test_shown_url_masks_every_form_of_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert not _leaks(shown_url(url)) and "s3c" not in shown_url(url)


def test_mask_password_in_a_driver_message() -> None:
    url = f"postgresql://postgres:{ENCODED}@db.example/t"
    message = f'failed for {url}: password "{SECRET}" or {ENCODED} refused'
    masked = mask_password(message, url)
    assert not _leaks(masked)
    assert masked.startswith("failed for postgresql://postgres:***@db.example/t: password")


def _cli(make_cli: Any, tmp_path: Path, url: str) -> Any:
    config = tmp_path / "tocsin.toml"
    config.write_text(f"[database]\nurl = {json.dumps(url)}\n", encoding="utf-8")
    return make_cli(tmp_path, config)


def test_password_is_masked_in_the_init_line(make_cli: Any, tmp_path: Path, pg_url: str) -> None:
    init = _cli(make_cli, tmp_path, _with_password(pg_url))("init")
    assert init.returncode == 0, init.stderr
    assert "database postgresql+psycopg://postgres:***@127.0.0.1:5432/test?options=" in init.stdout
    assert "up to date" in init.stdout
    assert not _leaks(init.stdout + init.stderr)


def test_password_is_masked_when_the_database_cannot_be_opened(
    make_cli: Any, tmp_path: Path
) -> None:
    refused = _with_password("postgresql://postgres@127.0.0.1:1/test")
    # init opens the store the same way (migrate.current_revision)
    result = _cli(make_cli, tmp_path, refused)("status")
    assert result.returncode != 0
    shown = "cannot open the database postgresql+psycopg://postgres:***@127.0.0.1:1/test: "
    assert shown in result.stderr, result.stderr
    assert not _leaks(result.stdout + result.stderr)
    unparsable = f"postgresql://postgres:{ENCODED}@127.0.0.1:notaport/test"
    with pytest.raises(ConfigError) as caught:
        Database(unparsable)
    assert "database.url" in str(caught.value) and not _leaks(str(caught.value))
