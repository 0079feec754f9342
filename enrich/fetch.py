"""How ``tocsin enrich`` fetches security.txt: the spider, on the crawl runner's reactor."""

from __future__ import annotations

from enrich.securitytxt import Fetched
from tocsin.app import App


def spider_fetcher(app: App):
    """A :data:`enrich.service.SecurityTxtFetcher` running the guarded Scrapy spider."""

    def fetch(targets: list[tuple[int, str, list[str]]]) -> dict[int, Fetched]:
        from crawler.runner import run_spiders
        from crawler.spiders.securitytxt import SecurityTxtSpider

        if not targets:
            return {}
        sink: dict[int, Fetched] = {}
        config = app.config.enrich
        run_spiders(
            app,
            [
                (
                    SecurityTxtSpider,
                    {
                        "targets": targets,
                        "sink": sink,
                        "max_bytes": config.securitytxt_max_bytes,
                        "timeout": config.securitytxt_timeout.total_seconds(),
                    },
                )
            ],
            settings={
                "LOG_LEVEL": "WARNING",
                "CONCURRENT_REQUESTS": config.securitytxt_concurrency,
                "LOGSTATS_INTERVAL": 0,
            },
        )
        return sink

    return fetch
