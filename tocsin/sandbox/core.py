"""The :class:`Sandbox`: a fake internet on loopback, started and stopped as one thing.

It runs in one background thread with its own asyncio loop (sites, RDAP,
SMTP, canary), so it works inside pytest and inside ``tocsin demo``, and the
``tocsin`` subprocesses reach it over loopback. ``stop()`` leaves no thread,
socket or process behind.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import secrets
import shutil
import threading
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from tocsin.sandbox import pages_incidents
from tocsin.sandbox.catalogue import (
    CDN_BY_ASN,
    CSIRTS,
    KNOWN_BAD,
    PROVIDERS,
    SUFFIX_REGISTRAR,
    Provider,
    SiteSpec,
    catalogue,
)
from tocsin.sandbox.pages import registered_domain
from tocsin.sandbox.rdap import RdapServers
from tocsin.sandbox.smtp import SmtpServer
from tocsin.sandbox.tls import Certs, make_certs
from tocsin.sandbox.tsa import TsaServer
from tocsin.sandbox.web import SiteServer

T = TypeVar("T")
STATES = ("clean", "compromised", "offline")
GUARDS = ("open", "strict")
SANDBOX_CIDR = "127.10.0.0/16"
FROM_ADDR = "tocsin-notices@tocsin-sandbox.org"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# Scale: where synthetic sites live (not the RDAP-down or throttled networks,
# so a benchmark measures tocsin, not the sandbox's scripted failures).
SCALE_PROVIDERS = ("hanami", "deichnet", "megashared", "oakridge")
SCALE_TLDS = ("com", "net", "org", "de", "nl", "co.jp", "jp")
SCALE_WORDS = ("bakery", "garage", "studio", "florist", "dental", "books", "travel", "hotel")
SCALE_PAGES = (
    ("brochure", "clean", None),
    ("injected-script", "malicious", "injected-script"),
    ("brochure", "clean", None),
    ("hidden-iframe", "malicious", "hidden-iframe"),
    ("known-bad-host", "malicious", "known-bad-host"),
    ("brochure", "clean", None),
    ("meta-redirect", "malicious", "malicious-redirect"),
    ("cryptominer", "malicious", "cryptominer"),
)
SCALE_PAYLOADS = (
    ("pe", "application/x-msdownload", "update.exe"),
    ("zip", "application/zip", "invoice.zip"),
    ("elf-mips", "application/octet-stream", "x86"),
    ("apk", "application/vnd.android.package-archive", "app.apk"),
    ("js", "text/plain", "doc.js"),
    ("pe", "image/png", "logo.png"),
)
DEFAULT_MIX = {"offline": 0.4, "payload": 0.3, "page": 0.3}


def default_state(site: SiteSpec) -> str:
    return "compromised" if site.kind in ("compromised", "payload") else "clean"


def scale_sites(count: int, mix: dict[str, float] | None = None) -> list[SiteSpec]:
    """``count`` synthetic sites/URLs for benchmarks, spread over a few hundred IPs."""
    mix = dict(mix or DEFAULT_MIX)
    unknown = set(mix) - set(DEFAULT_MIX)
    if unknown:
        raise ValueError(f"scale mix: unknown categories {sorted(unknown)}")
    total = sum(mix.values()) or 1.0
    counts = {k: int(count * v / total) for k, v in mix.items()}
    biggest = max(mix, key=lambda k: mix[k])
    counts[biggest] += count - sum(counts.values())
    n_ips = max(1, min(400, math.ceil(count / 30)))
    pool = [
        (
            SCALE_PROVIDERS[i % len(SCALE_PROVIDERS)],
            PROVIDERS[SCALE_PROVIDERS[i % len(SCALE_PROVIDERS)]].ip(
                100 + i // len(SCALE_PROVIDERS)
            ),
        )
        for i in range(n_ips)
    ]
    sites: list[SiteSpec] = []
    n = 0
    for category in ("offline", "payload", "page"):
        for j in range(counts.get(category, 0)):
            n += 1
            word = SCALE_WORDS[n % len(SCALE_WORDS)]
            tld = SCALE_TLDS[n % len(SCALE_TLDS)]
            host = f"www.{word}-{n:05d}.{tld}"
            provider, ip = pool[n % len(pool)]
            sid = f"scale-{n:05d}"
            common = {"provider": provider, "tags": ("scale", category)}
            if category == "offline":
                how = ("dns", "refused", "404", "410")[j % 4]
                if how == "dns":
                    site = SiteSpec(
                        sid, f"www.{word}-{n:05d}.invalid", ip="", kind="offline",
                        behaviour="none", verdict="offline", **common,
                    )  # fmt: skip
                elif how == "refused":
                    site = SiteSpec(
                        sid, host, ip=PROVIDERS[provider].ip(250), kind="offline",
                        behaviour="none", verdict="offline", **common,
                    )  # fmt: skip
                else:
                    site = SiteSpec(
                        f"{sid}-{how}", host, ip=ip, kind="offline", behaviour="brochure",
                        verdict="offline", entry=f"/gone-{n}/", **common,
                    )  # fmt: skip
            elif category == "payload":
                kind, ctype, name = SCALE_PAYLOADS[j % len(SCALE_PAYLOADS)]
                site = SiteSpec(
                    sid, host, ip=ip, kind="payload", behaviour="scale-payload",
                    verdict="malicious", family="malware-download",
                    entry=f"/files/{n}/{name}", provider=provider,
                    tags=("scale", category, kind, ctype),
                )  # fmt: skip
            else:
                behaviour, verdict, family = SCALE_PAGES[j % len(SCALE_PAGES)]
                site = SiteSpec(
                    sid, host, ip=ip, kind="compromised" if family else "clean",
                    behaviour=behaviour, verdict=verdict, family=family,
                    security_txt="valid" if n % 5 == 0 else "none",
                    title=f"{word.title()} {n}", **common,
                )  # fmt: skip
            sites.append(site)
    return sites


class Sandbox:
    """The sandbox internet. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        scale: int = 0,
        mix: dict[str, float] | None = None,
        real_rdap_dir: str | Path | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.providers: dict[str, Provider] = dict(PROVIDERS)
        base = catalogue()
        for site in scale_sites(scale, mix) if scale else []:
            base[site.id] = site
        self._base_sites = base
        self.sites: dict[str, SiteSpec] = dict(base)
        self.states: dict[str, str] = {sid: default_state(s) for sid, s in base.items()}
        self.hosts_file = self.workdir / "hosts"
        self.ipasn_path = self.workdir / "ipasn.dat"
        self.asnames_path = self.workdir / "asnames.json"
        self.known_bad_path = self.workdir / "known_bad.txt"
        self.cert_contacts_path = self.workdir / "cert_contacts.csv"
        self.providers_path = self.workdir / "providers.json"  # CDNs known by ASN only
        self.real_rdap_dir = Path(real_rdap_dir) if real_rdap_dir else None
        self.board_secret = secrets.token_urlsafe(24)
        self.web: SiteServer | None = None
        self.rdap: RdapServers = None  # type: ignore[assignment]
        self.smtp: SmtpServer = None  # type: ignore[assignment]
        self.tsa: TsaServer | None = None
        self.certs: Certs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Sandbox:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        catalogue_sites = [s for s in self.sites.values() if "scale" not in s.tags]
        names = [s.host for s in catalogue_sites if s.ip and not _is_ip(s.host)]
        ips = sorted({s.ip for s in catalogue_sites if s.ip.startswith("127.")})
        ips += ["127.25.0.1", "127.25.0.2", "127.25.0.3", "127.0.0.1"]
        self.certs = make_certs(self.workdir / "tls", [*names, "localhost"], ips)
        self.web = SiteServer(self.workdir, self.sites, self.states)
        self.rdap = RdapServers(self.workdir, self._domains())
        if self.real_rdap_dir is not None:
            import tocsin.sandbox.rdap as rdap_module

            rdap_module.REAL_DIR = self.real_rdap_dir
        self.smtp = SmtpServer(self.workdir, self.certs.server_context())
        self.tsa = TsaServer(self.workdir, self.certs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tocsin-sandbox", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._astart(), timeout=120)
        except BaseException:
            self.stop()
            raise
        self.write_files()
        return self

    async def _astart(self) -> None:
        assert self.web is not None
        assert self.certs is not None
        served = [s for s in self.sites.values() if s.behaviour != "none" and s.ip]
        http_ips = {s.ip for s in served}
        https_ips = {s.ip for s in served if "scale" not in s.tags}
        await self.web.start(http_ips, https_ips, self.certs.server_context())
        await self.rdap.start()
        await self.smtp.start(asyncio.get_running_loop())
        assert self.tsa is not None
        await self.tsa.start()

    async def _astop(self) -> None:
        if self.tsa is not None:
            await self.tsa.stop()
        if self.smtp is not None:
            await self.smtp.stop()
        if self.rdap is not None:
            await self.rdap.stop()
        if self.web is not None:
            await self.web.stop()
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks(loop) if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        await loop.shutdown_default_executor()

    def stop(self) -> None:
        """Stop every server, the loop and its thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if thread.is_alive():
                self._call(self._astop(), timeout=60)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            if not loop.is_running():
                loop.close()
            self._loop = None
            self._thread = None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the sandbox is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ generated files

    def _domains(self) -> dict[str, str]:
        """Registered domain -> registrar id, for every name the sandbox serves."""
        domains: dict[str, str] = {}
        for site in self.sites.values():
            if _is_ip(site.host) or site.host.endswith(".invalid"):
                continue
            domain = registered_domain(site.host)
            suffix = domain.split(".", 1)[1]
            if site.kind == "attacker":
                domains[domain] = "shadyreg"
            elif site.kind == "third-party":
                domains[domain] = "markmonitor"
            else:
                domains[domain] = SUFFIX_REGISTRAR.get(suffix, "bluewhale")
        for provider in self.providers.values():
            domain = registered_domain(provider.abuse_email.split("@")[1])
            domains.setdefault(domain, SUFFIX_REGISTRAR.get(domain.split(".", 1)[1], "bluewhale"))
        return domains

    def write_files(self) -> None:
        self.write_hosts()
        lines = ["; IP-ASN32-DAT file", "; tocsin sandbox: one /24 per provider", ";"]
        lines += [f"{p.cidr}\t{p.asn}" for p in self.providers.values()]
        self.ipasn_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        names = {str(p.asn): p.as_name for p in self.providers.values()}
        self.asnames_path.write_text(json.dumps(names, indent=1), encoding="utf-8")
        self.known_bad_path.write_text(
            "# known-bad domains and IPs, one a line (tocsin sandbox)\n"
            + "\n".join([*KNOWN_BAD, *pages_incidents.known_bad_hashes()])
            + "\n",
            encoding="utf-8",
        )
        cdns = [{"name": name, "asn": asns} for name, asns in CDN_BY_ASN.items()]
        self.providers_path.write_text(json.dumps({"cdn": cdns}), encoding="utf-8")
        with self.cert_contacts_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["country", "email", "language"])
            writer.writerows(CSIRTS)

    def write_hosts(self) -> None:
        """The hosts file: every served name (not ``.invalid`` ones), atomically replaced."""
        seen: dict[str, str] = {}
        for site in self.sites.values():
            if site.ip and not _is_ip(site.host) and not site.host.endswith(".invalid"):
                seen.setdefault(site.host.lower(), site.ip)
        lines = ["# generated by the tocsin sandbox: names win over DNS (network.hosts_file)"]
        lines += [f"{ip}\t{host}" for host, ip in sorted(seen.items())]
        tmp = self.hosts_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(self.hosts_file)

    # ------------------------------------------------------------------ configuration

    def config_tables(
        self, database_url: str, guard: str = "open", base_dir: str | Path | None = None
    ) -> dict[str, dict[str, Any]]:
        """The TOML tables of a tocsin config pointing at this sandbox.

        ``guard="open"`` sets ``network.allow_private``; ``"strict"`` keeps the
        SSRF guard on and admits only the providers' ``127.10.0.0/16``.
        Outbox and evidence go under ``base_dir`` (default: the sandbox folder).
        """
        if guard not in GUARDS:
            raise ValueError(f"guard must be one of {GUARDS}, got {guard!r}")
        base = Path(base_dir).resolve() if base_dir else self.workdir
        network: dict[str, Any] = {"hosts_file": str(self.hosts_file)}
        if guard == "open":
            network["allow_private"] = True
        else:
            network["allow_private"] = False
            network["allow_cidrs"] = [SANDBOX_CIDR]
        chromium = next((c for c in CHROMIUM_CANDIDATES if Path(c).exists()), "")
        smtp = self.smtp.config("plain") if self.smtp and self.smtp.ports else {}
        return {
            "database": {"url": database_url},
            "network": network,
            "browser": {"executable_path": chromium or shutil.which("chromium") or ""},
            "signatures": {"known_bad": str(self.known_bad_path)},
            "evidence": {"dir": str(base / "evidence")},
            "asn": {"ipasn_db": str(self.ipasn_path), "asnames": str(self.asnames_path)},
            "rdap": {"bootstrap_dir": str(self.rdap.bootstrap_dir), "allow_insecure": True},
            "notify": {"from_addr": FROM_ADDR, "outbox_dir": str(base / "outbox")},
            "smtp": smtp,
            "escalation": {"cert_contacts": str(self.cert_contacts_path)},
            "enrich": {"providers_file": str(self.providers_path)},
            # A key of its own, so the notices' portal links are signed as in production.
            "board": {"base_url": "http://127.0.0.1:8080", "secret": self.board_secret},
            # Evidence packages are timestamped by the sandbox TSA, checked against its CA.
            "package": self.package_config(),
        }

    def package_config(self) -> dict[str, Any]:
        """The ``[package]`` table: the sandbox TSA and the CA its certificate chains to."""
        if self.tsa is None or self.certs is None or not self.tsa.port:
            return {"operator": "sandbox operator"}
        return {
            "operator": "sandbox operator",
            "tsa_url": self.tsa.url,
            "tsa_ca": str(self.certs.ca_path),
        }

    def write_config(
        self,
        path: str | Path,
        database_url: str,
        guard: str = "open",
        **table_overrides: dict[str, Any],
    ) -> Path:
        """Write a ``tocsin.toml`` for this sandbox; outbox and evidence sit beside it.

        ``table_overrides`` merge into tables, e.g. ``notify={"mode": "smtp"}``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tables = self.config_tables(database_url, guard, base_dir=path.parent)
        for table, values in table_overrides.items():
            tables.setdefault(table, {}).update(values)
        path.write_text(to_toml(tables), encoding="utf-8")
        return path

    # ------------------------------------------------------------------ addressing

    @property
    def http_port(self) -> int:
        assert self.web is not None
        return self.web.http_port

    @property
    def https_port(self) -> int:
        assert self.web is not None
        return self.web.https_port

    @property
    def canary_port(self) -> int:
        assert self.web is not None
        return self.web.canary_port

    @property
    def canary_hits(self) -> list[dict[str, Any]]:
        """Requests that reached the 127.0.0.1 canary (SSRF tests want none)."""
        return list(self.web.canary_hits) if self.web else []

    @property
    def attacker_log(self) -> list[dict[str, Any]]:
        """What attacker hosts saw: beacons, exfiltrated form data, pool messages..."""
        return list(self.web.attacker_log) if self.web else []

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Every request the sites received (host, ip, path, user agent...), newest last."""
        return list(self.web.request_log) if self.web else []

    def hits(self) -> Counter[str]:
        """The hit log: how many requests the sites got, by ``host/path?query``
        (``web.url_hit_key`` turns a URL into its key). Cleared by :meth:`reset`."""
        return self.web.hits() if self.web else Counter()

    def clear_hits(self) -> None:
        """Start the hit log afresh (a test counting only its own crawl's fetches)."""
        if self.web is not None:
            self.web.clear_hits()

    def url(self, site_id: str, path: str | None = None, scheme: str | None = None) -> str:
        """The full URL of a site's entry (or ``path``), with the sandbox's port."""
        site = self.sites[site_id]
        scheme = scheme or site.scheme
        port = self.https_port if scheme == "https" else self.http_port
        return f"{scheme}://{site.host}:{port}{path if path is not None else site.entry}"

    def origin(self, host: str, scheme: str = "http") -> str:
        assert self.web is not None
        return self.web.origin(host, scheme)

    def select(
        self,
        kinds: Iterable[str] | None = None,
        *,
        family: str | None = None,
        include_scale: bool = True,
    ) -> list[SiteSpec]:
        """Sites by kind and/or family, in catalogue order."""
        wanted = set(kinds) if kinds is not None else None
        return [
            s
            for s in self.sites.values()
            if (wanted is None or s.kind in wanted)
            and (family is None or s.family == family)
            and (include_scale or "scale" not in s.tags)
        ]

    # ------------------------------------------------------------------ mutation

    def set_site_state(self, site_id: str, state: str) -> None:
        """Serve a site clean, compromised, or offline (404 on its pages) from now on."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        if site_id not in self.sites:
            raise KeyError(site_id)
        self.states[site_id] = state

    def move_site(self, site_id: str, provider_id: str, ip_part: int | None = None) -> SiteSpec:
        """Move a site (every URL of its host) to another provider: new IP, new hosts file."""
        with self._lock:
            site = self.sites[site_id]
            provider = self.providers[provider_id]
            used = {s.ip for s in self.sites.values()}
            if ip_part is None:
                ip_part = next(n for n in range(150, 250) if provider.ip(n) not in used or n == 249)
            new_ip = provider.ip(ip_part)
            for sid, other in list(self.sites.items()):
                if other.host == site.host:
                    self.sites[sid] = replace(other, provider=provider_id, ip=new_ip)
            assert self.web is not None
            self._call(self._bind(new_ip))
            self.web.rebuild()
            self.write_hosts()
            return self.sites[site_id]

    async def _bind(self, ip: str) -> None:
        assert self.web is not None
        await self.web.bind(ip, "http")
        await self.web.bind(ip, "https")

    def bring_up_rdap(self, name: str = "down") -> None:
        """Start the RDAP server that was down (re-enrichment fills the gaps)."""
        self._call(self.rdap.bring_up(name))

    def take_down_rdap(self, name: str) -> None:
        self._call(self.rdap.take_down(name))

    def reset(self) -> None:
        """Undo every mutation: states, moves, mail, RDAP log and counters, canary hits,
        the request and hit logs."""
        with self._lock:
            moved = any(self.sites[sid] != site for sid, site in self._base_sites.items())
            self.sites.clear()
            self.sites.update(self._base_sites)
            self.states.clear()
            self.states.update({sid: default_state(s) for sid, s in self.sites.items()})
            if self.web is not None:
                self.web.rebuild()
                self.web.canary_hits.clear()
                self.web.attacker_log.clear()
                self.web.request_log.clear()
                self.web.clear_hits()
            if moved:
                self.write_hosts()
            if self.smtp is not None:
                self.smtp.reset()
            if self.rdap is not None:
                self.rdap.reset()
                if self.running and "down" in self.rdap._runners:
                    self.take_down_rdap("down")

    # ------------------------------------------------------------------ feeds

    def write_feed(
        self,
        path: str | Path,
        kinds: Iterable[str] | None = None,
        *,
        format: str = "plain",
        include_scale: bool = True,
    ) -> Path:
        """Write the entry URLs of the chosen sites as a plain list or a URLhaus CSV.

        Default kinds: everything a feed would report (not attacker or
        third-party infrastructure).
        """
        if kinds is None:
            kinds = [k for k in _FEED_KINDS]
        sites = self.select(kinds, include_scale=include_scale)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if format == "plain":
            text = "".join(self.url(s.id) + "\n" for s in sites)
            path.write_text(text, encoding="utf-8")
            return path
        if format != "urlhaus-csv":
            raise ValueError("format must be plain or urlhaus-csv")
        banner = (
            "################################################################\n"
            "# abuse.ch URLhaus Database Dump (CSV - recent URLs)           #\n"
            "# Last updated: 2024-06-01 09:15:02 (UTC)                      #\n"
            "#                                                              #\n"
            "# Terms Of Use: https://urlhaus.abuse.ch/api/                  #\n"
            "# For questions please contact urlhaus [at] abuse.ch           #\n"
            "################################################################\n"
            "#\n"
            "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n"
        )
        with path.open("w", newline="", encoding="utf-8") as out:
            out.write(banner)
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            for n, site in enumerate(sites, start=3_500_000):
                threat = "malware_download"
                tags = ",".join(t for t in (site.family, *site.tags) if t)
                writer.writerow(
                    [
                        n,
                        "2024-06-01 08:00:00",
                        self.url(site.id),
                        "offline" if site.verdict == "offline" else "online",
                        "",
                        threat,
                        tags,
                        f"https://urlhaus.abuse.ch/url/{n}/",
                        "tocsin_sandbox",
                    ]
                )
        return path


_FEED_KINDS = ("compromised", "payload", "clean", "tricky-clean", "offline", "hostile", "ssrf")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def to_toml(tables: dict[str, dict[str, Any]]) -> str:
    """Nested dicts of strings, numbers, bools and lists to TOML text."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v), ensure_ascii=False)

    lines: list[str] = []
    for table, keys in tables.items():
        lines.append(f"[{table}]")
        lines.extend(f"{k} = {value(v)}" for k, v in keys.items())
        lines.append("")
    return "\n".join(lines)
