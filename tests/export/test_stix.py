"""`tocsin export --format stix`: one STIX 2.1 bundle that the OASIS validator passes,
with TLP 2.0 markings and the relationships between what tocsin found (issue 15)."""

from __future__ import annotations

import json
from collections import Counter

from export_support import CAMPAIGN, GREEN, HOSTILE_URL, PAYLOAD_SHA, TITLE
from stix2validator import ValidationOptions, validate_string

from handoff.stix import TLP_IDS


def _bundle(cli, *args: str) -> tuple[dict, str]:
    result = cli("export", "--format", "stix", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stdout


def test_the_bundle_passes_the_validator(seeded) -> None:
    _, cli = seeded
    bundle, text = _bundle(cli)
    results = validate_string(text, ValidationOptions(version="2.1"))
    errors = [str(e) for e in results.errors]
    assert results.is_valid and not errors, errors
    # Warnings: only that the deterministic (uuid5) ids of SDOs are not UUIDv4.
    assert all("{103}" in str(w) for w in results.warnings), results.warnings
    objects = bundle["objects"]
    kinds = Counter(o["type"] for o in objects)
    assert kinds["campaign"] == 2 and kinds["malware"] == 2  # card-skimmer, injected-script
    # skim-cdn, exfil, loader (domains) and 203.0.113.7: one infrastructure object each.
    assert kinds["infrastructure"] == 4 and kinds["domain-name"] == 3 and kinds["ipv4-addr"] == 1
    # The compromised URLs, and the payload.
    assert kinds["observed-data"] == 5 and kinds["url"] == 4 and kinds["file"] == 1
    # 4 compromised URLs, 4 hosts, 3 script URLs, 1 payload hash.
    assert kinds["indicator"] == 12
    # The TLP 2.0 definitions as OASIS publishes them, for the labels in use only.
    markings = {o["id"]: o for o in objects if o["type"] == "marking-definition"}
    assert set(markings) == {TLP_IDS["red"], TLP_IDS["amber"], TLP_IDS["green"]}
    assert markings[TLP_IDS["red"]]["name"] == "TLP:RED"
    by_id = {o["id"]: o for o in objects}
    for obj in objects:
        if obj["type"] not in ("marking-definition", "identity"):
            assert obj["object_marking_refs"][0] in markings, obj["id"]
    relations = Counter(
        (by_id[o["source_ref"]]["type"], o["relationship_type"], by_id[o["target_ref"]]["type"])
        for o in objects
        if o["type"] == "relationship"
    )
    for expected in [
        ("indicator", "indicates", "malware"),
        ("indicator", "indicates", "campaign"),
        ("indicator", "based-on", "observed-data"),
        ("indicator", "indicates", "infrastructure"),
        ("malware", "uses", "infrastructure"),
        ("campaign", "uses", "malware"),
        ("infrastructure", "consists-of", "domain-name"),
    ]:
        assert relations[expected], expected
    # Hostile text survives exactly (JSON-escaped) in names, patterns and descriptions.
    assert {o["name"] for o in objects if o["type"] == "campaign"} == {CAMPAIGN, GREEN}
    patterns = {o["pattern"] for o in objects if o["type"] == "indicator"}
    literal = HOSTILE_URL.replace("\\", "\\\\").replace("'", "\\'")
    assert f"[url:value = '{literal}']" in patterns
    assert f"[file:hashes.'SHA-256' = '{PAYLOAD_SHA}']" in patterns
    described = [o.get("description", "") for o in objects if o["type"] == "indicator"]
    assert any(d.endswith(f'page title "{TITLE}"') for d in described)
    assert "\x1b" not in text and "\u202e" not in text
    # A url object's value is a URI: what a URI may not hold is percent-encoded.
    urls = {o["value"] for o in objects if o["type"] == "url"}
    assert "http://shop-b.example/p%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E?q=it's%5Chere" in urls
    # The cleaned site's indicator carries its incident's label.
    shop_c = next(o for o in objects if o.get("name") == "compromised website shop-c.example")
    assert shop_c["object_marking_refs"] == [TLP_IDS["red"]]
    # Exported again: the same ids and the same bytes.
    assert _bundle(cli)[1] == text


def test_one_campaign(seeded) -> None:
    _, cli = seeded
    bundle, text = _bundle(cli, "--campaign", GREEN)
    assert validate_string(text, ValidationOptions(version="2.1")).is_valid
    assert [o["name"] for o in bundle["objects"] if o["type"] == "campaign"] == [GREEN]
    markings = [o["name"] for o in bundle["objects"] if o["type"] == "marking-definition"]
    assert markings == ["TLP:GREEN"]
