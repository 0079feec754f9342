"""National CSIRTs: ``escalation.cert_contacts``, a CSV of ``country,email,language``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from enrich.language import normalise_tag
from enrich.rdap import clean_email
from tocsin.errors import ConfigError


@dataclass(frozen=True)
class Csirt:
    country: str
    email: str
    language: str | None


def load_cert_contacts(path: str) -> dict[str, Csirt]:
    """Country (upper case) -> its CSIRT. A header line is allowed; bad lines are errors."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("escalation.cert_contacts", f"cannot read {path}: {exc}") from None
    table: dict[str, Csirt] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() == "country":
            continue
        if len(row) < 2:
            raise ConfigError(
                "escalation.cert_contacts", f"{path}:{number}: expected country,email,language"
            )
        country = row[0].strip().upper()
        email = clean_email(row[1])
        if len(country) != 2 or not country.isalpha() or not email:
            raise ConfigError("escalation.cert_contacts", f"{path}:{number}: bad country or email")
        language = normalise_tag(row[2]) if len(row) > 2 else None
        table.setdefault(country, Csirt(country, email, language))
    return table
