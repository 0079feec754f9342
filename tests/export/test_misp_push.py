"""`tocsin export --push misp`: the campaign's event added, then updated, on a MISP
instance, never duplicated (issue 15, point 3).

MISP cannot run here: the instance is :class:`export_support.FakeMisp` on 127.0.0.1,
which checks every request PyMISP sends against MISP's documented REST API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from export_support import CAMPAIGN, GREEN, FakeMisp, export_config

from handoff.misp import event_uuid
from tocsin.sandbox.tls import make_certs

KEY = "tocsinTestKey0123456789abcdefghijklmnopqr"  # MISP keys are 40 characters


def _cli(sqlite_seeded, tmp_path: Path, **misp):
    _, make_cli, url = sqlite_seeded
    config = export_config(tmp_path / "push.toml", url, tmp_path / "evidence", **misp)
    return make_cli(tmp_path, config)


def test_first_push_adds_the_second_updates(sqlite_seeded, tmp_path: Path) -> None:
    with FakeMisp(KEY) as misp:
        cli = _cli(sqlite_seeded, tmp_path, url=misp.url, key=KEY)
        first = cli("export", "--push", "misp", "--campaign", CAMPAIGN)
        assert first.returncode == 0, first.stderr
        uuid = event_uuid(CAMPAIGN)
        assert f"added MISP event {uuid} (id 1)" in first.stdout
        # PyMISP's start (version, the key's user, the types), then find by uuid, then add.
        assert misp.requests == [
            ("GET", "/servers/getVersion"),
            ("GET", "/users/view/me"),
            ("GET", "/attributes/describeTypes.json"),
            ("HEAD", f"/events/view/{uuid}"),
            ("POST", "/events/add"),
        ]
        stored = misp.events[uuid]
        assert len(stored["Attribute"]) == 8 and len(stored["Object"]) == 1
        assert {t["name"] for t in stored["Tag"]} == {"tlp:red", 'tocsin:family="card-skimmer"'}
        assert stored["info"] == f"tocsin campaign {CAMPAIGN}: compromised websites"
        assert stored["distribution"] == "0"  # organisation only, by default

        misp.requests.clear()
        second = cli("export", "--push", "misp", "--campaign", CAMPAIGN)
        assert second.returncode == 0, second.stderr
        assert f"updated MISP event {uuid} (id 1)" in second.stdout
        assert ("POST", f"/events/edit/{uuid}") in misp.requests
        assert ("POST", "/events/add") not in misp.requests
        # One event, its attributes matched by uuid: nothing duplicated.
        assert list(misp.events) == [uuid]
        assert len(misp.events[uuid]["Attribute"]) == 8
        assert len(misp.events[uuid]["Object"]) == 1
        assert misp.problems == []


def test_every_campaign_is_pushed_without_a_name(sqlite_seeded, tmp_path: Path) -> None:
    with FakeMisp(KEY) as misp:
        cli = _cli(sqlite_seeded, tmp_path, url=misp.url, key=KEY, distribution=1)
        result = cli("export", "--push", "misp")
        assert result.returncode == 0, result.stderr
        assert set(misp.events) == {event_uuid(CAMPAIGN), event_uuid(GREEN)}
        assert {e["distribution"] for e in misp.events.values()} == {"1"}
        assert misp.problems == []


def test_a_wrong_key_is_one_line_without_the_key(sqlite_seeded, tmp_path: Path) -> None:
    with FakeMisp(KEY) as misp:
        wrong = "wrongKey" + KEY[8:]
        cli = _cli(sqlite_seeded, tmp_path, url=misp.url, key=wrong)
        result = cli("export", "--push", "misp", "--campaign", CAMPAIGN)
        assert result.returncode == 1
        assert wrong not in result.stderr + result.stdout
        assert result.stderr.strip().count("\n") == 0 and "MISP" in result.stderr
        assert misp.events == {}


def test_no_url_or_key_is_a_usage_error(sqlite_seeded, tmp_path: Path) -> None:
    cli = _cli(sqlite_seeded, tmp_path)
    result = cli("export", "--push", "misp")
    assert result.returncode == 2
    assert "set misp.url and misp.key" in result.stderr


def test_tls_is_verified_unless_turned_off(sqlite_seeded, tmp_path: Path) -> None:
    """A certificate from an authority the system does not trust: refused by default,
    taken when $REQUESTS_CA_BUNDLE names that authority, or with misp.verify_tls = false."""
    certs = make_certs(tmp_path / "certs", ["localhost"], ["127.0.0.1"])
    with FakeMisp(KEY, tls=certs.server_context()) as misp:
        cli = _cli(sqlite_seeded, tmp_path, url=misp.url, key=KEY)
        refused = cli("export", "--push", "misp", "--campaign", GREEN)
        assert refused.returncode == 1 and "certificate verify failed" in refused.stderr
        assert misp.events == {}
        trusted = cli(
            "export", "--push", "misp", "--campaign", GREEN,
            env={"REQUESTS_CA_BUNDLE": str(certs.ca_path)},
        )  # fmt: skip
        assert trusted.returncode == 0 and "added" in trusted.stdout, trusted.stderr
        cli = _cli(sqlite_seeded, tmp_path, url=misp.url, key=KEY, verify_tls=False)
        unchecked = cli("export", "--push", "misp", "--campaign", GREEN)
        assert unchecked.returncode == 0 and "updated" in unchecked.stdout, unchecked.stderr
        assert list(misp.events) == [event_uuid(GREEN)]


@pytest.mark.parametrize("value", ["ftp://misp.example/", "misp.example"])
def test_a_bad_misp_url_names_the_key(sqlite_seeded, tmp_path: Path, value: str) -> None:
    cli = _cli(sqlite_seeded, tmp_path, url=value, key=KEY)
    result = cli("export", "--push", "misp")
    assert result.returncode == 2 and "misp.url" in result.stderr
