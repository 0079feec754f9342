"""Campaigns as one STIX 2.1 bundle, built with the ``stix2`` library.

Per campaign: a campaign object; a malware object per family; an infrastructure
object per attacker host (consisting of its domain-name or IP object); an indicator
per compromised URL, attacker host, script URL and payload hash; observed-data for
each compromised URL and payload; and the relationships between them. Every object is marked
with a TLP 2.0 marking definition (the OASIS ones, carried in the bundle).

Ids are uuid5 over tocsin's namespace and what the object stands for, and
``created``/``modified`` come from the store, so an export made twice says the same
thing under the same ids (the validator notes that SDO ids are not UUIDv4: a warning).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import stix2

from handoff.campaign import CampaignFacts, strictest
from handoff.misp import TOCSIN_NAMESPACE

# The TLP 2.0 marking definitions published by OASIS (cti-stix-common-objects, tlp-2.0).
TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_CREATED = "2022-10-01T00:00:00.000Z"
TLP_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

# STIX malware-type-ov for tocsin's families; anything else is "unknown".
MALWARE_TYPES = {
    "card-skimmer": ["spyware"],
    "fake-update": ["trojan"],
    "cryptominer": ["resource-exploitation"],
    "webshell": ["webshell"],
    "malware-download": ["dropper"],
    "drive-by-download": ["dropper"],
}
IDENTITY_CREATED = datetime(2026, 1, 1, tzinfo=UTC)
# Characters an RFC 3986 URI may hold (with % for the encodings already there).
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def tlp_marking(label: str) -> stix2.MarkingDefinition:
    """The OASIS TLP 2.0 marking definition for ``label``."""
    return stix2.MarkingDefinition(
        id=TLP_IDS[label],
        created=TLP_CREATED,
        name="TLP:" + label.upper(),
        extensions={TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": label}},
    )


def pattern_literal(value: str) -> str:
    """A STIX pattern string literal: quotes and backslashes escaped, nothing else changed."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def uri(url: str) -> str:
    """``url`` as an RFC 3986 URI (what a url object's value must be): characters a URI
    may not hold, such as ``"``, ``<`` or a space, percent-encoded. The indicator's
    pattern keeps the URL exactly as recorded."""
    return quote(url, safe=_URI_SAFE)


def _sid(kind: str, key: str) -> str:
    return f"{kind}--{uuid.uuid5(TOCSIN_NAMESPACE, f'{kind}:{key}')}"


def _address(value: str, **marking: Any) -> Any:
    kind = stix2.IPv6Address if ":" in value else stix2.IPv4Address
    return kind(value=value, **marking)


def _address_type(value: str) -> str:
    return "ipv6-addr" if ":" in value else "ipv4-addr"


def stix_bundle(campaigns: Iterable[CampaignFacts]) -> stix2.Bundle:
    """One bundle for these campaigns (see the module's docstring for what is in it)."""
    campaigns = list(campaigns)
    identity = stix2.Identity(
        id=_sid("identity", "tocsin"),
        name="tocsin",
        identity_class="system",
        description="tocsin: finds compromised websites and gets them cleaned up",
        created=IDENTITY_CREATED,
        modified=IDENTITY_CREATED,
    )
    objects: dict[str, Any] = {identity.id: identity}
    labels: set[str] = set()

    def put(obj: Any) -> Any:
        objects.setdefault(obj.id, obj)
        return objects[obj.id]

    def marks(label: str) -> dict[str, Any]:
        labels.add(label)
        return {"object_marking_refs": [TLP_IDS[label]], "created_by_ref": identity.id}

    def relate(source: Any, kind: str, target: Any, label: str, when: datetime) -> None:
        put(
            stix2.Relationship(
                id=_sid("relationship", f"{source.id}|{kind}|{target.id}"),
                source_ref=source.id,
                relationship_type=kind,
                target_ref=target.id,
                created=when,
                modified=when,
                **marks(label),
            )
        )

    # A family shared by campaigns is one malware object, marked as strictly as the
    # strictest campaign that names it.
    family_label: dict[str, str] = {}
    family_seen: dict[str, datetime] = {}
    for facts in campaigns:
        for family in facts.families:
            family_label[family] = strictest([facts.tlp, family_label.get(family, "clear")])
            family_seen[family] = min(facts.first_seen, family_seen.get(family, facts.first_seen))
    malware = {
        family: put(
            stix2.Malware(
                id=_sid("malware", family),
                name=family,
                is_family=True,
                malware_types=MALWARE_TYPES.get(family, ["unknown"]),
                description=f"the {family} family as tocsin recognises it on compromised sites",
                created=family_seen[family],
                modified=family_seen[family],
                **marks(family_label[family]),
            )
        )
        for family in family_label
    }

    for facts in campaigns:
        label, when, last = facts.tlp, facts.first_seen, facts.last_seen
        campaign = put(
            stix2.Campaign(
                id=_sid("campaign", facts.name),
                name=facts.name,
                description=f"compromised websites tocsin grouped as {facts.name}",
                first_seen=facts.first_seen,
                last_seen=facts.last_seen,
                created=when,
                modified=last,
                **marks(label),
            )
        )
        families = [malware[f] for f in facts.families]
        for family in families:
            relate(campaign, "uses", family, label, when)

        for host in [*facts.domains, *facts.ips]:
            is_ip = host in facts.ips
            marking = _sco(label, labels)
            sco = put(
                _address(host, **marking) if is_ip else stix2.DomainName(value=host, **marking)
            )
            infra = put(
                stix2.Infrastructure(
                    id=_sid("infrastructure", host),
                    name=host,
                    infrastructure_types=["unknown"],
                    description="attacker infrastructure: injected code loads from or sends to it",
                    created=when,
                    modified=last,
                    **marks(label),
                )
            )
            relate(infra, "consists-of", sco, label, when)
            relate(campaign, "uses", infra, label, when)
            for family in families:
                relate(family, "uses", infra, label, when)
            kind = _address_type(host) if is_ip else "domain-name"
            indicator = _indicator(
                f"[{kind}:value = {pattern_literal(host)}]",
                f"attacker host {host}",
                ["malicious-activity"],
                when,
                last,
                marks(label),
            )
            relate(put(indicator), "indicates", infra, label, when)

        for url in facts.scripts:
            indicator = _indicator(
                f"[url:value = {pattern_literal(url)}]",
                "injected script or exfiltration URL",
                ["malicious-activity"],
                when,
                last,
                marks(label),
            )
            put(indicator)
            for family in families:
                relate(indicator, "indicates", family, label, when)

        for payload in facts.payloads:
            hashes = {"SHA-256": payload.sha256} | ({"MD5": payload.md5} if payload.md5 else {})
            indicator = _indicator(
                f"[file:hashes.'SHA-256' = {pattern_literal(payload.sha256)}]",
                f"a payload the campaign served{' at ' + payload.url if payload.url else ''}",
                ["malicious-activity"],
                when,
                last,
                marks(label),
            )
            put(indicator)
            file_obj = put(
                stix2.File(
                    hashes=hashes,
                    **({"name": payload.filename} if payload.filename else {}),
                    **({"size": payload.size} if payload.size is not None else {}),
                    **_sco(label, labels),
                )
            )
            seen = put(
                stix2.ObservedData(
                    id=_sid("observed-data", f"{facts.name}|{payload.sha256}"),
                    first_observed=when,
                    last_observed=last,
                    number_observed=1,
                    object_refs=[file_obj.id],
                    created=when,
                    modified=last,
                    **marks(label),
                )
            )
            relate(indicator, "based-on", seen, label, when)
            for family in families:
                relate(indicator, "indicates", family, label, when)

        for item in facts.urls:
            url_obj = put(stix2.URL(value=uri(item.url), **_sco(item.tlp, labels)))
            title = f'; page title "{item.title}"' if item.title else ""
            observed = put(
                stix2.ObservedData(
                    id=_sid("observed-data", item.url),
                    first_observed=item.first_seen,
                    last_observed=item.last_seen,
                    number_observed=1,
                    object_refs=[url_obj.id],
                    created=item.first_seen,
                    modified=item.last_seen,
                    **marks(item.tlp),
                )
            )
            indicator = put(
                _indicator(
                    f"[url:value = {pattern_literal(item.url)}]",
                    f"compromised website, incident {item.incident} ({item.state}){title}",
                    ["compromised"],
                    item.first_seen,
                    item.last_seen,
                    marks(item.tlp),
                    name=f"compromised website {item.host}",
                )
            )
            relate(indicator, "based-on", observed, item.tlp, item.first_seen)
            relate(indicator, "indicates", campaign, item.tlp, item.first_seen)
            for family in families:
                relate(indicator, "indicates", family, item.tlp, item.first_seen)

    markings = [tlp_marking(label) for label in TLP_IDS if label in labels]
    names = "|".join(sorted(f.name for f in campaigns))
    return stix2.Bundle(
        *markings,
        *objects.values(),
        id=f"bundle--{uuid.uuid5(TOCSIN_NAMESPACE, 'bundle:' + names)}",
    )


def _sco(label: str, labels: set[str]) -> dict[str, Any]:
    labels.add(label)
    return {"object_marking_refs": [TLP_IDS[label]]}


def _indicator(
    pattern: str,
    description: str,
    types: list[str],
    first: datetime,
    last: datetime,
    marking: dict[str, Any],
    name: str | None = None,
) -> stix2.Indicator:
    return stix2.Indicator(
        id=_sid("indicator", pattern),
        name=name or description.split(";")[0],
        description=description,
        pattern=pattern,
        pattern_type="stix",
        indicator_types=types,
        valid_from=first,
        created=first,
        modified=max(first, last),
        **marking,
    )
