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


# -- issue 12: values checked when the config loads -----------------------------------------


def _bool_keys() -> list[tuple[str, str]]:
    return [
        (table, key)
        for table, field in config.Config.model_fields.items()
        if hasattr(field.annotation, "model_fields")  # not [[feeds]], which has no bool
        for key, key_field in field.annotation.model_fields.items()
        if key_field.annotation is bool
    ]


@pytest.mark.parametrize("value", ['"yes"', '"true"', "1", "0", '"off"'])
def test_every_boolean_key_refuses_what_is_not_true_or_false(tmp_path: Path, value: str) -> None:
    keys = _bool_keys()
    assert ("network", "allow_private") in keys and len(keys) > 10
    for table, key in keys:
        path = tmp_path / "bool.toml"
        path.write_text(f"[{table}]\n{key} = {value}\n")
        with pytest.raises(ConfigError) as caught:
            config.load(path, environ={})
        assert caught.value.key == f"{table}.{key}"
        assert "expected true or false" in str(caught.value)


@pytest.mark.parametrize("raw", ["yes", "True", "1", "on", ""])
def test_environment_booleans_are_true_or_false_only(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"expected true or false.*TOCSIN_RDAP_ALLOW_INSECURE"):
        config.load(None, environ={"TOCSIN_RDAP_ALLOW_INSECURE": raw})
    assert config.load(None, environ={"TOCSIN_RDAP_ALLOW_INSECURE": "true"}).rdap.allow_insecure
    assert not config.load(None, environ={"TOCSIN_BROWSER_HEADLESS": "false"}).browser.headless


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("allow_cidrs", "10.0.0.0/33"),
        ("allow_cidrs", "localhost"),
        ("allow_cidrs", "127.10.0.0/16, 10/8"),
        ("nameservers", "dns.example"),
        ("nameservers", "192.0.2.53:99999"),
        ("nameservers", "192.0.2.53:"),
        ("nameservers", "192.0.2.300"),
    ],
)
def test_network_lists_are_checked_when_the_config_loads(key: str, value: str) -> None:
    env = {f"TOCSIN_NETWORK_{key.upper()}": value}
    with pytest.raises(ConfigError) as caught:
        config.load(None, environ=env)
    assert caught.value.key == f"network.{key}" and "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_network_lists_accept_their_documented_forms(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    path.write_text(
        '[network]\nallow_cidrs = [" 127.10.0.0/16", "10.1.2.3", "fd00::/8"]\n'
        'nameservers = ["192.0.2.53", "192.0.2.53:5353", "[2001:db8::53]:53", "2001:db8::1"]\n'
    )
    cfg = config.load(path, environ={})
    assert cfg.network.allow_cidrs == ["127.10.0.0/16", "10.1.2.3", "fd00::/8"]
    assert len(cfg.network.nameservers) == 4


def test_an_unknown_tocsin_variable_is_one_warning(capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "TOCSIN_NETWORK_ALOW_PRIVATE": "true",  # misspelt: would be ignored without a word
        "TOCSIN_CONFIG": "x.toml",
        "TOCSIN_FAULT": "",
        "TOCSIN_SMTP_PORT": "2525",
    }
    cfg = config.load(None, environ=env)
    assert cfg.network.allow_private is False and cfg.smtp.port == 2525
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "tocsin: warning: unknown environment variable TOCSIN_NETWORK_ALOW_PRIVATE"
    )
    assert "did you mean TOCSIN_NETWORK_ALLOW_PRIVATE?" in line


def test_a_folder_as_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a folder, not a file") as caught:
        config.load(tmp_path, environ={})
    assert caught.value.exit_code == 2


# -- issue 14: `tocsin serve`'s [[feeds]] --------------------------------------------------


def test_feeds_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    feed = '[[feeds]]\nurl = "https://feeds.example/a.csv"\nformat = "urlhaus-csv"\n'
    path.write_text(feed + 'source = "a"\nevery = "15m"\n[[feeds]]\nurl = "https://b.example/"\n')
    loaded = config.load(path, environ={})
    assert [f.job for f in loaded.feeds] == ["feed:a", "feed:https://b.example/"]
    assert loaded.feeds[0].every.total_seconds() == 900
    for bad, key in (
        ('[[feeds]]\nurl = "ftp://x/"\n', "feeds.url"),
        ('[[feeds]]\nurl = "https://x/"\nformat = "xml"\n', "feeds.format"),
        ('[[feeds]]\nurl = "https://x/"\n[[feeds]]\nurl = "https://x/"\n', "feeds"),
    ):
        path.write_text(bad)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config.load(path, environ={})
