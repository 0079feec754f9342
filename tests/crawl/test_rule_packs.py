"""Community rule packs: bundled and on by default, regexes bounded in time, ``tocsin rules
update`` / ``rollback`` from a loopback server through the guard, ``rules list`` counts
from the store (SQLite and PostgreSQL), ``rules test`` on a saved page and on a URL."""

from __future__ import annotations

import copy
import io
import json
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crawl_support import add_urls, run_cli, sandbox_config
from loopback import FeedServer, serving

from crawler.items import CheckItem
from crawler.signatures import community, rulepacks
from crawler.signatures.engine import Engine
from crawler.signatures.rulepacks import BUNDLED_DIR, PackRefused
from store.db import Database
from store.models import Check
from tocsin import config as config_module
from tocsin.config import Config
from tocsin.errors import BlockedAddress, FetchError
from tocsin.sandbox.core import to_toml

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FIDDLEITM: list[dict[str, Any]] = json.loads(
    (BUNDLED_DIR / "fiddleitm" / "rules.json").read_text(encoding="utf-8")
)
INDICATOR = b"""title: Test kit
detection:
  form:
    html|contains: 'action="tocsin-test-kit.php"'
  condition: form
tags: [kit]
"""


@pytest.fixture(scope="module")
def pack_server() -> Iterator[FeedServer]:
    yield from serving()


def _config(tmp_path: Path, *, private: bool = True, **signatures: Any) -> Config:
    return Config.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'tocsin.db'}"},
            "network": {"allow_private": private},
            "signatures": {"packs_dir": str(tmp_path / "packs"), **signatures},
        }
    )


def _rule(name: str, value: str, kind: str = "string") -> dict[str, Any]:
    return {
        "rule_name": name,
        "conditions": [[{"key": "response_body", "type": kind, "value": value}]],
    }


def _page_item(html: str) -> CheckItem:
    item = CheckItem(1, "http://shop.test/", "triage", NOW)
    item.route = "browser"
    item.served_html = html
    return item


# --------------------------------------------------------------------------- bundled


def test_the_bundled_packs_run_by_default(tmp_path: Path) -> None:
    config = _config(tmp_path)
    packs = rulepacks.active_packs(config)
    assert [(p.name, p.origin) for p in packs] == [("fiddleitm", "bundled"), ("iok", "bundled")]
    assert [p.version for p in packs] == ["snapshot 2025-08-17", "snapshot 2025-03-29"]
    assert all((p.folder / "LICENSE").is_file() for p in packs)
    names = {rule.rule for rule in Engine(config).community}
    # Every rule of both packs loads, the IOK file with a TAB that PyYAML refuses included.
    assert len(names) == len({r["rule_name"] for r in FIDDLEITM}) + 263
    assert {"fiddleitm:ClearFake iframe", "iok:bank-of-america-kgzrkd"} <= names
    verdict = Engine(config).evaluate(
        _page_item("<script>var payload = atob('x'); function copyCode() {}</script>")
    )
    assert verdict.value == "suspicious" and "fiddleitm:ClearFake iframe" in verdict.rules
    off = _config(tmp_path, community_packs=[])
    assert Engine(off).community == []


def test_the_packs_folder_is_beside_the_config_or_the_store_never_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    (folder / "tocsin.toml").write_text("", encoding="utf-8")
    loaded = config_module.load(folder / "tocsin.toml", environ={})
    assert rulepacks.packs_root(loaded) == folder.resolve() / "rule-packs"
    (folder / "tocsin.toml").write_text('[signatures]\npacks_dir = "packs"\n', encoding="utf-8")
    loaded = config_module.load(folder / "tocsin.toml", environ={})
    assert rulepacks.packs_root(loaded) == folder.resolve() / "packs"
    store = Config.model_validate({"database": {"url": f"sqlite:///{tmp_path / 'db' / 'x.db'}"}})
    assert rulepacks.packs_root(store) == tmp_path / "db" / "rule-packs"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    pg = Config.model_validate({"database": {"url": "postgresql+psycopg://u@h/db"}})
    assert rulepacks.packs_root(pg) == tmp_path / "data" / "tocsin" / "rule-packs"


@pytest.mark.serial  # wall-clock bounds on a regex timeout
def test_a_catastrophic_regex_is_refused_when_read_and_cut_off_when_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backtracks catastrophically"):
        community.compile_regex("(a+)+$")
    problems: list[community.RuleError] = []
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([_rule("slow", "(a+)+$", "regex")]), encoding="utf-8")
    assert community.load([path], problems) == [] and problems[0].rule == "slow"
    # One the probes miss (its character is only written as an escape) is bounded at run time.
    path.write_text(json.dumps([_rule("tilde", r"(\x7e+)+$", "regex")]), encoding="utf-8")
    [rule] = community.load([path])
    hostile = "~" * 50_000 + "!"
    ticks: list[float] = []  # the spider's reactor thread must keep running meanwhile

    def tick() -> None:
        for _ in range(100):
            ticks.append(time.monotonic())
            time.sleep(0.005)

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.02)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        rule.test(community.PageText(html=hostile))
    gave_up = time.monotonic()
    ticker.join()
    assert gave_up - started < 3
    assert sum(1 for t in ticks if started < t < gave_up) >= 10  # the GIL is let go meanwhile
    engine = Engine(_config(tmp_path, community_packs=[], community_rules=[str(path)]))
    started = time.monotonic()
    verdict = engine.evaluate(_page_item(hostile))
    assert time.monotonic() - started < 3 + community.PAGE_BUDGET
    assert verdict.value == "clean" and "fiddleitm:tilde" not in verdict.rules


# --------------------------------------------------------------------------- update


def test_update_installs_a_good_pack_says_what_changed_and_rolls_back(
    tmp_path: Path, pack_server: FeedServer
) -> None:
    rules = copy.deepcopy(FIDDLEITM)
    removed = rules.pop(0)["rule_name"]
    rules[0]["conditions"][0][0]["value"] += "-changed"
    modified = rules[0]["rule_name"]
    rules.append(_rule("tocsin test loader", "tocsin-test-loader.js"))
    url = pack_server.serve("/good/rules.json", json.dumps(rules).encode())
    config = _config(tmp_path, fiddleitm_url=url)

    change = rulepacks.update(config, "fiddleitm", NOW)
    assert change.added == ["fiddleitm:tocsin test loader"]
    assert change.removed == [f"fiddleitm:{removed}"]
    assert change.modified == [f"fiddleitm:{modified}"]
    pack = rulepacks.active(config, "fiddleitm")
    assert pack.origin == "updated" and pack.folder.parent == tmp_path / "packs" / "fiddleitm"
    assert (pack.folder / "LICENSE").is_file() and pack.version.startswith("20261201T120000Z-")
    verdict = Engine(config).evaluate(_page_item('<script src="/tocsin-test-loader.js">'))
    assert "fiddleitm:tocsin test loader" in verdict.rules
    same = rulepacks.update(config, "fiddleitm", NOW + timedelta(hours=1))  # nothing new
    assert (same.version, same.installed, same.added, same.modified) == (
        pack.version,
        False,
        [],
        [],
    )
    assert rulepacks.active(config, "fiddleitm").folder == pack.folder

    back = rulepacks.rollback(config, "fiddleitm")
    assert rulepacks.active(config, "fiddleitm").origin == "bundled"
    assert back.removed == ["fiddleitm:tocsin test loader"] and back.added == [
        f"fiddleitm:{removed}"
    ]
    rulepacks.rollback(config, "fiddleitm")  # and forward again
    assert rulepacks.active(config, "fiddleitm").folder == pack.folder


def test_a_broken_or_redos_pack_is_refused_and_the_old_one_stays(
    tmp_path: Path, pack_server: FeedServer
) -> None:
    good = pack_server.serve("/ok/rules.json", json.dumps(FIDDLEITM).encode())
    rulepacks.update(_config(tmp_path, fiddleitm_url=good), "fiddleitm", NOW)
    before = rulepacks.active(_config(tmp_path), "fiddleitm")
    state = (tmp_path / "packs" / "fiddleitm" / "state.json").read_bytes()
    bad = {
        "/broken/rules.json": (_rule("broken one", "([unclosed", "regex"), "bad regex"),
        "/redos/rules.json": (_rule("slow one", "(a+)+$", "regex"), "backtracks"),
        "/empty/rules.json": (_rule("", "x"), "no rule_name"),
    }
    for path, (rule, reason) in bad.items():
        url = pack_server.serve(path, json.dumps([*FIDDLEITM, rule]).encode())
        with pytest.raises(PackRefused, match=reason) as refused:
            rulepacks.update(_config(tmp_path, fiddleitm_url=url), "fiddleitm", NOW)
        assert (rule["rule_name"] or "#") in str(refused.value)
    not_json = pack_server.serve("/html/rules.json", b"<html>rate limited</html>")
    with pytest.raises(PackRefused, match=r"rules\.json"):
        rulepacks.update(_config(tmp_path, fiddleitm_url=not_json), "fiddleitm", NOW)
    # Nothing replaced, nothing left half-written.
    assert (tmp_path / "packs" / "fiddleitm" / "state.json").read_bytes() == state
    assert rulepacks.active(_config(tmp_path), "fiddleitm").folder == before.folder
    assert sorted(p.name for p in (tmp_path / "packs" / "fiddleitm").iterdir()) == sorted(
        [before.folder.name, "state.json"]
    )


def test_the_download_goes_through_the_guard_and_its_size_cap(
    tmp_path: Path, pack_server: FeedServer
) -> None:
    url = pack_server.serve("/big/rules.json", b" " * (50 * 1024**2))
    with pytest.raises(FetchError, match=r"over the size cap.*signatures.pack_max_download"):
        rulepacks.update(_config(tmp_path, fiddleitm_url=url), "fiddleitm", NOW)
    small = pack_server.serve("/small/rules.json", json.dumps(FIDDLEITM).encode())
    with pytest.raises(BlockedAddress):
        rulepacks.update(_config(tmp_path, private=False, fiddleitm_url=small), "fiddleitm", NOW)
    assert not (tmp_path / "packs" / "fiddleitm" / "state.json").exists()


def _tar_gz(members: dict[str, bytes], commit: str = "") -> bytes:
    buffer = io.BytesIO()
    headers = {"comment": commit} if commit else {}
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers=headers
    ) as archive:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_an_iok_archive_is_unpacked_with_caps_and_no_path_traversal(
    tmp_path: Path, pack_server: FeedServer
) -> None:
    commit = "ab" * 20
    archive = _tar_gz(
        {
            "IOK-main/LICENSE": b"ODbL",
            "IOK-main/README.md": b"readme",
            "IOK-main/indicators/test-kit.yml": INDICATOR,
            "IOK-main/.snapshots/urlscan": b"x" * 1000,
        },
        commit,
    )
    config = _config(tmp_path, iok_url=pack_server.serve("/iok.tar.gz", archive))
    change = rulepacks.update(config, "iok", NOW)
    assert change.added == ["iok:test-kit"] and change.rules == 1 and len(change.removed) == 263
    pack = rulepacks.active(config, "iok")
    assert sorted(p.name for p in pack.folder.rglob("*")) == sorted(
        ["LICENSE", "PACK.json", "indicators", "test-kit.yml"]
    )
    assert commit[:12] in pack.version

    escape = _tar_gz({"IOK-main/indicators/../../../evil.yml": INDICATOR})
    config = _config(tmp_path, iok_url=pack_server.serve("/escape.tar.gz", escape))
    with pytest.raises(PackRefused, match="outside its folder"):
        rulepacks.update(config, "iok", NOW)
    assert not list(tmp_path.rglob("evil.yml"))

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive_zip:
        archive_zip.writestr("IOK-main/indicators/test-kit.yml", INDICATOR)
        archive_zip.writestr("IOK-main/filler.bin", b"\0" * (3 * 1024**2))
    config = _config(
        tmp_path,
        iok_url=pack_server.serve("/bomb.zip", bomb.getvalue()),
        pack_max_unpacked="2MiB",
    )
    with pytest.raises(PackRefused, match=r"signatures\.pack_max_unpacked"):
        rulepacks.update(config, "iok", NOW)
    assert rulepacks.active(_config(tmp_path), "iok").folder == pack.folder


def test_rules_update_and_rollback_on_the_command_line(
    tmp_path: Path, pack_server: FeedServer
) -> None:
    rules = [*FIDDLEITM, _rule("tocsin cli rule", "tocsin-cli-marker")]
    good = pack_server.serve("/cli/rules.json", json.dumps(rules).encode())
    broken = pack_server.serve(
        "/cli-broken/rules.json", json.dumps([_rule("no", "(", "regex")]).encode()
    )
    config = tmp_path / "tocsin.toml"
    tables = {
        "database": {"url": f"sqlite:///{tmp_path / 'tocsin.db'}"},
        "network": {"allow_private": True},
        "signatures": {"fiddleitm_url": good},
    }
    config.write_text(to_toml(tables), encoding="utf-8")
    updated = run_cli(
        tmp_path / "..", config, "--now", NOW.isoformat(), "rules", "update", "fiddleitm"
    )
    assert updated.returncode == 0, updated.stderr
    assert "1 added, 0 removed, 0 modified" in updated.stdout
    assert "+ fiddleitm:tocsin cli rule" in updated.stdout
    assert (tmp_path / "rule-packs" / "fiddleitm" / "state.json").is_file()  # beside the config

    tables["signatures"]["fiddleitm_url"] = broken
    config.write_text(to_toml(tables), encoding="utf-8")
    refused = run_cli(tmp_path, config, "rules", "update", "fiddleitm")
    assert refused.returncode == 1
    assert (
        "refused, the pack in use stays" in refused.stderr
        and "rule no: bad regex" in refused.stderr
    )

    back = run_cli(tmp_path, config, "rules", "rollback", "fiddleitm")
    assert back.returncode == 0, back.stderr
    assert "- fiddleitm:tocsin cli rule" in back.stdout
    unknown = run_cli(tmp_path, config, "rules", "update", "nosuch")
    assert unknown.returncode == 2 and "unknown pack 'nosuch'" in unknown.stderr


# --------------------------------------------------------------------------- list and test


def test_rules_list_counts_what_each_rule_matched_in_30_days(tmp_path: Path, db_url: str) -> None:
    db = Database(db_url)
    [url_id] = add_urls(db, ["http://shop.test/"]).values()
    recent = ["yara.page.coinhive_style_miner", "fiddleitm:ClearFake iframe"]
    with db.session() as session:
        for days, rules in ((1, recent), (2, recent), (40, ["iok:123-reg-63c26"])):
            started = NOW - timedelta(days=days)
            session.add(
                Check(
                    url_id=url_id,
                    kind="triage",
                    started_at=started,
                    verdict="suspicious",
                    rules=rules,
                )
            )
    extra = tmp_path / "yara"
    extra.mkdir()
    (extra / "mine.yar").write_text(
        'rule my_rule { meta: family = "phishing" strings: $a = "x-my-kit" condition: $a }\n'
    )
    config = tmp_path / "tocsin.toml"
    config.write_text(
        to_toml({"database": {"url": db_url}, "signatures": {"rules_dir": str(extra)}}),
        encoding="utf-8",
    )
    proc = run_cli(tmp_path, config, "--now", NOW.isoformat(), "rules", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["rule"]: row for row in json.loads(proc.stdout)}
    assert rows["yara.page.coinhive_style_miner"]["matched_30d"] == 2
    assert rows["yara.page.coinhive_style_miner"]["source"] == "bundled YARA-X (page.yar)"
    assert rows["fiddleitm:ClearFake iframe"]["matched_30d"] == 2
    assert rows["fiddleitm:ClearFake iframe"]["version"] == "snapshot 2025-08-17"
    assert rows["iok:123-reg-63c26"]["matched_30d"] == 0  # 40 days ago
    assert rows["yara.mine.my_rule"]["source"].startswith("signatures.rules_dir")
    assert {row["kind"] for row in rows.values()} == {"yara", "fiddleitm", "iok"}
    table = run_cli(tmp_path, config, "--now", NOW.isoformat(), "rules", "list")
    assert "ClearFake iframe" in table.stdout and "checks matched (30 days)" in table.stdout
    db.dispose()


def test_rules_test_says_why_on_a_saved_page(tmp_path: Path) -> None:
    page = tmp_path / "saved.html"
    page.write_text(
        "<html><script>var payload = atob('x'); function copyCode() {}</script>"
        "<script>var m = new CoinHive.Anonymous('k');</script></html>",
        encoding="utf-8",
    )
    config = tmp_path / "tocsin.toml"
    config.write_text(to_toml({"database": {"url": f"sqlite:///{tmp_path / 't.db'}"}}))
    proc = run_cli(tmp_path, config, "rules", "test", str(page), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    why = {m["rule"]: m["why"] for m in result["matches"]}
    assert result["verdict"] == "malicious"
    assert any(
        "matched bytes at" in line and "CoinHive.Anonymous" in line
        for line in why["yara.page.coinhive_style_miner"]
    )
    assert any(
        line.startswith("response_body: ") and "copyCode" in line
        for line in why["fiddleitm:ClearFake iframe"]
    )
    assert not (tmp_path / "t.db").exists()  # a test stores nothing


@pytest.mark.browser
def test_rules_test_crawls_a_url_as_the_crawl_does(sandbox: Any, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    config = sandbox_config(sandbox, tmp_path, db_url)
    proc = run_cli(tmp_path, config, "rules", "test", sandbox.url("cryptominer"), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["route"] == "browser" and result["verdict"] == "malicious", result
    assert result["family"] == "cryptominer" and result["matches"]
    assert all(m["why"] for m in result["matches"])
    assert not (tmp_path / "tocsin.db").exists()  # crawled, judged, nothing stored
