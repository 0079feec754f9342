"""`tocsin rules list|test|update|rollback`: the detection rules tocsin runs.

``list`` shows every rule (bundled YARA-X, ``signatures.rules_dir``, the community
packs and ``signatures.community_rules``) with its source, version and how many
checks it matched in the last 30 days, so an analyst sees which rules earn their
keep. ``test`` runs them all over one saved page or one URL (crawled as ``tocsin
crawl`` does, nothing stored) and says why each matched. ``update`` fetches the
community packs from upstream; ``rollback`` goes back to the version before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from crawler.signatures import rulepacks
from tocsin import __version__
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import FetchError, UsageError
from tocsin.safe_text import json_text
from tocsin.ui import err, out, table

WINDOW = timedelta(days=30)


@click.group(name="rules")
def command() -> None:
    """The detection rules: list them, test them on a page, update the community packs."""


def _pack_names(names: tuple[str, ...], app: App) -> list[str]:
    unknown = [n for n in names if n not in rulepacks.PACKS]
    if unknown:
        raise UsageError(
            f"rules: unknown pack {unknown[0]!r} (known: {', '.join(rulepacks.PACKS)})"
        )
    return list(names) or list(app.config.signatures.community_packs) or list(rulepacks.PACKS)


def _print_change(verb: str, change: rulepacks.Change) -> None:
    out.print(
        f"{change.name}: {verb} {change.version}: {change.rules} rules, "
        f"{len(change.added)} added, {len(change.removed)} removed, "
        f"{len(change.modified)} modified",
        markup=False,
    )
    for sign, names in (("+", change.added), ("-", change.removed), ("~", change.modified)):
        for name in names:
            out.print(f"  {sign} {name}", markup=False)


@command.command(name="update")
@click.argument("packs", nargs=-1, metavar="[PACK]...")
@pass_app
def update(app: App, packs: tuple[str, ...]) -> int:
    """Fetch the current community packs (signatures.<pack>_url) and install them.

    Every rule is read first; a pack with a rule that does not parse is refused and
    the one in use stays. The version replaced is kept for `tocsin rules rollback`.
    """
    failed = 0
    for name in _pack_names(packs, app):
        try:
            change = rulepacks.update(app.config, name, app.clock.now())
        except (rulepacks.PackRefused, FetchError) as exc:
            failed += 1
            err.print(f"{name}: refused, the pack in use stays: {exc}", markup=False)
            continue
        _print_change("updated to" if change.installed else "already at", change)
    return 1 if failed else 0


@command.command(name="rollback")
@click.argument("packs", nargs=-1, metavar="[PACK]...")
@pass_app
def rollback(app: App, packs: tuple[str, ...]) -> int:
    """Go back to the version each pack had before its last update."""
    failed = 0
    for name in _pack_names(packs, app):
        try:
            change = rulepacks.rollback(app.config, name)
        except rulepacks.PackRefused as exc:
            failed += 1
            err.print(str(exc), markup=False)
            continue
        _print_change("rolled back to", change)
    return 1 if failed else 0


# --------------------------------------------------------------------------- list


def rule_inventory(app: App) -> list[dict[str, Any]]:
    """Every rule tocsin runs, with where it comes from and its version or date."""
    from crawler.signatures import community
    from crawler.signatures.yara import BUNDLED, YaraRules

    sig = app.config.signatures
    rows: list[dict[str, Any]] = []
    for name, path, meta in YaraRules.load(sig.rules_dir).describe():
        bundled_rule = Path(path).parent == BUNDLED
        if bundled_rule:
            source, version = f"bundled YARA-X ({Path(path).name})", f"tocsin {__version__}"
        else:
            source, version = f"signatures.rules_dir ({path})", _file_date(path)
        rows.append(
            {
                "rule": name,
                "kind": "yara",
                "source": source,
                "version": meta.get("version") or meta.get("date") or version,
                "family": meta.get("family"),
            }
        )
    for pack in rulepacks.active_packs(app.config):
        for rule in community.load([pack.rules_path]):
            rows.append(
                {
                    "rule": rule.rule,
                    "kind": pack.name,
                    "source": f"{pack.origin} {pack.name} pack",
                    "version": pack.version,
                    "family": rule.family,
                }
            )
    for rule in community.load(sig.community_rules):
        rows.append(
            {
                "rule": rule.rule,
                "kind": rule.rule.split(":", 1)[0],
                "source": f"signatures.community_rules ({rule.source})",
                "version": _file_date(rule.source),
                "family": rule.family,
            }
        )
    return rows


def _file_date(path: str) -> str:
    try:
        return datetime.fromtimestamp(Path(path).stat().st_mtime, UTC).strftime("%Y-%m-%d")
    except OSError:
        return ""


@command.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per rule.")
@pass_app
def list_(app: App, as_json: bool) -> int:
    """Every rule tocsin runs, its source and version, and the checks it matched (30 days)."""
    from store.queries import rule_matches

    rows = rule_inventory(app)
    with app.db.session() as session:
        counts = rule_matches(session, app.clock.now() - WINDOW)
    for row in rows:
        row["matched_30d"] = counts.get(row["rule"], 0)
    if as_json:
        click.echo(json_text(rows, indent=1))
        return 0
    out.print(
        table(
            f"{len(rows)} rules",
            ["rule", "source", "version", "family", "checks matched (30 days)"],
            [
                (r["rule"], r["source"], r["version"], r["family"] or "-", r["matched_30d"])
                for r in rows
            ],
        )
    )
    return 0


# --------------------------------------------------------------------------- test


def _item_from_file(app: App, path: Path) -> Any:
    from crawler.items import CheckItem
    from crawler.triage import sniff

    limit = app.config.crawl.max_body
    try:
        with path.open("rb") as handle:
            body = handle.read(limit)
    except OSError as exc:
        raise UsageError(f"rules test: cannot read {path}: {exc.strerror or exc}") from None
    url = path.resolve().as_uri()
    item = CheckItem(url_id=0, url=url, kind="test", started_at=app.clock.now())
    item.final_url = url
    sniffed = sniff(body, None, url, path.name)
    if sniffed.kind == "html" or (sniffed.kind == "text" and b"<" in body[:8192]):
        item.route = "browser-skipped"
        item.served_html = body.decode("utf-8", "replace")
        item.browser = {"dom": item.served_html, "final_url": url}
    else:
        item.route = "payload"
        item.payload = body
        item.payload_type = sniffed.kind
        item.payload_name = path.name
    return item


def _explain(engine: Any, item: Any) -> list[dict[str, Any]]:
    """Each rule that matched ``item``: its verdict weight and why."""
    from crawler.signatures import community

    findings = engine.findings(item, [])
    why: dict[str, list[str]] = {f.rule: list(f.evidence) for f in findings}
    page = engine.page_text(item)
    page.deadline = None  # one page, on purpose: give each regex its full time
    for rule in engine.community:
        if rule.rule not in why:
            continue
        try:
            hits = rule.explain(page) or []
        except TimeoutError as exc:
            hits = [community.Hit("-", f"gave up: {exc}")]
        why[rule.rule] += [f"{hit.field}: {hit.excerpt}" for hit in hits]
    for name, line in _yara_bytes(engine, item):
        why.setdefault(name, []).append(line)
    return [
        {
            "rule": f.rule,
            "family": f.family,
            "severity": f.severity,
            "why": why.get(f.rule, []),
        }
        for f in findings
    ]


def _yara_bytes(engine: Any, item: Any) -> list[tuple[str, str]]:
    """The bytes each YARA rule matched, in the payload or the page."""
    lines = []
    targets = [("payload", item.payload)] if item.payload is not None else []
    if item.served_html:
        targets.append(("page", item.served_html.encode()))
    for scope, data in targets:
        for hit in engine.yara.scan(data, scope):
            if hit.offset is not None:
                chunk = data[hit.offset : hit.offset + min(hit.length or 0, 120)]
                shown = chunk.decode("utf-8", "backslashreplace")
                lines.append((hit.rule, f"matched bytes at {hit.offset}: {shown}"))
    return lines


@command.command(name="test")
@click.argument("target", metavar="PATH_OR_URL")
@click.option("--json", "as_json", is_flag=True, help="A JSON object.")
@pass_app
def test(app: App, target: str, as_json: bool) -> int:
    """Run every rule over one saved page (a file) or one URL, and say why each matched.

    A URL is crawled as `tocsin crawl` does (the SSRF guard, triage, Chromium), but
    nothing is stored.
    """
    from crawler.signatures.engine import Engine

    engine = Engine(app.config)
    if target.lower().startswith(("http://", "https://")):
        from crawler.runner import visit

        items = visit(app, [target])
        if not items:
            raise UsageError(f"rules test: {target[:200]} was not checked (interrupted?)")
        item = items[0]
    else:
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"rules test: no such file: {target[:200]}")
        item = _item_from_file(app, path)
    verdict = engine.evaluate(item)
    matches = _explain(engine, item)
    if as_json:
        record = {
            "target": target,
            "route": item.route,
            "verdict": verdict.value,
            "family": verdict.family,
            "error": item.error,
            "matches": matches,
        }
        click.echo(json_text(record, indent=1))
        return 0
    out.print(
        f"{target[:300]}: {verdict.value}"
        + (f" ({verdict.family})" if verdict.family else "")
        + f", route {item.route}"
        + (f", {item.error}" if item.error else ""),
        markup=False,
    )
    if not matches:
        out.print("no rule matched", markup=False)
    for match in matches:
        out.print(f"{match['rule']}  [{match['severity']}, {match['family'] or '-'}]", markup=False)
        for line in match["why"][:8]:
            out.print(f"    {line[:400]}", markup=False)
    return 0
