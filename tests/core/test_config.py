"""Configuration: contract keys and defaults, environment overrides, one-line errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tocsin import config
from tocsin.errors import ConfigError


def test_contract_defaults() -> None:
    cfg = config.load(None, environ={})
    assert cfg.database.url == "sqlite:///tocsin.db"
    assert cfg.network.allow_private is False
    assert cfg.network.hosts_file == ""
    assert cfg.browser.executable_path == ""
    assert cfg.asn.ipasn_db == "" and cfg.asn.asnames == ""
    assert cfg.rdap.bootstrap_dir == "" and cfg.rdap.allow_insecure is False
    assert cfg.notify.mode == "outbox" and cfg.notify.outbox_dir == "outbox"
    assert cfg.notify.from_addr == ""
    assert (cfg.smtp.host, cfg.smtp.port) == ("localhost", 25)
    assert (cfg.smtp.starttls, cfg.smtp.ssl) == (False, False)
    assert (cfg.smtp.username, cfg.smtp.password) == ("", "")
    assert cfg.escalation.grace == timedelta(days=3)
    assert cfg.escalation.recheck_after == [timedelta(days=d) for d in (1, 2, 4, 8, 16)]
    assert cfg.escalation.cert_contacts == ""


def test_toml_then_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        '[network]\nallow_private = true\n[escalation]\ngrace = "6h"\n'
        'recheck_after = ["90s", "15m"]\n[smtp]\nport = 2525\n'
    )
    env = {"TOCSIN_SMTP_PORT": "587", "TOCSIN_DATABASE_URL": "sqlite:///x.db"}
    cfg = config.load(path, environ=env)
    assert cfg.network.allow_private is True
    assert cfg.escalation.grace == timedelta(hours=6)
    assert cfg.escalation.recheck_after == [timedelta(seconds=90), timedelta(minutes=15)]
    assert cfg.smtp.port == 587
    assert cfg.database.url == "sqlite:///x.db"


def test_environment_lists_and_underscored_keys() -> None:
    env = {
        "TOCSIN_ESCALATION_RECHECK_AFTER": "1h, 2h",
        "TOCSIN_NETWORK_ALLOW_PRIVATE": "true",
        "TOCSIN_NOTIFY_FROM_ADDR": "abuse@example.org",
    }
    cfg = config.load(None, environ=env)
    assert cfg.escalation.recheck_after == [timedelta(hours=1), timedelta(hours=2)]
    assert cfg.network.allow_private is True
    assert cfg.notify.from_addr == "abuse@example.org"


@pytest.mark.parametrize(
    ("toml", "env", "key", "expected"),
    [
        ("[smtp]\nport = 'twenty-five'\n", {}, "smtp.port", "expected an integer"),
        ("[escalation]\ngrace = '3 days'\n", {}, "escalation.grace", "expected a duration"),
        ("[notify]\nmode = 'pigeon'\n", {}, "notify.mode", "expected one of"),
        ("[network]\nallow_privat = true\n", {}, "network.allow_privat", "unknown key"),
        ("", {"TOCSIN_NETWORK_ALLOW_PRIVATE": "maybe"}, "network.allow_private", "true or false"),
        ("[smtp]\nport = 70000\n", {}, "smtp.port", "65535"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], key: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ=env)
    message = str(caught.value)
    assert caught.value.key == key
    assert key in message and expected in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[network\nallow_private = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path, environ={})


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.resolve_path(None, environ={}) is None
    (tmp_path / "tocsin.toml").write_text("")
    assert config.resolve_path(None, environ={}) == Path("tocsin.toml")
    assert config.resolve_path(None, environ={"TOCSIN_CONFIG": "/e.toml"}) == Path("/e.toml")
    assert config.resolve_path("/x.toml", environ={"TOCSIN_CONFIG": "/e.toml"}) == Path("/x.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("6h", 21600), ("3d", 259200), ("1w", 604800), ("250ms", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert config.parse_duration(text).total_seconds() == seconds


def test_sizes() -> None:
    assert config.parse_size("8192") == 8192
    assert config.parse_size("512KiB") == 512 * 1024
    assert config.parse_size("10MB") == 10_000_000
    with pytest.raises(ValueError, match="size"):
        config.parse_size("lots")
