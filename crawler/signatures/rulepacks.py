"""The community rule packs tocsin runs: bundled snapshots, updates, rollbacks.

Each pack (``fiddleitm``, ``iok``) ships with tocsin under ``packs/<name>/`` with
its licence and a ``SNAPSHOT`` naming the upstream commit date, so a new user's
crawl runs them without configuration (``signatures.community_packs``).
``tocsin rules update`` fetches a pack from ``signatures.<name>_url`` through the
guarded fetcher (:func:`ingest.fetch.fetch`), unpacks it with size caps and
without trusting a member's path, reads every rule strictly (a rule that does not
parse, or a regex that does not compile or backtracks catastrophically, refuses the
whole pack and the old one stays), and installs it atomically in the packs folder::

    <packs_dir>/<name>/state.json          {"current": VERSION, "previous": VERSION}
    <packs_dir>/<name>/<VERSION>/          rules.json | indicators/*.yml, LICENSE, PACK.json

A version folder is written under a temporary name and renamed; ``state.json`` is
replaced in one ``os.replace``. ``previous`` is kept for ``tocsin rules rollback``
(``"bundled"`` stands for the copy inside tocsin). An installed pack wins over the
bundled one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from crawler.signatures import community
from tocsin.config import Config
from tocsin.errors import FetchError, TocsinError

log = logging.getLogger("tocsin.signatures")

BUNDLED_DIR = Path(__file__).with_name("packs")
BUNDLED = "bundled"
STATE = "state.json"
META = "PACK.json"


@dataclass(frozen=True)
class PackKind:
    """What tocsin knows about one pack: its format and where it comes from."""

    name: str
    rules_path: str  # inside a pack folder: the file or folder community.load reads
    homepage: str
    licence: str


PACKS: dict[str, PackKind] = {
    "fiddleitm": PackKind(
        "fiddleitm", "rules.json", "https://github.com/jeromesegura/fiddleitm", "MIT"
    ),
    "iok": PackKind("iok", "indicators", "https://github.com/phish-report/IOK", "ODbL-1.0"),
}


class PackRefused(TocsinError):
    """A fetched pack that is not installed; the one in use stays."""

    exit_code = 1


@dataclass
class Pack:
    """One pack as tocsin would run it now."""

    name: str
    folder: Path
    origin: str  # "bundled" or "updated"
    version: str  # the snapshot's commit date, or when it was fetched (and its digest)
    source: str  # where it came from

    @property
    def rules_path(self) -> Path:
        return self.folder / PACKS[self.name].rules_path


@dataclass
class Change:
    """What ``rules update`` or ``rules rollback`` did to one pack."""

    name: str
    version: str
    rules: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    installed: bool = True  # False: the pack fetched is the one in use already


# --------------------------------------------------------------------------- where packs live


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tocsin"


def packs_root(config: Config) -> Path:
    """The folder of updated packs: ``signatures.packs_dir`` (made absolute beside the
    config file by ``tocsin.config.load``), else beside the SQLite store, else the user's
    data folder. Never the working directory of whoever runs tocsin."""
    raw = Path(config.signatures.packs_dir or "rule-packs").expanduser()
    if raw.is_absolute():
        return raw
    base = _data_home()
    try:
        url = make_url(config.database.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            base = Path(url.database).expanduser().resolve().parent
    except Exception:  # an odd URL: the data folder
        log.debug("no store folder in %s", config.database.url, exc_info=True)
    return base / raw


def _state(folder: Path) -> dict[str, str]:
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("rule pack state %s unreadable (%s): the bundled pack is used", folder, exc)
        return {}
    return {k: str(v) for k, v in state.items() if k in ("current", "previous") and v}


def _write_state(folder: Path, state: dict[str, str]) -> None:
    temp = folder / f".{STATE}.{uuid.uuid4().hex}"
    temp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(temp, folder / STATE)


def bundled(name: str) -> Pack:
    folder = BUNDLED_DIR / name
    try:
        snapshot = (folder / "SNAPSHOT").read_text(encoding="utf-8").strip()
        snapshot = f"snapshot {datetime.strptime(snapshot, '%a %b %d %H:%M:%S %Y %z'):%Y-%m-%d}"
    except (OSError, ValueError):  # unreadable, or not git's date format
        snapshot = "snapshot"
    return Pack(name, folder, BUNDLED, snapshot, PACKS[name].homepage)


def _installed(name: str, folder: Path, version: str) -> Pack | None:
    if version == BUNDLED:
        return None
    path = folder / version
    if not (path / PACKS[name].rules_path).exists():
        log.warning("rule pack %s: %s is missing, the bundled pack is used", name, path)
        return None
    meta = _meta(path)
    label = version
    if meta.get("commit"):
        label += f" (commit {str(meta['commit'])[:12]})"
    return Pack(name, path, "updated", label, str(meta.get("source") or ""))


def _meta(folder: Path) -> dict[str, Any]:
    """What ``rules update`` recorded about a version it installed (PACK.json)."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def active(config: Config, name: str) -> Pack:
    """The pack ``name`` as a crawl runs it: the updated copy, else the bundled one."""
    folder = packs_root(config) / name
    current = _state(folder).get("current")
    return (current and _installed(name, folder, current)) or bundled(name)


def active_packs(config: Config) -> list[Pack]:
    return [active(config, name) for name in config.signatures.community_packs]


def load_rules(config: Config) -> list[community.CommunityRule]:
    """Every community rule a crawl runs: the active packs, then ``community_rules``."""
    paths = [str(pack.rules_path) for pack in active_packs(config)]
    return community.load([*paths, *config.signatures.community_rules])


# --------------------------------------------------------------------------- update


def url_of(config: Config, name: str) -> str:
    return str(getattr(config.signatures, f"{name}_url"))


def _download(config: Config, name: str, location: str) -> bytes:
    """The pack's bytes from an http(s) URL (guarded, bounded) or a local file."""
    from ingest.fetch import Bounds, fetch

    sig = config.signatures
    if re.match(r"(?i)https?://", location):
        sink = io.BytesIO()
        bounds = Bounds(
            sig.pack_timeout.total_seconds(),
            sig.pack_max_download,
            "signatures.pack_timeout",
            "signatures.pack_max_download",
            "rule pack update",
        )
        fetch(location, config, sink, bounds)
        return sink.getvalue()
    path = Path(location).expanduser()
    try:
        size = path.stat().st_size
        if size > sig.pack_max_download:
            raise FetchError(
                f"over the size cap: {size} bytes > signatures.pack_max_download "
                f"{sig.pack_max_download}"
            )
        return path.read_bytes()
    except OSError as exc:
        raise FetchError(f"cannot read {location}: {exc.strerror or exc}") from None


def _member_name(raw: str) -> PurePosixPath:
    """An archive member's path, refused when it could leave the folder it unpacks to."""
    path = PurePosixPath(raw.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or "\x00" in raw or re.match(r"^[A-Za-z]:", raw):
        raise PackRefused(f"the archive holds a member outside its folder: {raw[:200]!r}")
    return path


def _wanted(kind: PackKind, path: PurePosixPath) -> str | None:
    """Where an archive member goes in the pack folder, or None to skip it."""
    if kind.name == "fiddleitm":
        return "rules.json" if path.name == "rules.json" and len(path.parts) <= 2 else None
    if path.suffix.lower() in (".yml", ".yaml") and "indicators" in path.parts[:-1]:
        return f"indicators/{path.name}"
    if path.name in ("LICENSE", "LICENSE.md", "LICENSE.txt") and len(path.parts) <= 2:
        return "LICENSE"
    return None


def _unpack(kind: PackKind, data: bytes, cap: int) -> tuple[dict[str, bytes], dict[str, str]]:
    """``{path in the pack folder: bytes}`` from a .zip, a .tar.gz or a single file,
    every member's unpacked size counted against ``cap``; plus what the archive says
    about itself (a GitHub archive's commit)."""
    files: dict[str, bytes] = {}
    info: dict[str, str] = {}
    total = 0

    def count(size: int, name: str) -> None:
        nonlocal total
        total += size
        if total > cap:
            raise PackRefused(
                f"over the size cap: the archive unpacks to more than "
                f"signatures.pack_max_unpacked {cap} bytes (at {name[:200]!r})"
            )

    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if archive.comment and re.fullmatch(rb"[0-9a-f]{40}", archive.comment):
                    info["commit"] = archive.comment.decode()
                for member in archive.infolist():
                    path = _member_name(member.filename)
                    if member.is_dir():
                        continue
                    count(member.file_size, member.filename)
                    target = _wanted(kind, path)
                    if target is None:
                        continue
                    with archive.open(member) as handle:
                        body = handle.read(cap - total + member.file_size + 1)
                    if len(body) > member.file_size:  # a header that lies about the size
                        count(len(body) - member.file_size, member.filename)
                    files[target] = body
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise PackRefused(f"not a readable zip archive: {exc}") from None
    elif data[:2] == b"\x1f\x8b":
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
                for member in archive:
                    path = _member_name(member.name)
                    if not member.isfile():
                        continue
                    count(member.size, member.name)
                    target = _wanted(kind, path)
                    handle = archive.extractfile(member) if target else None
                    if target and handle is not None:
                        files[target] = handle.read(member.size)
                commit = archive.pax_headers.get("comment", "")
                if re.fullmatch(r"[0-9a-f]{40}", commit):
                    info["commit"] = commit
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise PackRefused(f"not a readable .tar.gz archive: {exc}") from None
    else:
        count(len(data), "the response")
        files["rules.json" if kind.name == "fiddleitm" else "indicators/pack.yml"] = data
    wanted = "rules.json" if kind.name == "fiddleitm" else "indicators/"
    if not any(name.startswith(wanted) for name in files):
        raise PackRefused(f"no {kind.rules_path} in what was fetched")
    return files, info


def _rule_digests(rules: list[community.CommunityRule]) -> dict[str, str]:
    digests: dict[str, str] = {}
    for rule in rules:  # a name given twice: both definitions make its digest
        digests[rule.rule] = digests.get(rule.rule, "") + rule.digest
    return digests


def _diff(name: str, version: str, old: dict[str, str], new: dict[str, str]) -> Change:
    return Change(
        name,
        version,
        len(new),
        added=sorted(set(new) - set(old)),
        removed=sorted(set(old) - set(new)),
        modified=sorted(r for r in set(old) & set(new) if old[r] != new[r]),
    )


def _current_digests(pack: Pack) -> dict[str, str]:
    try:
        return _rule_digests(community.load([pack.rules_path], problems=[]))
    except TocsinError:
        return {}


def update(config: Config, name: str, now: datetime, location: str | None = None) -> Change:
    """Fetch pack ``name``, read every rule, install it; raise :class:`PackRefused`
    (the pack in use stays) or :class:`FetchError`."""
    kind = PACKS[name]
    location = location or url_of(config, name)
    data = _download(config, name, location)
    digest = hashlib.sha256(data).hexdigest()
    current = active(config, name)
    if current.origin != BUNDLED and _meta(current.folder).get("sha256") == digest:
        rules = len(_current_digests(current))
        return Change(name, current.version, rules, installed=False)  # the same bytes
    files, info = _unpack(kind, data, config.signatures.pack_max_unpacked)
    root = packs_root(config) / name
    root.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".new-", dir=root))
    try:
        for relative, body in files.items():
            target = temp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        if not (temp / "LICENSE").exists():
            shutil.copyfile(BUNDLED_DIR / name / "LICENSE", temp / "LICENSE")
        problems: list[community.RuleError] = []
        try:
            rules = community.load([temp / kind.rules_path], problems)
        except TocsinError as exc:  # the file as a whole does not parse
            raise PackRefused(f"{name}: {exc}") from None
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PackRefused(f"{name}: {problems[0]}{more}")
        if not rules:
            raise PackRefused(f"{name}: the pack holds no rules")
        version = f"{now:%Y%m%dT%H%M%SZ}-{digest[:8]}"
        meta = {"source": location, "fetched_at": now.isoformat(), "sha256": digest, **info}
        meta["rules"] = len(rules)
        (temp / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        change = _diff(name, version, _current_digests(current), _rule_digests(rules))
        state = _state(root)
        if (root / version).exists():  # the same bytes fetched again within a second
            shutil.rmtree(temp)
        else:
            os.rename(temp, root / version)
        _write_state(root, {"current": version, "previous": state.get("current", BUNDLED)})
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _prune(root, keep={version, state.get("current", BUNDLED)})
    return change


def _prune(root: Path, keep: set[str]) -> None:
    """Only the current and the previous version stay (and nothing half-written)."""
    for child in root.iterdir():
        if child.is_dir() and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def rollback(config: Config, name: str) -> Change:
    """Go back to the version in use before the last update (or roll forward again)."""
    root = packs_root(config) / name
    state = _state(root)
    if not state.get("previous"):
        raise PackRefused(f"{name}: no earlier version to roll back to (never updated)")
    before = active(config, name)
    back = {"current": state["previous"], "previous": state.get("current", BUNDLED)}
    if back["current"] != BUNDLED and _installed(name, root, back["current"]) is None:
        raise PackRefused(f"{name}: the earlier version {back['current']} is gone")
    _write_state(root, back)
    after = active(config, name)
    return _diff(
        name,
        after.version,
        _current_digests(before),
        _current_digests(after),
    )


def describe(pack: Pack) -> dict[str, Any]:
    return {
        "pack": pack.name,
        "origin": pack.origin,
        "version": pack.version,
        "source": pack.source,
        "folder": str(pack.folder),
        "licence": PACKS[pack.name].licence,
    }
