"""The check worker: verdict, evidence and store in a process of their own.

Every crawl test goes through it; these cover the worker on its own, and what a
crawl rarely meets: a worker that dies with a batch, and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from crawl_support import add_urls, pe_bytes, run_cli, sandbox_config
from sqlalchemy import func, select

from crawler.items import CheckItem
from crawler.runner import RunContext
from crawler.triage import sniff
from pipelines.checks import CheckPipeline
from pipelines.worker import CheckWorker, handle_batch
from store.evidence import EvidenceStore, unzip_payload
from store.models import Check, Evidence, Incident, Url
from tocsin.app import App
from tocsin.config import Config

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAYLOAD_URL = "http://www.shop.test/files/invoice.exe"
GONE_URL = "http://gone.test/"
POISON_URL = "http://www.hostile.test/"


def _payload_check(url_id: int) -> CheckItem:
    """What triage yields for an executable disguised as an image at PAYLOAD_URL (a
    program alone would be only suspicious: issue 11 point 8)."""
    body = pe_bytes()
    found = sniff(body, "image/jpeg", PAYLOAD_URL, "invoice.exe")
    item = CheckItem(url_id, PAYLOAD_URL, "triage", T, route="payload", http_status=200)
    item.final_url, item.payload, item.payload_name = PAYLOAD_URL, body, "invoice.exe"
    item.route_reason = f"{found.label} by magic bytes"
    item.meta["sniffed"] = found.as_meta()
    return item


def _offline_check(url_id: int) -> CheckItem:
    return CheckItem(url_id, GONE_URL, "triage", T, route="offline", route_reason="no such name")


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> App:
    config = Config.model_validate(
        {"database": {"url": db_url}, "evidence": {"dir": str(tmp_path / "evidence")}}
    )
    return App(preset=config)


@pytest.fixture(scope="module")
def worker() -> Iterator[CheckWorker]:
    worker = CheckWorker()
    yield worker
    worker.shutdown()


def test_the_worker_judges_keeps_and_stores_a_batch(app: App, worker: CheckWorker) -> None:
    ids = add_urls(app.db, [PAYLOAD_URL, GONE_URL])
    items = [_payload_check(ids[PAYLOAD_URL]), _offline_check(ids[GONE_URL])]
    payload, gone = worker.submit(handle_batch, uuid.uuid4().hex, app.config, T, items).result(
        timeout=60
    )
    assert (payload.verdict, payload.family) == ("malicious", "malware-download")
    assert payload.incident_id and payload.campaign
    assert gone.verdict == "offline" and gone.incident_id is None
    with app.db.session() as session:
        (row,) = session.scalars(select(Evidence).where(Evidence.kind == "payload_zip"))
        assert row.check_id == payload.check_id and row.created_at == T
    blob = EvidenceStore.from_config(app.config).path_for(row.sha256).read_bytes()
    assert unzip_payload(blob) == {"invoice.exe.bin": pe_bytes()}


def test_a_worker_that_dies_loses_only_the_batch_it_held(app: App) -> None:
    """Killed with a batch: nothing of it is stored, its URL stays due; the next batch
    gets a new worker and is stored once."""
    (url_id,) = add_urls(app.db, [PAYLOAD_URL]).values()
    worker = CheckWorker()
    try:
        token = uuid.uuid4().hex
        worker.submit(os._exit, 9)  # the worker dies before it takes the batch
        lost = worker.submit(handle_batch, token, app.config, T, [_payload_check(url_id)])
        with pytest.raises(BrokenProcessPool):
            lost.result(timeout=60)
        with app.db.session() as session:
            assert session.scalar(select(Url.verdict).where(Url.id == url_id)) == "pending"
            assert session.scalars(select(Check)).all() == []
        again = worker.submit(handle_batch, token, app.config, T, [_payload_check(url_id)])
        (outcome,) = again.result(timeout=60)
        assert outcome.verdict == "malicious"
        with app.db.session() as session:
            assert len(session.scalars(select(Check)).all()) == 1
            assert len(session.scalars(select(Incident)).all()) == 1
    finally:
        worker.shutdown()


class _KillsTheWorker:
    """A value that kills the process that unpickles it: a stand-in for a parser or
    rule engine dying on a hostile payload, which no sandbox page can make happen."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os._exit, (9,))


def test_a_check_that_kills_the_worker_is_stored_as_an_error_and_the_rest_go_on(
    app: App,
) -> None:
    """Without the one-at-a-time retry, the batch would fail on every crawl it is in."""
    ids = add_urls(app.db, [PAYLOAD_URL, GONE_URL, POISON_URL])
    poison = _offline_check(ids[POISON_URL])
    poison.url = POISON_URL
    poison.browser = {"title": _KillsTheWorker()}
    items = [_payload_check(ids[PAYLOAD_URL]), poison, _offline_check(ids[GONE_URL])]
    run = RunContext(app)
    pipeline = CheckPipeline(app.config, run, worker=CheckWorker())

    async def crawl() -> list[CheckItem]:
        return list(await asyncio.gather(*(pipeline.process_item(i) for i in items)))

    try:
        payload, failed, gone = asyncio.run(crawl())
    finally:
        pipeline.worker.shutdown()
    assert (payload.verdict, payload.family) == ("malicious", "malware-download")
    assert gone.verdict == "offline"
    assert failed.verdict == "error"
    assert failed.error == "the check worker died while judging this check"
    assert set(run.outcomes) == set(ids.values())
    with app.db.session() as session:
        url = session.get(Url, ids[POISON_URL])
        assert (url.verdict, url.check_count) == ("error", 1)
        assert url.next_check_at - url.last_checked == app.config.crawl.error_retry_after
        assert session.scalar(select(func.count()).select_from(Check)) == 3


def test_a_check_the_database_refuses_is_stored_as_an_error(app: App, worker: CheckWorker) -> None:
    """One hostile value (here a status code past any integer column) costs its own
    check, not the batch; the error says why and the URL is retried as errors are."""
    ids = add_urls(app.db, [PAYLOAD_URL, GONE_URL, POISON_URL])
    refused = _offline_check(ids[POISON_URL])
    refused.url, refused.route, refused.http_status = POISON_URL, "error", 2**70
    items = [_payload_check(ids[PAYLOAD_URL]), refused, _offline_check(ids[GONE_URL])]
    token = uuid.uuid4().hex
    payload, failed, gone = worker.submit(handle_batch, token, app.config, T, items).result(60)
    assert payload.verdict == "malicious" and payload.incident_id
    assert gone.verdict == "offline"
    assert failed.verdict == "error" and failed.error.startswith("the check could not be stored")
    with app.db.session() as session:
        row = session.scalars(select(Check).where(Check.url_id == ids[POISON_URL])).one()
        assert row.http_status is None and row.route == "error"
        assert session.get(Url, ids[POISON_URL]).next_check_at == (
            T + app.config.crawl.error_retry_after
        )


def test_nul_characters_from_a_page_are_stored_as_replacement_characters(
    app: App, worker: CheckWorker
) -> None:
    """PostgreSQL refuses NUL in text and JSON; a page can put one in its title, a
    console line or an error, so the store replaces it on both engines alike."""
    (url_id,) = add_urls(app.db, [POISON_URL]).values()
    item = CheckItem(url_id, POISON_URL, "triage", T, route="error", error="reset\x00by peer")
    item.route_reason = "the browser gave up\x00"
    item.browser = {"title": "Pay\x00ment", "final_url": POISON_URL, "requests": []}
    token = uuid.uuid4().hex
    (outcome,) = worker.submit(handle_batch, token, app.config, T, [item]).result(60)
    assert outcome.verdict == "error"
    with app.db.session() as session:
        row = session.get(Check, outcome.check_id)
        assert (row.error, row.route_reason) == ("reset\ufffdby peer", "the browser gave up\ufffd")
        assert row.meta["browser"]["title"] == "Pay\ufffdment"


def test_ctrl_c_leaves_the_worker_to_finish_its_batches(app: App, worker: CheckWorker) -> None:
    """Ctrl-C reaches the whole process group; the crawl stops gracefully, so the
    worker must keep storing what is in flight."""
    (url_id,) = add_urls(app.db, [GONE_URL]).values()
    pid = worker.submit(os.getpid).result(timeout=60)
    os.kill(pid, signal.SIGINT)
    batch = [_offline_check(url_id)]
    (outcome,) = worker.submit(handle_batch, uuid.uuid4().hex, app.config, T, batch).result(
        timeout=60
    )
    assert outcome.verdict == "offline"


@pytest.mark.serial  # races a 4 s download timeout
def test_ctrl_c_during_a_crawl_keeps_whole_checks_and_the_next_crawl_resumes(
    sandbox: Any, tmp_path: Path, db_url: str
) -> None:
    """``tocsin crawl`` and its worker get Ctrl-C (the whole process group, as from a
    terminal) while a slow-drip page is still downloading: it stops, what was checked
    is stored whole, and the next crawl checks each remaining URL once."""
    config = sandbox_config(
        sandbox, tmp_path, db_url, browser={"enabled": False}, crawl={"download_timeout": "4s"}
    )
    quick = [s.id for s in sandbox.sites.values() if s.kind in ("payload", "offline")][:8]
    urls = [sandbox.url(site_id) for site_id in [*quick, "hostile-slow-drip"]]
    db = App(config_path=config).db
    ids = list(add_urls(db, urls).values())

    def checks() -> dict[int, int]:
        with db.session() as session:
            rows = session.execute(select(Check.url_id, func.count()).group_by(Check.url_id))
            return {url_id: n for url_id, n in rows}

    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    crawl = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "--config", str(config), "crawl"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(checks()) < len(quick) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(checks()) >= len(quick), "the quick URLs were not checked in time"
        assert crawl.poll() is None, "the slow-drip page should still be downloading"
        os.killpg(crawl.pid, signal.SIGINT)
        _, stderr = crawl.communicate(timeout=60)
    finally:
        if crawl.poll() is None:
            os.killpg(crawl.pid, signal.SIGKILL)
    assert crawl.returncode == 1, stderr
    first = checks()
    assert set(first.values()) == {1}
    with db.session() as session:
        rows = session.execute(select(Url.id, Url.verdict).where(Url.id.in_(ids)))
        verdicts = {url_id: verdict for url_id, verdict in rows}
    assert all((verdicts[i] == "pending") == (i not in first) for i in ids)

    again = run_cli(tmp_path, config, "crawl")
    assert again.returncode in (0, 1), again.stderr  # the slow-drip page is an error
    assert checks() == {url_id: 1 for url_id in ids}
