"""`tocsin export --format misp`: one MISP event per campaign that PyMISP loads back,
with the counts, tags and uuids the store implies (issue 15, point 3)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jsonschema
import pymisp
from export_support import CAMPAIGN, GREEN, HOSTILE_URL, PAYLOAD, PAYLOAD_SHA, TITLE, md5
from pymisp import MISPEvent

from handoff.misp import TOCSIN_NAMESPACE

SCHEMA = json.loads((Path(pymisp.__file__).parent / "data" / "schema-lax.json").read_text())


def _event(cli, *args: str) -> tuple[MISPEvent, str]:
    result = cli("export", "--format", "misp", *args)
    assert result.returncode == 0, result.stderr
    # The schema PyMISP ships for MISP's event format (its own check is gone from load()).
    jsonschema.validate(json.loads(result.stdout), SCHEMA)
    event = MISPEvent()
    event.load(result.stdout)
    return event, result.stdout


def test_the_campaign_event_loads_back_with_its_attributes(seeded) -> None:
    store, cli = seeded
    event, text = _event(cli, "--campaign", CAMPAIGN)
    assert event.uuid == str(uuid.uuid5(TOCSIN_NAMESPACE, "campaign:" + CAMPAIGN))
    by_type: dict[str, list] = {}
    for attribute in event.attributes:
        by_type.setdefault(attribute.type, []).append(attribute)
    # 3 compromised URLs + 2 script/exfiltration URLs; the site's own host and IP left out.
    assert sorted(a.value for a in by_type["url"]) == sorted(
        [*(store.urls[h] for h in ("shop-a.example", "shop-b.example", "shop-c.example")),
         "https://skim-cdn.example/s.js", "https://exfil.example/c"]
    )  # fmt: skip
    assert sorted(a.value for a in by_type["domain"]) == ["exfil.example", "skim-cdn.example"]
    assert [a.value for a in by_type["ip-dst"]] == ["203.0.113.7"]
    assert len(event.attributes) == 8
    # Still-compromised URLs feed IDSs; the cleaned site's does not.
    ids = {a.value: a.to_ids for a in by_type["url"]}
    assert ids[store.urls["shop-a.example"]] and ids[HOSTILE_URL]
    assert ids[store.urls["shop-c.example"]] is False
    # The payload as a file object, md5 and name from its zip in the evidence store.
    (file_obj,) = event.objects
    assert file_obj.name == "file"
    fields = {a.object_relation: a.value for a in file_obj.attributes}
    assert fields["sha256"] == PAYLOAD_SHA and fields["md5"] == md5(PAYLOAD)
    assert fields["filename"] == "update.exe" and int(fields["size-in-bytes"]) == len(PAYLOAD)
    # The family and the strictest TLP (shop-c is TLP:RED) as event tags; each URL its own.
    assert sorted(t.name for t in event.tags) == ["tlp:red", 'tocsin:family="card-skimmer"']
    url_tags = {a.value: [t.name for t in a.tags] for a in by_type["url"]}
    assert url_tags[store.urls["shop-c.example"]] == ["tlp:red"]
    assert url_tags[store.urls["shop-a.example"]] == ["tlp:amber"]
    # Hostile text survives exactly, JSON-escaped: no raw control or bidi character.
    assert event.info == f"tocsin campaign {CAMPAIGN}: compromised websites"
    comment = next(a.comment for a in by_type["url"] if a.value == store.urls["shop-a.example"])
    assert comment.endswith(f'page title "{TITLE}"')
    assert store.tickets["shop-a.example"] in comment
    assert "\x1b" not in text and "\u202e" not in text and "\\u001b" in text
    # Exported again: the same bytes, so a re-import updates rather than duplicates.
    assert _event(cli, "--campaign", CAMPAIGN)[1] == text


def test_every_campaign_without_a_name(seeded) -> None:
    _, cli = seeded
    result = cli("export", "--format", "misp")
    assert result.returncode == 0, result.stderr
    events = []
    for item in json.loads(result.stdout)["response"]:
        event = MISPEvent()
        event.load(item)
        events.append(event)
    assert sorted(e.info for e in events) == sorted(
        f"tocsin campaign {n}: compromised websites" for n in (CAMPAIGN, GREEN)
    )
    green = next(e for e in events if GREEN in e.info)
    assert sorted(t.name for t in green.tags) == ["tlp:green", 'tocsin:family="injected-script"']
    assert sorted(a.value for a in green.attributes) == [
        "http://blog-g.example/checkout/", "https://loader.example/l.js", "loader.example",
    ]  # fmt: skip


def test_an_unknown_campaign_is_one_line_and_exit_2(seeded) -> None:
    _, cli = seeded
    result = cli("export", "--format", "misp", "--campaign", "no such\x1b[2J")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no campaign named" in result.stderr
    assert "\x1b" not in result.stderr
