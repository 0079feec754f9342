"""One X-ARF v4 report per incident, built with the ``xarf`` package and validated.

The family decides the type: phishing pages are ``content/phishing``, payload
and drive-by sites ``content/malware``, every other compromise
``content/remote_compromise`` with its ``compromise_type``.

Reports are built as the package's own models (``PhishingReport`` and
friends) and checked against the package's JSON Schema for that type (which
includes the core and content-base schemas) before a notice is stored. We
compile one validator per type from the package's schema files instead of
calling ``xarf.create_report``: that helper stamps the real time (we need the
run's clock, for ``--now``) and validates with pure-Python jsonschema against
the master schema, about 2 ms a report: 200 s for 100,000 incidents.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import jsonschema
from xarf import MalwareReport, PhishingReport, RemoteCompromiseReport, create_evidence
from xarf._version import SPEC_VERSION
from xarf.schema_validator import schema_validator

from notifier.context import IncidentView
from notifier.safety import one_line
from tocsin.errors import NotifyError

# family -> (type, type-specific fields)
_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "phishing": ("phishing", {}),
    "malware-download": ("malware", {"distribution_method": "direct_download"}),
    "drive-by-download": ("malware", {"distribution_method": "drive_by_download"}),
    "fake-update": ("malware", {"distribution_method": "social_engineering"}),
    "cryptominer": (
        "remote_compromise",
        {"compromise_type": "cryptominer", "malicious_activities": ["cryptocurrency_mining"]},
    ),
    "malicious-redirect": ("remote_compromise", {"compromise_type": "malicious_redirect"}),
    "hidden-iframe": (
        "remote_compromise",
        {"compromise_type": "malicious_redirect", "malicious_activities": ["hosting_malware"]},
    ),
    "seo-cloaking": ("remote_compromise", {"compromise_type": "seo_spam"}),
    "card-skimmer": (
        "remote_compromise",
        {"compromise_type": "other", "malicious_activities": ["data_exfiltration"]},
    ),
    "webshell": (
        "remote_compromise",
        {"compromise_type": "webshell", "malicious_activities": ["hosting_malware"]},
    ),
    "injected-script": (
        "remote_compromise",
        {"compromise_type": "other", "malicious_activities": ["hosting_malware"]},
    ),
    "known-bad-host": (
        "remote_compromise",
        {"compromise_type": "other", "malicious_activities": ["hosting_malware"]},
    ),
}
_MODELS = {
    "phishing": PhishingReport,
    "malware": MalwareReport,
    "remote_compromise": RemoteCompromiseReport,
}
_DOMAIN = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}$")  # the schema's own pattern
_TAG = re.compile(r"^[a-z0-9][a-z0-9_+-]*$")
_SHA256 = re.compile(r"^[a-fA-F0-9]{64}$")
_COUNTRY = re.compile(r"[A-Z]{2}")
_FULL_TAG = re.compile(r"[a-z0-9][a-z0-9_+-]*:[a-z0-9_+-]+")


def xarf_type(family: str) -> str:
    """The X-ARF ``content/<type>`` a family is reported as."""
    return _TYPES.get(family, ("remote_compromise", {}))[0]


@cache
def _registry_schemas() -> list[dict[str, Any]]:
    """The package's own schema files (core, master and every type), by their $id."""
    schema_validator._ensure_schemas_loaded()
    return [s for s in schema_validator._load_all_schemas() if s.get("$id")]


@cache
def _validator(type_: str) -> Any:
    """A validator for ``content/<type_>`` over the package's schema files.

    jsonschema-rs when installed (about a hundred times faster, which is what
    makes 100,000 reports a minute possible), else the package's own
    ``jsonschema``. Formats (email, uri, date-time, uuid) are checked either way.
    """
    ref = {"$ref": f"https://xarf.org/schemas/v4/types/content-{type_}.json"}
    try:
        import jsonschema_rs
    except ImportError:
        registry = schema_validator._build_registry(
            schema_validator._load_all_schemas(), strict=False
        )
        return jsonschema.Draft202012Validator(
            ref, registry=registry, format_checker=jsonschema.FormatChecker()
        )
    resources = jsonschema_rs.Registry([(s["$id"], s) for s in _registry_schemas()])
    # Passing ``formats`` (even one nobody uses) selects the fast format-checking path.
    return jsonschema_rs.validator_for(
        ref, registry=resources, validate_formats=True, formats={"x-tocsin-unused": bool}
    )


def validate(report: dict[str, Any]) -> list[str]:
    """Schema errors of a content report (empty when valid)."""
    if report.get("category") != "content" or report.get("type") not in _MODELS:
        return [f"unsupported X-ARF type {report.get('category')}/{report.get('type')}"]
    validator = _validator(report["type"])
    if validator.is_valid(report):
        return []
    errors = []
    for error in validator.iter_errors(report):
        path = getattr(error, "absolute_path", None) or getattr(error, "instance_path", [])
        errors.append(f"{'.'.join(str(p) for p in path) or '(root)'}: {error.message}")
    return errors or ["invalid"]


def _uri(url: str) -> str:
    """A URL safe to put in a JSON ``uri`` field: no spaces or controls, at most 2 kB."""
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~")[:2048]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def build(
    incident: IncidentView, *, org: str, contact: str, now: datetime, max_lines: int = 10
) -> dict[str, Any]:
    """The validated X-ARF report of one incident, as a JSON-ready dict.

    Raises :class:`NotifyError` when the result does not validate: a notice
    never goes out with a report the recipient's tooling would reject.
    """
    return _build(incident, org=org, contact=contact, now=now, max_lines=max_lines)[0]


def build_bytes(
    incident: IncidentView, *, org: str, contact: str, now: datetime, max_lines: int = 10
) -> bytes:
    """:func:`build`, serialised as the attachment carries it (same bytes as ``to_bytes``).

    The model writes its own JSON (in Rust), which is parsed back once for the
    schema check: cheaper than dumping to Python and encoding with ``json``.
    """
    return _build(incident, org=org, contact=contact, now=now, max_lines=max_lines)[1]


def _build(
    incident: IncidentView, *, org: str, contact: str, now: datetime, max_lines: int
) -> tuple[dict[str, Any], bytes]:
    type_, specific = _TYPES.get(incident.family, ("remote_compromise", {}))
    specific = dict(specific)
    if type_ == "remote_compromise":
        specific.setdefault("compromise_type", "other")
    domain_part = contact.rpartition("@")[2] or "localhost"
    party = {"org": one_line(org, 200) or "tocsin", "contact": contact, "domain": domain_part}
    url = incident.final_url if not incident.urls else incident.urls[0]
    fields: dict[str, Any] = {
        "xarf_version": SPEC_VERSION,
        "report_id": str(uuid.uuid4()),
        "timestamp": _iso(incident.last_confirmed),
        "reporter": party,
        "sender": party,
        "source_identifier": incident.ip or incident.host,
        "category": "content",
        "type": type_,
        "url": _uri(url or f"http://{incident.host}/"),
        "evidence_source": "crawler",
        "verified_at": _iso(incident.last_confirmed),
        "verification_method": "automated_crawler",
        "description": one_line(
            f"{incident.family} on {incident.host} (ticket {incident.ticket})", 1000
        ),
        **specific,
    }
    host = incident.host.lower()
    if _DOMAIN.match(host):
        fields["domain"] = host
    if incident.asn:
        fields["asn"] = int(incident.asn)
    if incident.country and _COUNTRY.fullmatch(incident.country.upper()):
        fields["country_code"] = incident.country.upper()
    if incident.as_name:
        fields["hosting_provider"] = one_line(incident.as_name, 200)
    if incident.registrar:
        fields["registrar"] = one_line(incident.registrar, 200)
    tags = [f"family:{incident.family}"] if _TAG.match(incident.family) else []
    tags.append(f"ticket:{incident.ticket.lower()}")
    fields["tags"] = [t for t in tags if _FULL_TAG.fullmatch(t)]
    if type_ == "malware" and incident.payload_sha256 and _SHA256.match(incident.payload_sha256):
        fields["file_hashes"] = {"sha256": incident.payload_sha256.lower()}
    lines = [one_line(line, 500) for line in incident.evidence_lines[:max_lines]]
    if lines:
        evidence = create_evidence(
            "text/plain", "\n".join(lines), description="What tocsin's browser observed"
        )
        fields["evidence"] = [evidence.model_dump(by_alias=True, exclude_none=True)]

    report = _MODELS[type_].model_validate(fields)
    raw = report.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")
    data = json.loads(raw)
    errors = validate(data)
    if errors:
        raise NotifyError(f"X-ARF report for {incident.ticket} does not validate: {errors[0]}")
    return data, raw


def to_bytes(report: dict[str, Any]) -> bytes:
    return json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
