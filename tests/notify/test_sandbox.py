"""The notifier at the end of the real pipeline: sandbox sites, crawl, enrich, notify.

Three compromised Japanese sites on one provider (hanami, AS64501): one message
in Japanese to its abuse desk with three X-ARF reports; a second run sends
nothing; a site cleaned before the re-check is resolved with no follow-up; the
others climb to the registrar on schedule (``--now``); a DSN for the registrar's
notice escalates them at once to the national CSIRT. Runs the real CLI on a
SQLite store (the store paths run on both engines in the other notifier tests;
this one is about the stages meeting, and costs CLI start-ups and a browser).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notify_helpers import parts
from sqlalchemy import select

from store import migrate
from store.db import Database
from store.models import Contact, Incident, Site

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SITES = ("injected-script", "delayed-injection", "seo-cloaking")  # all on hanami
HOSTING = "abuse@hanami-hosting.co.jp"
OWNER = "security@sakura-wagashi.co.jp"


@pytest.mark.slow
@pytest.mark.browser
def test_pipeline_to_the_csirt(sandbox, sqlite_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    migrate.upgrade(Database(url))
    sqlite_cli.config = sandbox.write_config(
        tmp_path / "sandbox.toml",
        url,
        notify={"mode": "smtp", "journal": str(tmp_path / "journal.log")},
        board={"secret": "sandbox-board-secret"},
    )
    db = Database(url)
    mail = sandbox.smtp

    def run(days: float, *args: str) -> str:
        when = (T0 + timedelta(days=days)).isoformat()
        result = sqlite_cli("--now", when, *args)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
        return result.stdout

    feed = tmp_path / "feed.txt"
    feed.write_text("".join(sandbox.url(site) + "\n" for site in SITES), encoding="utf-8")
    run(0, "ingest", str(feed))
    run(0, "crawl")
    run(0, "enrich")
    run(0, "notify")

    [to_host] = mail.to(HOSTING)
    body = parts(to_host.message)
    assert len(body["xarf"]) == 3
    assert to_host.message["Content-Language"] == "ja"
    assert "改ざん" in to_host.subject
    for site in SITES:
        host = sandbox.sites[site].host
        assert host.replace(".", "[.]") in body["text"]
    assert len(mail.to(OWNER)) == 1  # the site that publishes a security.txt
    assert len(mail.messages) == 2

    sandbox.set_site_state("seo-cloaking", "clean")
    run(1, "recheck")
    run(1, "notify")
    assert len(mail.messages) == 2  # resolved, so no follow-up; the others not yet due
    with db.session() as s:
        states = {
            site.host: inc.state for inc, site in s.execute(select(Incident, Site).join(Site))
        }
    assert states[sandbox.sites["seo-cloaking"].host] == "resolved"
    assert sorted(states.values()) == ["open", "open", "resolved"]

    # never cleaned: past the 3-day grace, the registrar is told; it will bounce
    with db.session() as s:
        registrar_email = s.scalars(
            select(Contact.email).where(Contact.role == "registrar")
        ).first()
        cert_email = s.scalars(select(Contact.email).where(Contact.role == "cert")).first()
    mail.script(registrar_email, "bounce")
    out = run(4, "recheck")
    assert "escalated" in out
    run(4, "notify")
    assert len(mail.to(registrar_email)) == 1
    followups = [m for m in mail.to(HOSTING) if m.message["In-Reply-To"]]
    assert len(followups) == 1  # the hosting desk hears it went further, as a follow-up

    inbox = sandbox.smtp.maildir_path
    out = run(4.1, "inbox", str(inbox))
    with db.session() as s:
        levels = {i.level for i in s.scalars(select(Incident).where(Incident.state == "open"))}
    assert levels == {3}  # the DSN escalated at once, not after another grace
    run(4.1, "notify")
    [to_cert] = mail.to(cert_email)
    assert "改ざん" in to_cert.subject  # the Japanese CSIRT gets Japanese


@pytest.mark.slow
def test_run_chains_ingest_crawl_enrich_notify(sandbox, sqlite_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    sqlite_cli.config = sandbox.write_config(tmp_path / "sandbox.toml", url)
    feed = tmp_path / "feed.txt"
    feed.write_text(sandbox.url("payload-pe") + "\n", encoding="utf-8")  # no browser needed
    result = sqlite_cli("--now", T0.isoformat(), "run", str(feed))
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("ingest", "crawl", "enrich", "notify"):
        assert stage in result.stdout
    sent = list((tmp_path / "outbox" / "new").iterdir())
    provider = sandbox.providers[sandbox.sites["payload-pe"].provider]
    recipients = {parts_of(p)["To"] for p in sent}
    assert provider.abuse_email in recipients
    [to_host] = [p for p in sent if parts_of(p)["To"] == provider.abuse_email]
    [report] = parts(parts_of(to_host))["xarf"]
    assert report["type"] == "malware" and report["file_hashes"]["sha256"]


def parts_of(path: Path):
    import email
    import email.policy

    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


@pytest.mark.slow
def test_last_minute_check_re_enriches_a_site_that_moved(
    sandbox, sqlite_cli, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'tocsin.db'}"
    sqlite_cli.config = sandbox.write_config(tmp_path / "sandbox.toml", url)
    feed = tmp_path / "feed.txt"
    feed.write_text(sandbox.url("payload-pe") + "\n", encoding="utf-8")
    day0, day1 = T0.isoformat(), (T0 + timedelta(days=1)).isoformat()
    for args in (("ingest", str(feed)), ("crawl",), ("enrich",)):
        result = sqlite_cli("--now", day0, *args)
        assert result.returncode == 0, result.stderr[-2000:]
    old = sandbox.providers[sandbox.sites["payload-pe"].provider]
    moved = sandbox.move_site("payload-pe", "deichnet")
    new = sandbox.providers["deichnet"]

    result = sqlite_cli("--now", day1, "notify")  # the evidence is a day old: re-check first
    assert result.returncode == 0, result.stderr[-3000:]
    assert "re-enriched" in result.stdout
    recipients = {parts_of(p)["To"] for p in (tmp_path / "outbox" / "new").iterdir()}
    assert new.abuse_email in recipients and old.abuse_email not in recipients
    db = Database(url)
    with db.session() as s:
        site = s.scalars(select(Site).where(Site.host == moved.host)).one()
        assert site.ips == [moved.ip] and site.asn == new.asn
