"""Executables alone are not compromise: what makes a downloadable program malware.

A software vendor's download page serves installers (PE, MSI, APK, ELF) every day,
so a file that is only an executable is ``suspicious`` and nobody is notified
(:func:`crawler.signatures.behaviour.malware_download`). It is malicious with one
more signal:

- its SHA-256 is on the known-bad list (here, rule ``tocsin.known-bad-hash``);
- a detection rule matches it (YARA ``payload`` rules, in the engine);
- it is disguised: served under a type it is not, or from a bare IP (behaviour);
- a compromised site serves it (:mod:`pipelines.executables`, at store time, where
  the site's open incident is known).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from crawler.signatures.domains import host_of, registered_domain
from crawler.signatures.verdict import Finding
from tocsin.urls import defang

if TYPE_CHECKING:
    from crawler.signatures.behaviour import Facts

KNOWN_BAD_HASH = "tocsin.known-bad-hash"


def known_bad_hash(facts: Facts) -> Iterator[Finding]:
    """The payload, or a file the page downloaded, has a SHA-256 on the known-bad list."""
    if not facts.known_bad.sha256:
        return
    item = facts.item
    sha = item.meta.get("payload_sha256")
    if item.payload is not None and facts.known_bad.match_sha256(sha):
        url = item.final_url or item.url
        finding = Finding(
            KNOWN_BAD_HASH,
            "malware-download",
            "malicious",
            0.95,
            [f"{defang(url)} serves a file whose sha256 {sha} is on the known-bad list"],
            cluster=[f"sha256:{sha}"],
        )
        finding.add_ioc("sha256", sha)
        finding.add_ioc("urls", url)
        yield finding
    for download in facts.browser.get("downloads", []):
        digest = download.get("sha256")
        if not facts.known_bad.match_sha256(digest):
            continue
        url = download.get("url") or ""
        finding = Finding(
            KNOWN_BAD_HASH,
            "drive-by-download",
            "malicious",
            0.95,
            [
                f"{facts.where()} downloads {download.get('filename') or 'a file'} from "
                f"{defang(url)} whose sha256 {digest} is on the known-bad list"
            ],
            cluster=[f"sha256:{digest}", f"host:{registered_domain(host_of(url))}"],
        )
        finding.add_ioc("sha256", digest)
        if url:
            finding.add_ioc("urls", url)
        yield finding
