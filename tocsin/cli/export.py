"""`tocsin export`: one record per URL (JSON, CSV), a campaign as a MISP event or a
STIX 2.1 bundle, or the campaigns' events pushed to MISP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from store.evidence import EvidenceStore
from store.queries import export_records, write_csv
from tocsin.app import App
from tocsin.cli._common import pass_app
from tocsin.errors import TocsinError
from tocsin.safe_text import json_text
from tocsin.ui import data_stdout, err, out

if TYPE_CHECKING:
    from handoff.campaign import CampaignFacts

# handoff/ is imported where it is used: PyMISP and stix2 take a second to import, and
# the JSON and CSV exports need neither.


@click.command(name="export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "misp", "stix"]),
    default="json",
    show_default=True,
    help="misp: one MISP event per campaign; stix: a STIX 2.1 bundle.",
)
@click.option("--campaign", metavar="NAME", help="Only the URLs of this campaign.")
@click.option(
    "--push",
    type=click.Choice(["misp"]),
    help="Add or update the campaign's event (every campaign's without --campaign) on "
    "the MISP instance of misp.url and misp.key, instead of writing to stdout.",
)
@pass_app
def command(app: App, fmt: str, campaign: str | None, push: str | None) -> int:
    """One record per URL, to stdout; or a campaign for MISP and STIX."""
    if push:
        return _push(app, campaign)
    if fmt in ("misp", "stix"):
        return _threat_intel(app, fmt, campaign)
    stream = data_stdout()
    with app.db.session() as session:
        records = export_records(
            session, campaign=campaign, default_tlp=app.config.board.default_tlp
        )
        if fmt == "csv":
            write_csv(records, stream)
            return 0
        # A JSON array written as it streams, so memory stays bounded.
        separator = "\n"
        stream.write("[")
        for record in records:
            stream.write(separator)
            stream.write(json_text(record))
            separator = ",\n"
        stream.write("\n]\n" if separator == ",\n" else "]\n")
    return 0


def _facts(app: App, campaign: str | None) -> list[CampaignFacts]:
    """The named campaign, or every campaign, read once."""
    from handoff.campaign import campaign_facts, campaign_names

    config = app.config
    evidence = EvidenceStore.from_config(config)
    with app.db.session() as session:
        names = [campaign] if campaign is not None else campaign_names(session)
        return [
            campaign_facts(session, name, default_tlp=config.board.default_tlp, evidence=evidence)
            for name in names
        ]


def _threat_intel(app: App, fmt: str, campaign: str | None) -> int:
    """``--format misp``: ``{"Event": ...}`` for one campaign, ``{"response": [...]}`` for
    all; ``--format stix``: one bundle. Control characters are JSON-escaped."""
    from handoff.misp import event_document, events_document, misp_event, namespace
    from handoff.stix import stix_bundle

    config = app.config
    facts = _facts(app, campaign)
    if fmt == "stix":
        document = json.loads(stix_bundle(facts).serialize())
    else:
        ns = namespace(config.misp.uuid_namespace)
        events = [misp_event(f, ns=ns, distribution=config.misp.distribution) for f in facts]
        document = event_document(events[0]) if campaign is not None else events_document(events)
    stream = data_stdout()
    stream.write(json_text(document, indent=2))
    stream.write("\n")
    return 0


def _push(app: App, campaign: str | None) -> int:
    """Each campaign's event added or updated on MISP; exit 1 when one failed."""
    from handoff.misp import misp_event, namespace
    from handoff.misp_push import MispClient

    config = app.config
    client = MispClient(config.misp)  # refuses early: no URL or key, or MISP unreachable
    ns = namespace(config.misp.uuid_namespace)
    failed = 0
    for facts in _facts(app, campaign):
        event = misp_event(facts, ns=ns, distribution=config.misp.distribution)
        try:
            result = client.push(event)
        except TocsinError as exc:
            failed += 1
            err.print(f"{facts.name}: {exc}", markup=False)
            continue
        where = f" (id {result.event_id})" if result.event_id else ""
        out.print(f"{facts.name}: {result.action} MISP event {result.uuid}{where}", markup=False)
    return 1 if failed else 0
