"""The command line's fixed surface: every contract command, help, exit codes."""

from __future__ import annotations

import json

import pytest

CONTRACT_COMMANDS = [
    "init",
    "ingest",
    "crawl",
    "enrich",
    "notify",
    "recheck",
    "run",
    "inbox",
    "status",
    "export",
    "board",
    "demo",
]


def test_help_lists_every_contract_command(sqlite_cli) -> None:
    result = sqlite_cli("--help")
    assert result.returncode == 0
    for name in CONTRACT_COMMANDS:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("name", CONTRACT_COMMANDS)
def test_each_command_has_help(sqlite_cli, name: str) -> None:
    result = sqlite_cli(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_bad_now_is_a_usage_error(sqlite_cli) -> None:
    result = sqlite_cli("--now", "yesterday-ish", "status")
    assert result.returncode == 2
    assert "--now" in result.stderr


def test_config_error_is_one_line_exit_2(sqlite_cli) -> None:
    result = sqlite_cli("status", env={"TOCSIN_SMTP_PORT": "lots"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "smtp.port" in result.stderr


def test_init_then_status_json_on_an_empty_store(cli) -> None:
    assert cli("init").returncode == 0
    again = cli("init")
    assert again.returncode == 0 and "up to date" in again.stdout
    result = cli("status", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["urls"]["total"] == 0
    assert set(summary["urls"]) == {
        "total",
        "pending",
        "malicious",
        "suspicious",
        "clean",
        "offline",
        "error",
    }
    assert summary["notices"] == {"sent": 0, "queued": 0, "failed": 0}
    assert summary["campaigns"] == []


def test_export_of_an_empty_store(cli) -> None:
    assert json.loads(cli("export").stdout) == []
    csv = cli("export", "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("url,verdict,family,rules,campaign")
