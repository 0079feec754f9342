"""The parts of the crawl that need no browser: settings, triage by magic bytes,
rules (bundled, community), verdicts, the evidence store, ``scrapy crawl check``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crawl_support import COMMUNITY, add_urls, new_store, pe_bytes, sandbox_config
from sqlalchemy import select

from crawler.items import CheckItem
from crawler.settings import from_config, scrapy_settings
from crawler.signatures import community
from crawler.signatures.engine import Engine
from crawler.signatures.knownbad import KnownBad
from crawler.signatures.verdict import Finding, combine
from crawler.triage import filename_from, sniff
from store.evidence import EvidenceStore, safe_member_name, unzip_payload, zip_payload
from store.models import Url
from tocsin.app import App
from tocsin.config import Config, CrawlConfig

REPO = Path(__file__).resolve().parents[2]


def test_settings_come_from_the_config() -> None:
    config = Config(crawl=CrawlConfig(concurrency=7, per_domain=3, max_body=1234, retries=4))
    settings = scrapy_settings(config, TOCSIN_RUN_KEY="x")
    assert settings.getint("CONCURRENT_REQUESTS") == 7
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 3
    assert settings.getint("DOWNLOAD_MAXSIZE") == 1234
    assert settings.getint("RETRY_TIMES") == 4
    assert settings["TOCSIN_CONFIG"] is config and settings["TOCSIN_RUN_KEY"] == "x"
    assert settings["TWISTED_DNS_RESOLVER"] == "crawler.net.GuardedResolver"
    assert settings.getdict("DOWNLOADER_MIDDLEWARES")["crawler.middlewares.SsrfGuardMiddleware"]
    assert not settings.getbool("REDIRECT_ENABLED")
    assert "--no-sandbox" in from_config(config)["PLAYWRIGHT_LAUNCH_OPTIONS"]["args"]


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            # A fixed date: the bytes name the test, and xdist's workers must collect the same.
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "ctype", "url", "kind", "category", "risky"),
    [
        (pe_bytes(), "image/png", "http://x.test/logo.png", "pe", "executable", True),
        (b"\x7fELF\x01\x01\x01" + b"\x00" * 11 + b"\x08\x00" + b"\x00" * 40, "text/plain",
         "http://x.test/i", "elf", "executable", True),
        (_zip({"AndroidManifest.xml": b"x", "classes.dex": b"dex\n"}), "application/octet-stream",
         "http://x.test/app", "apk", "apk", True),
        (_zip({"Invoice.exe": pe_bytes()}), "text/html", "http://x.test/s.php", "zip", "archive",
         True),
        (_zip({"a.txt": b"hello"}), "application/zip", "http://x.test/a.zip", "zip", "archive",
         False),
        (_zip({"[Content_Types].xml": b"x", "word/vbaProject.bin": b"x"}), "application/msword",
         "http://x.test/d.docm", "ooxml", "document", True),
        (b'var s = new ActiveXObject("WScript.Shell"); s.Run("x")', "text/plain",
         "http://x.test/a.txt", "script", "script", True),
        (b"/*! jQuery v3 */ (function(){ return 1 })()", "application/javascript",
         "http://x.test/jquery.js", "script", "script", False),
        (b"%PDF-1.7\n/OpenAction /JavaScript", "application/pdf", "http://x.test/a.pdf", "pdf",
         "document", True),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "text/html", "http://x.test/", "html",
         "html", False),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png", "http://x.test/p.png", "png", None,
         False),
        (b"", "text/html", "http://x.test/", "empty", None, False),
    ],
)  # fmt: skip
def test_triage_trusts_magic_bytes_over_labels(body, ctype, url, kind, category, risky) -> None:
    found = sniff(body, ctype, url)
    assert (found.kind, found.category, found.risky) == (kind, category, risky)


def test_payload_names_never_become_paths() -> None:
    assert filename_from("http://x.test/a/b/../../etc/passwd") == "passwd"
    name = filename_from("http://x.test/", 'attachment; filename="../../evil\\x.exe"')
    assert "/" not in name and "\\" not in name and name.endswith("x.exe")
    assert safe_member_name("../../etc/passwd") == "passwd"
    assert safe_member_name("") == "payload"


def test_evidence_store_is_content_addressed(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "ev", max_blob=64)
    first = store.put(b"hello")
    second = store.put(b"hello")
    assert first == second and store.get(first.sha256) == b"hello"
    path = store.path_for(first.sha256)
    assert path.parent.parent.name == first.sha256[:2] and path.parent.name == first.sha256[2:4]
    assert len(list((tmp_path / "ev").rglob("*"))) == 3  # two folders and one blob
    big = store.put(b"x" * 100)
    assert big.truncated and big.size == 64
    for bad in ("../../etc/passwd", "ab" * 40, "ZZ" * 32):
        with pytest.raises(ValueError):
            store.path_for(bad)
    blob = zip_payload(b"MZ payload", "../evil.exe")
    assert unzip_payload(blob) == {"evil.exe.bin": b"MZ payload"}
    with zipfile.ZipFile(io.BytesIO(blob)) as archive, pytest.raises(RuntimeError):
        archive.read("evil.exe.bin")  # encrypted: no password, no content


def test_known_bad_matches_names_subdomains_and_networks() -> None:
    bad = KnownBad(["evil.example", "# a comment", "203.0.113.0/24", "198.51.100.7"])
    assert bad.match_host("cdn.evil.example") == "evil.example"
    assert bad.match_host("notevil.example") is None
    assert bad.match_host("203.0.113.9") == "203.0.113.0/24"
    assert bad.match_host("198.51.100.7") == "198.51.100.7"


def test_verdicts_combine_by_severity_then_family() -> None:
    findings = [
        Finding("a", "known-bad-host", "malicious", 0.9, ["x"], cluster=["host:a"]),
        Finding("b", "card-skimmer", "malicious", 0.8, ["y"], cluster=["host:b"]),
        Finding("c", "phishing", "suspicious", 0.6, ["z"]),
    ]
    verdict = combine(findings)
    assert (verdict.value, verdict.family) == ("malicious", "card-skimmer")
    assert verdict.evidence[0] == "y" and verdict.cluster == ["host:b"]
    assert verdict.rules[0] == "b" and set(verdict.rules) == {"a", "b", "c"}
    assert combine([findings[2]]).value == "suspicious"
    assert combine([Finding("i", None, "info", 0.1, ["w"])]).value == "clean"


def test_community_rule_packs_load_and_match_the_pages_they_target() -> None:
    fiddleitm = community.load([str(COMMUNITY / "fiddleitm" / "rules.json")])
    iok = community.load([str(COMMUNITY / "iok" / "indicators")])
    assert len(fiddleitm) >= 75 and len(iok) >= 240
    by_name = {rule.rule: rule for rule in fiddleitm + iok}

    clearfake = community.PageText(
        html="<script>var payload = atob('x'); function copyCode() {}</script>"
    )
    assert by_name["fiddleitm:ClearFake iframe"].test(clearfake)
    assert by_name["fiddleitm:ClearFake iframe"].family == "fake-update"
    skimmer = community.PageText(js=["var u='x'; if(url5555, true){}"])
    assert by_name["fiddleitm:5555 skimmer"].test(skimmer)
    assert by_name["fiddleitm:5555 skimmer"].family == "card-skimmer"

    amazon = community.PageText(
        js=["var k = 'fsdffsdfsddsfsd123123';"],
        requests=[
            "https://x.test/11.8b1570ce205b9a0d5ecb.js",
            "https://x.test/AmazonUIBaseCSS-sprite_1x-28bd59af93d9b1c745bb0aca4de58763b54df7cf"
            "._V2_.6a23b50.png",
        ],
    )
    rule = by_name["iok:amazon-jp-28bd59a"]
    assert rule.test(amazon) and rule.family == "phishing"
    assert not rule.test(community.PageText(js=["var k = 'fsdffsdfsddsfsd123123';"]))
    token = community.PageText(
        html='<input name="X-CSRF-Token" value="63c2690a6e94180ff183110c4cd9ff7719014722">'
    )
    assert by_name["iok:123-reg-63c26"].test(token)

    plain = community.PageText(
        html="<html><title>Oak Street Books</title><body>Opening hours</body></html>",
        title="Oak Street Books",
        hostname="www.oak-street-books.com",
        requests=["https://www.oak-street-books.com/"],
    )
    assert not [r.rule for r in fiddleitm + iok if r.test(plain) and not r.info_only]


def test_community_matches_alone_make_a_page_suspicious(tmp_path: Path) -> None:
    config = Config.model_validate(
        {"signatures": {"community_rules": [str(COMMUNITY / "fiddleitm" / "rules.json")]}}
    )
    engine = Engine(config)
    item = CheckItem(1, "http://shop.test/", "triage", datetime(2026, 1, 1, tzinfo=UTC))
    item.route = "browser"
    item.served_html = "<script>var payload = atob('x'); function copyCode() {}</script>"
    verdict = engine.evaluate(item)
    assert (verdict.value, verdict.family) == ("suspicious", "fake-update")
    assert "fiddleitm:ClearFake iframe" in verdict.rules
    assert any("ClearFake iframe" in line for line in verdict.evidence)


def test_bundled_rules_leave_legitimate_code_alone() -> None:
    engine = Engine(Config())
    legit = (
        b"var JSON2 = { parse: function(text) { return eval('(' + text + ')'); } };"
        b"var tpl = new Function('obj', 'return obj.x');"
        b"var s = document.createElement('script'); s.src = 'https://cdn.test/a.js';"
        b"var b = btoa(JSON.stringify({a: 1})); navigator.sendBeacon('/collect', b);"
        + b"function a(){return 1}"
        * 20000
    )
    assert engine.yara.scan(legit, "page") == []
    hits = engine.yara.scan(b'var m = new CoinHive.Anonymous("key", {throttle: 0.3});', "page")
    assert [h.family for h in hits] == ["cryptominer"]


def test_scrapy_crawl_check_reads_the_tocsin_config(sandbox, tmp_path: Path) -> None:
    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    config = sandbox_config(sandbox, tmp_path, db_url)
    app = App(config_path=config)
    add_urls(app.db, [sandbox.url("payload-elf"), sandbox.url("offline-404")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_CONFIG"] = str(config)
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "check", "-s", "LOG_LEVEL=WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with app.db.session() as session:
        verdicts = sorted((u.verdict, u.family) for u in session.scalars(select(Url)))
    assert verdicts == [("malicious", "malware-download"), ("offline", None)]


def test_tocsin_crawl_limit_and_nothing_due(sandbox, tmp_path: Path) -> None:
    from crawl_support import run_cli

    from store import leases

    db_url = new_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    config = sandbox_config(sandbox, tmp_path, db_url)
    app = App(config_path=config)
    add_urls(app.db, [sandbox.url("payload-apk"), sandbox.url("payload-elf")])
    assert run_cli(tmp_path, config, "crawl", "--limit", "0").returncode == 2
    first = run_cli(tmp_path, config, "crawl", "--limit", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Checked 1 URLs" in first.stdout and "malware-download" in first.stdout
    with app.db.session() as session:
        assert sorted(u.verdict for u in session.scalars(select(Url))) == ["malicious", "pending"]
    assert leases.held(app.db) == 0  # --limit 1 claimed one URL, and its check released it
    assert run_cli(tmp_path, config, "crawl").returncode == 0
    idle = run_cli(tmp_path, config, "crawl")
    assert idle.returncode == 0 and "nothing is due" in idle.stderr


def test_a_crashed_renderer_is_retried_once_in_a_fresh_page(sandbox, tmp_path: Path) -> None:
    """The first visit's renderer is crashed (DevTools Page.crash); the retry confirms."""
    import asyncio
    import contextlib

    from crawler.runner import run_spiders
    from crawler.spiders.check import CheckSpider
    from store.models import Check

    class CrashOnce(CheckSpider):
        name = "check-crash-once"
        crashes = 0

        def _browser_request(self, visit):
            request = super()._browser_request(visit)
            if CrashOnce.crashes == 0:
                CrashOnce.crashes += 1
                recorder = visit.recorder
                finish = recorder.finish

                async def crash_then_finish(page):
                    session = await page.context.new_cdp_session(page)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(session.send("Page.crash"), 2)
                    await asyncio.sleep(0.5)
                    return await finish(page)

                recorder.finish = crash_then_finish
            return request

    app = App(
        config_path=sandbox_config(sandbox, tmp_path, new_store(f"sqlite:///{tmp_path / 't.db'}"))
    )
    add_urls(app.db, [sandbox.url("hidden-iframe")])
    run_spiders(app, [(CrashOnce, {})])
    with app.db.session() as session:
        check = session.scalars(select(Check)).one()
    assert CrashOnce.crashes == 1
    assert (check.verdict, check.family) == ("malicious", "hidden-iframe")
    assert check.meta["browser_retry"]


def test_store_reopens_the_same_incident_when_the_payload_changed(db_url, tmp_path) -> None:
    """Store paths on both engines: a re-compromise with a new payload is a reopening."""
    from pipelines.store import StoreWriter
    from store import incidents
    from store.models import Campaign, Evidence, Incident

    config = Config.model_validate({"database": {"url": db_url}})
    app = App(preset=config)
    (url_id,) = add_urls(app.db, [PAYLOAD_URL]).values()
    store = StoreWriter(app.db, config)

    def malicious(sha: str) -> CheckItem:
        return _payload_item(url_id, sha)

    (first,) = store.store_batch([malicious("a" * 64)], T)
    assert first.verdict == "malicious" and first.incident_id and first.campaign
    with app.db.session() as session:
        incident = session.get(Incident, first.incident_id)
        incidents.resolve(session, incident, T, reason="clean", check_id=None)
    store = StoreWriter(app.db, config)  # a later crawl
    (second,) = store.store_batch([malicious("b" * 64)], T)
    assert second.incident_id == first.incident_id and second.campaign == first.campaign
    with app.db.session() as session:
        incident = session.get(Incident, first.incident_id)
        assert (incident.state, incident.reopen_count) == ("reopened", 1)
        campaign = session.scalars(select(Campaign)).one()
        assert {"sha256:" + "a" * 64, "sha256:" + "b" * 64} <= set(campaign.iocs["keys"])
        assert len(session.scalars(select(Evidence)).all()) == 2


T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAYLOAD_URL = "http://www.shop.test/files/invoice.exe"


def _payload_item(url_id: int, sha: str) -> CheckItem:
    """A malicious direct-payload check of PAYLOAD_URL, as triage would yield it."""
    from crawler.items import Blob

    item = CheckItem(url_id, PAYLOAD_URL, "triage", T)
    item.route, item.verdict, item.family = "payload", "malicious", "malware-download"
    item.confidence, item.rules = 0.9, ["tocsin.payload.pe"]
    item.iocs = {"sha256": [sha]}
    item.meta = {"cluster": [f"sha256:{sha}"], "payload_sha256": sha}
    item.blobs = [Blob("payload_zip", "application/zip", None, "zip", sha, "f" * 64, 10)]
    return item


def test_one_url_twice_in_a_batch_is_one_incident_in_one_campaign(db_url) -> None:
    """A URL checked twice before the writer's next batch: the second check joins the
    first one's campaign and incident (one link), on both engines."""
    from pipelines.store import StoreWriter
    from store.models import Campaign, Incident, IncidentUrl

    config = Config.model_validate({"database": {"url": db_url}})
    app = App(preset=config)
    (url_id,) = add_urls(app.db, [PAYLOAD_URL]).values()
    store = StoreWriter(app.db, config)
    first, second = store.store_batch(
        [_payload_item(url_id, "a" * 64), _payload_item(url_id, "b" * 64)], T
    )
    assert first.incident_id and second.incident_id == first.incident_id
    assert second.campaign == first.campaign
    with app.db.session() as session:
        assert len(session.scalars(select(Campaign)).all()) == 1
        assert len(session.scalars(select(Incident)).all()) == 1
        assert len(session.scalars(select(IncidentUrl)).all()) == 1


def test_a_refused_connection_is_retried_once_other_failures_as_configured() -> None:
    """Refused (a checked address, nothing listening) is the offline verdict: one retry."""
    from types import SimpleNamespace

    from scrapy import Request, Spider
    from scrapy.exceptions import DownloadConnectionRefusedError, DownloadTimeoutError
    from scrapy.statscollectors import DummyStatsCollector

    from crawler.middlewares import OfflineAwareRetryMiddleware

    config = Config(crawl=CrawlConfig(retries=3))
    settings = scrapy_settings(config)
    spider = Spider("t")
    # Only what get_retry_request reads: no reactor needed for the retry decision.
    spider.crawler = SimpleNamespace(settings=settings)
    spider.crawler.stats = DummyStatsCollector(spider.crawler)
    middleware = OfflineAwareRetryMiddleware(settings)
    middleware.crawler = SimpleNamespace(spider=spider)

    def attempts(exc: Exception) -> int:
        request, count = Request("http://www.example.com/"), 1
        while (request := middleware.process_exception(request, exc)) is not None:
            count += 1
        return count

    assert attempts(DownloadConnectionRefusedError("refused")) == 2
    assert attempts(DownloadTimeoutError("slow")) == 4
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert "crawler.middlewares.OfflineAwareRetryMiddleware" in middlewares
