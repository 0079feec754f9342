"""One MISP event per campaign, built with PyMISP's ``MISPEvent``.

Every uuid is derived (uuid5) from the campaign's name, and each attribute's and
object's from the event's and its value, so exporting or pushing the campaign again
updates the same event and the same attributes instead of adding copies.
No timestamps are set: MISP stamps what it stores, and refuses an edit whose
timestamp is not newer than its own copy.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pymisp import MISPEvent, MISPObject
from pymisp.abstract import pymisp_json_default

from handoff.campaign import CampaignFacts

# tocsin's own namespace for uuid5 ids; ``misp.uuid_namespace`` replaces it.
TOCSIN_NAMESPACE = uuid.UUID("8a0b5f4e-6c1d-4f2a-9e3b-7d5c1a2e4b60")

# MISP threat levels and analysis states (MISP's own numbers).
THREAT_MEDIUM = 2
ANALYSIS_ONGOING, ANALYSIS_COMPLETED = 1, 2


def namespace(configured: str = "") -> uuid.UUID:
    """``misp.uuid_namespace`` when set, else tocsin's."""
    return uuid.UUID(configured) if configured else TOCSIN_NAMESPACE


def event_uuid(campaign: str, ns: uuid.UUID = TOCSIN_NAMESPACE) -> str:
    """The event's uuid: the same campaign always maps to the same event."""
    return str(uuid.uuid5(ns, "campaign:" + campaign))


def tlp_tag(label: str) -> str:
    """MISP's TLP 2.0 taxonomy tag: ``tlp:amber+strict``."""
    return "tlp:" + label


def family_tag(family: str) -> str:
    """A machine tag naming the family tocsin recognised."""
    return f'tocsin:family="{family}"'


def misp_event(
    facts: CampaignFacts, *, ns: uuid.UUID = TOCSIN_NAMESPACE, distribution: int = 0
) -> MISPEvent:
    """The campaign as a MISP event: URLs, attacker hosts, payload files, family and TLP tags."""
    event = MISPEvent()
    event.uuid = event_uuid(facts.name, ns)
    event.info = f"tocsin campaign {facts.name}: compromised websites"
    event.distribution = distribution
    event.threat_level_id = THREAT_MEDIUM
    active = any(u.active for u in facts.urls)
    event.analysis = ANALYSIS_ONGOING if active else ANALYSIS_COMPLETED
    event.set_date(facts.first_seen.date())
    event.add_tag(tlp_tag(facts.tlp))
    for family in facts.families:
        event.add_tag(family_tag(family))
    base = uuid.UUID(event.uuid)

    def add(kind: str, value: str, category: str, comment: str, **extra: Any) -> Any:
        return event.add_attribute(
            kind,
            value,
            category=category,
            comment=comment,
            uuid=str(uuid.uuid5(base, f"{kind}|{value}")),
            **extra,
        )

    for item in facts.urls:
        title = f'; page title "{item.title}"' if item.title else ""
        attribute = add(
            "url",
            item.url,
            "Payload delivery",
            f"compromised website, incident {item.incident} ({item.state}){title}",
            to_ids=item.active,
            first_seen=item.first_seen,
            last_seen=item.last_seen,
        )
        attribute.add_tag(tlp_tag(item.tlp))
    infrastructure = "attacker infrastructure: injected code loads from or sends to it"
    for value in facts.domains:
        add("domain", value, "Network activity", infrastructure, to_ids=True)
    for value in facts.ips:
        add("ip-dst", value, "Network activity", infrastructure, to_ids=True)
    for value in facts.scripts:
        add("url", value, "Network activity", "injected script or exfiltration URL", to_ids=True)
    for payload in facts.payloads:
        obj = MISPObject("file", standalone=False)
        obj.uuid = str(uuid.uuid5(base, "file|" + payload.sha256))
        obj.comment = f"served at {payload.url}" if payload.url else "a payload the campaign served"
        fields = {
            "sha256": payload.sha256,
            "md5": payload.md5,
            "filename": payload.filename,
            "size-in-bytes": payload.size,
        }
        for relation, value in fields.items():
            if value is not None:
                obj.add_attribute(
                    relation, value=value, uuid=str(uuid.uuid5(uuid.UUID(obj.uuid), relation))
                )
        event.add_object(obj)
    return event


def event_document(event: MISPEvent) -> dict[str, Any]:
    """The event in MISP's own file format, ``{"Event": {...}}``, as plain JSON values."""
    return {"Event": json.loads(json.dumps(event, default=pymisp_json_default))}


def events_document(events: list[MISPEvent]) -> dict[str, Any]:
    """Several events the way MISP's REST search returns them: ``{"response": [...]}``."""
    return {"response": [event_document(e) for e in events]}
