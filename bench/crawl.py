"""Crawl benchmarks (issue 3): triage rate, browser confirmations, browser memory.

Against N sandbox URLs (default 2,000: 40% offline, 30% direct payloads, 30%
pages), prints in one run:

1. the triage rate (URLs/s) of the ``check`` spider with the browser off (routing,
   payload hashing and rules, verdicts, evidence, the store) as a ratio to a bare
   Scrapy spider fetching the same URLs with stock settings (goal >= 0.8);
2. browser confirmations per minute over the sandbox's pages (goal >= 60/min on
   2 cores), the full visit: cloaking fetches, Chromium, clock advance, rules;
3. the browser's RSS (Chromium's whole process tree) after P/10 and after P pages
   (default P = 1,000; the pages are visited again in turn) (goal <= 1.5x);
4. the rate relative to PlaywrightCapture (``playwrightcapture`` from PyPI, the
   ``bench`` extra) capturing C of the same pages (default 50), two at a time.

Full scale (the lead, on a quiet machine):
    .venv/bin/python bench/crawl.py
Small scale (a smoke run, a couple of minutes):
    .venv/bin/python bench/crawl.py --urls 200 --rss-pages 100 --capture 6
Options: --db URL (default: a SQLite file in a temporary folder), --concurrency N
(browser pages at once, default browser.concurrency), --no-capture, --triage-only
(the triage rate alone: a few minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BARE = {
    # Stock Scrapy: its own middlewares and redirects, no pipelines, no browser. It
    # shares the crawl's concurrency, timeouts and retries, tocsin's resolver (the
    # sandbox's names are in its hosts file) and tocsin's RETRY_EXCEPTIONS (names that
    # do not resolve are not retried); tocsin's own Scrapy tuning is undone below.
    "CONCURRENT_ITEMS": 100,  # Scrapy's default (tocsin uses 4)
    "ITEM_PIPELINES": {},
    "DOWNLOADER_MIDDLEWARES": {},
    "REDIRECT_ENABLED": True,
    "DOWNLOAD_HANDLERS": {
        "http": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
        "https": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
    },
}

BARE_TUNED = BARE | {"CONCURRENT_ITEMS": 4}


def chromium_rss() -> tuple[int, int]:
    """Summed RSS and PSS (bytes) of every Chromium process under this one."""
    import psutil

    rss = pss = 0
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "chrom" not in proc.name().lower():
                continue
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss, pss


def load_urls(app: Any, urls: list[str]) -> dict[str, int]:
    from datetime import UTC, datetime

    from store.models import Url
    from tocsin.urls import host_of, normalise_url, url_hash

    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    with app.db.session() as session:
        for raw in urls:
            url = normalise_url(raw)
            row = Url(
                url=url,
                url_hash=url_hash(url),
                host=host_of(url),
                first_seen=now,
                last_seen=now,
                verdict="pending",
            )
            session.add(row)
            session.flush()
            ids[raw] = row.id
    return ids


def reset_urls(app: Any) -> None:
    from sqlalchemy import update

    from store.models import Url

    with app.db.session() as session:
        session.execute(update(Url).values(verdict="pending", next_check_at=None))


def bare_spider(urls: list[str]) -> Any:
    from scrapy import Request, Spider

    class Bare(Spider):
        name = "bare"
        seen = 0

        async def start(self):
            for url in urls:
                yield Request(url, callback=self.parse, errback=self.failed, dont_filter=True)

        def parse(self, response):
            Bare.seen += 1

        def failed(self, failure):
            Bare.seen += 1

    return Bare


def repeating_spider(page_ids: list[int], visits: int) -> Any:
    """The check spider visiting ``page_ids`` in turn until ``visits`` pages are done."""
    from crawler.spiders.check import CheckSpider

    class Repeating(CheckSpider):
        name = "check-repeat"

        async def _batches(self):
            done = 0
            while done < visits:
                chunk = page_ids[: min(len(page_ids), visits - done)]
                rows = await asyncio.to_thread(self._load_ids, chunk)
                order = {url_id: i for i, url_id in enumerate(chunk)}
                yield sorted(rows, key=lambda r: order[r[0]])
                done += len(chunk)

    return Repeating


async def playwright_capture(
    urls: list[str], proxy_url: str, concurrency: int
) -> tuple[int, float]:
    """PlaywrightCapture on ``urls`` through our resolving proxy; (successes, seconds)."""
    from playwright.async_api._generated import BrowserType
    from playwrightcapture import Capture
    from playwrightcapture.capture import CaptureSettings

    from crawler.settings import CHROMIUM_FLAGS, chromium_path

    original = BrowserType.launch
    executable = chromium_path("")

    async def launch(self: Any, *args: Any, **kwargs: Any) -> Any:  # the system Chromium
        kwargs.pop("channel", None)
        if executable:
            kwargs["executable_path"] = executable
        kwargs["args"] = [*kwargs.get("args", []), *CHROMIUM_FLAGS]
        return await original(self, *args, **kwargs)

    BrowserType.launch = launch  # type: ignore[method-assign]
    gate = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(url: str) -> None:
        nonlocal ok
        async with gate:
            settings = CaptureSettings(
                url=url, browser="chromium", proxy={"server": proxy_url}, headless=True
            )
            try:
                async with Capture(
                    "WARNING", capture_settings=settings, only_global_lookup=False
                ) as capture:
                    await capture.initialize_context()
                    result = await capture.capture_page(url=url, max_depth_capture_time=60)
                    ok += bool(result.get("html"))
            except Exception as exc:
                print(f"  PlaywrightCapture failed on {url}: {exc}", file=sys.stderr)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(u) for u in urls))
    finally:
        BrowserType.launch = original  # type: ignore[method-assign]
    return ok, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--rss-pages", type=int, default=1000)
    parser.add_argument("--capture", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=0, help="default: browser.concurrency")
    parser.add_argument("--db", default="")
    parser.add_argument("--no-capture", action="store_true")
    parser.add_argument("--triage-only", action="store_true", help="stop after the triage rate")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.ERROR)
    from bench.sandbox_proc import SandboxProcess
    from crawler.runner import crawl_due, run_spiders
    from tocsin.app import App

    with (
        tempfile.TemporaryDirectory(prefix="tocsin-bench-crawl-") as tmp,
        SandboxProcess(Path(tmp) / "sandbox", scale=args.urls) as sandbox,
    ):
        db_url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        from store import migrate
        from store.db import Database

        migrate.upgrade(Database(db_url))  # what `tocsin init` does; no stage creates a store
        common = {
            "crawl": {"concurrency": 64, "per_domain": 8},
            "enrich": {"in_crawl": False},  # bench/enrich.py measures enrichment
            "browser": {"concurrency": args.concurrency} if args.concurrency else {},
            "evidence": {"dir": str(Path(tmp) / "evidence")},
        }
        triage_cfg = sandbox.write_config(
            Path(tmp) / "triage.toml",
            db_url,
            crawl=common["crawl"],
            enrich=common["enrich"],
            browser={**common["browser"], "enabled": False},
            evidence=common["evidence"],
        )
        full_cfg = sandbox.write_config(Path(tmp) / "full.toml", db_url, **common)
        scale = sandbox.sites
        urls = [s["url"] for s in scale]
        mix = Counter(s["tags"][1] for s in scale)
        print(f"sandbox: {len(urls)} URLs ({dict(mix)}) on {os.cpu_count()} cores")

        triage_app = App(config_path=triage_cfg)
        ids = load_urls(triage_app, urls)

        # 1. Bare Scrapy, then our triage, on the same URLs (best of two, interleaved);
        # and bare Scrapy with tocsin's Scrapy tuning (CONCURRENT_ITEMS) for reference.
        bare_times, tuned_times, triage_times = [], [], []
        for _ in range(2):
            for settings, times_ in ((BARE, bare_times), (BARE_TUNED, tuned_times)):
                spider = bare_spider(urls)
                started = time.perf_counter()
                run_spiders(triage_app, [(spider, {})], settings=settings)
                times_.append(time.perf_counter() - started)
            reset_urls(triage_app)
            started = time.perf_counter()
            outcomes, _ = crawl_due(triage_app)
            triage_times.append(time.perf_counter() - started)
        bare_rate = len(urls) / min(bare_times)
        triage_rate = len(urls) / min(triage_times)
        verdicts = Counter(o.verdict for o in outcomes.values())
        print(f"triage: {triage_rate:.1f} URLs/s vs bare Scrapy {bare_rate:.1f} URLs/s")
        print(f"  ratio {triage_rate / bare_rate:.2f} (goal >= 0.8); verdicts {dict(verdicts)}")
        tuned_rate = len(urls) / min(tuned_times)
        print(
            f"  bare Scrapy with CONCURRENT_ITEMS={BARE_TUNED['CONCURRENT_ITEMS']} as tocsin: "
            f"{tuned_rate:.1f} URLs/s (ratio {triage_rate / tuned_rate:.2f})"
        )

        if args.triage_only:
            return

        # 2 and 3. The pages in the browser, visited in turn; RSS at P/10 and P.
        page_ids = [ids[s["url"]] for s in scale if s["tags"][1] == "page"]
        full_app = App(config_path=full_cfg)
        pages_at_once = full_app.config.browser.concurrency
        marks = {max(1, args.rss_pages // 10): None, args.rss_pages: None}
        done = 0
        times: list[float] = []
        lock = threading.Lock()

        def on_check(outcome: Any) -> None:
            nonlocal done
            with lock:
                done += 1
                times.append(time.perf_counter())
                if done in marks:
                    marks[done] = chromium_rss()

        spider = repeating_spider(page_ids, args.rss_pages)
        started = time.perf_counter()
        run_spiders(full_app, [(spider, {"kind": "bench", "url_ids": page_ids})], on_check=on_check)
        elapsed = (times[-1] if times else time.perf_counter()) - started
        per_minute = done / elapsed * 60 if elapsed else 0.0
        print(
            f"browser: {done} confirmations in {elapsed:.0f}s = {per_minute:.0f}/min "
            f"(goal >= 60/min, {pages_at_once} pages at once)"
        )
        (few, few_mem), (many, many_mem) = sorted(marks.items())
        if few_mem and many_mem:
            print(
                f"  Chromium RSS after {few} pages {few_mem[0] / 2**20:.0f} MiB, after {many} "
                f"{many_mem[0] / 2**20:.0f} MiB: {many_mem[0] / few_mem[0]:.2f}x (goal <= 1.5x); "
                f"PSS {few_mem[1] / 2**20:.0f} -> {many_mem[1] / 2**20:.0f} MiB"
            )

        # 4. PlaywrightCapture on some of the same pages, through our resolving proxy.
        if not args.no_capture and args.capture:
            try:
                import playwrightcapture  # noqa: F401
            except ImportError:
                print("PlaywrightCapture: not installed (pip install -e '.[bench]')")
                return
            from crawler.browser.proxy import GuardProxy
            from crawler.net import NetPolicy

            sample = [s["url"] for s in scale if s["tags"][1] == "page"][: args.capture]

            async def with_proxy() -> tuple[int, float]:
                proxy = GuardProxy(NetPolicy.for_config(full_app.config.network))
                await proxy.start()
                try:
                    return await playwright_capture(sample, proxy.url, pages_at_once)
                finally:
                    await proxy.close()

            ok, seconds = asyncio.run(with_proxy())
            theirs = ok / seconds * 60 if seconds else 0.0
            ratio = per_minute / theirs if theirs else float("nan")
            print(
                f"PlaywrightCapture: {ok}/{len(sample)} pages in {seconds:.0f}s = "
                f"{theirs:.0f}/min; tocsin's confirmations are {ratio:.1f}x its rate"
            )


if __name__ == "__main__":
    main()
