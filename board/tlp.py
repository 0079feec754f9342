"""The traffic-light protocol (TLP 2.0) as the board applies it.

Every campaign and incident carries a label: its own, else (for an incident)
its campaign's, else ``board.default_tlp``. Analysts see everything. A researcher
sees their own submissions in full and, of everything else, only what is
``TLP:CLEAR`` or ``TLP:GREEN``. The portal shows a recipient their own incidents
whatever the label: they are the party the report is about.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal

from store.models import Campaign, Incident
from store.queries import tlp_label
from tocsin.config import TLP_LABELS

SHAREABLE = ("clear", "green")

__all__ = ["SHAREABLE", "TLP_LABELS", "effective_sql", "parse", "shareable", "tlp_label"]


def parse(text: str | None) -> str | None:
    """``TLP:AMBER+STRICT``, ``amber+strict`` or ``AMBER`` -> ``amber+strict``; else None."""
    if not text:
        return None
    value = text.strip().lower().removeprefix("tlp:")
    return value if value in TLP_LABELS else None


def shareable(label: str) -> bool:
    return label in SHAREABLE


def effective_sql(default: str) -> Any:
    """The incident's label as an SQL expression (joins Incident and Campaign)."""
    return func.coalesce(Incident.tlp, Campaign.tlp, literal(default))
