"""docs/configuration.md documents every key the configuration model accepts."""

from __future__ import annotations

import re
from pathlib import Path

from tocsin.config import Config, FeedConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_key_is_documented() -> None:
    documented: set[str] = set()
    table = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"## `\[\[?(\w+)\]\]?`", line):
            table = heading[1]
        elif table and (row := re.match(r"\| `(\w+)` \| `.*` \| (.+) \|$", line)):
            assert row[2].strip(), f"{table}.{row[1]} has no meaning"
            documented.add(f"{table}.{row[1]}")
    keys = {
        f"{table}.{key}"
        for table, field in Config.model_fields.items()
        # [[feeds]] is a list of tables: document the keys of one entry
        for key in getattr(field.annotation, "model_fields", None) or FeedConfig.model_fields
    }
    assert keys - documented == set(), "undocumented keys"
    assert documented - keys == set(), "documented keys that do not exist"
