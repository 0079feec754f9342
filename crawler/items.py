"""What a check carries from the spider through the pipelines, and what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Blob:
    """A piece of evidence: bytes to store (``data``), then where they went (``sha256``)."""

    kind: str  # screenshot | dom | requests | served_html | payload_zip | variant_html
    media_type: str
    data: bytes | None = field(default=None, repr=False)
    note: str | None = None
    content_sha256: str | None = None  # for a zip: the sha256 of what is inside
    sha256: str | None = None
    size: int = 0


@dataclass
class CheckItem:
    """One visit to one URL, from triage to verdict.

    The spider fills in what it saw; in the check worker, ``pipelines.verdict``
    adds the verdict, ``pipelines.evidence`` stores the blobs and
    ``pipelines.store`` writes the rows.
    """

    url_id: int
    url: str
    kind: str  # triage | recheck | lastminute ...
    started_at: datetime
    finished_at: datetime | None = None
    route: str | None = None  # offline | payload | browser | blocked | error | browser-skipped
    route_reason: str | None = None
    error: str | None = None
    http_status: int | None = None
    final_url: str | None = None
    redirect_chain: list[dict[str, Any]] = field(repr=False, default_factory=list)
    content_type: str | None = None
    payload: bytes | None = field(default=None, repr=False)  # a direct payload's bytes (capped)
    payload_type: str | None = None  # what the magic bytes say: pe, elf, zip, apk, script...
    payload_name: str | None = None
    served_html: str | None = field(
        default=None, repr=False
    )  # the plain triage fetch of an HTML page (capped)
    variants: dict[str, dict[str, Any]] = field(
        repr=False, default_factory=dict
    )  # cloaking fetches
    browser: dict[str, Any] | None = field(
        default=None, repr=False
    )  # the recorded behaviour (see crawler.browser.recorder)
    blocked: list[dict[str, str]] = field(default_factory=list)
    # Set by the verdict (pipelines.verdict).
    verdict: str | None = None
    family: str | None = None
    confidence: float | None = None
    rules: list[str] = field(default_factory=list)
    iocs: dict[str, list[str]] = field(default_factory=dict)
    evidence_lines: list[str] = field(default_factory=list)
    # Set by the spider (screenshot, DOM...) and the evidence keeper (payload zips).
    blobs: list[Blob] = field(repr=False, default_factory=list)
    meta: dict[str, Any] = field(repr=False, default_factory=dict)
    # The token of the lease the crawl took on the URL (store.leases); None for visits
    # that claim nothing (re-checks of given URLs). Stored only while it still holds.
    lease: str | None = None

    def fail(self, reason: str) -> None:
        """Make this an ``error`` check that says why, keeping only what names the visit.

        For a check that broke the worker or the store: whatever in it did that
        (a hostile value anywhere in the record) is dropped, so the error itself
        can be stored and the URL is retried on the usual schedule.
        """
        keep = CheckItem(self.url_id, self.url, self.kind, self.started_at, self.finished_at)
        keep.lease = self.lease
        self.__dict__.update(keep.__dict__)
        self.route, self.route_reason, self.verdict, self.error = "error", reason, "error", reason


@dataclass(frozen=True)
class CheckOutcome:
    """A stored check, as callers of the runner see it."""

    url_id: int
    check_id: int
    url: str
    kind: str
    verdict: str
    family: str | None
    confidence: float | None
    rules: tuple[str, ...]
    error: str | None
    route: str | None
    incident_id: int | None = None
    campaign: str | None = None


@dataclass(frozen=True)
class Dropped:
    """A check not stored because its URL's lease was taken over by another crawl."""

    url_id: int
    url: str
    reason: str
