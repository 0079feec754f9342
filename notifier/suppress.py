"""Suppression: who must not be written to, about what, and how often.

Three rules, from ``[suppress]`` and ``notify.rate_per_day`` now and from the
board later (``Contact.suppressed`` and ``Contact.optout_types`` are the
board's switches):

- an allowlist of domains never to report (a site on one, or below one);
- opt-outs per contact, for everything or for one type (a family id such as
  ``phishing``, or an X-ARF type such as ``malware``);
- a rate limit per recipient, in messages per day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.xarf_reports import xarf_type
from store.models import Contact, Notice
from tocsin.config import Config


@dataclass
class Suppression:
    allowlist: tuple[str, ...] = ()
    optout_all: frozenset[str] = frozenset()
    optout_types: dict[str, set[str]] = field(default_factory=dict)
    rate_per_day: int = 0

    @classmethod
    def from_config(cls, config: Config) -> Suppression:
        everything: set[str] = set()
        types: dict[str, set[str]] = defaultdict(set)
        for entry in config.suppress.optout:
            address, _, kind = entry.strip().rpartition(":") if ":" in entry else (entry, "", "")
            address = address.strip().lower()
            if kind.strip():
                types[address].add(kind.strip().lower())
            elif address:
                everything.add(address)
        allow = tuple(
            d.strip().lower().strip(".") for d in config.suppress.allowlist_domains if d.strip()
        )
        return cls(allow, frozenset(everything), dict(types), config.notify.rate_per_day)

    def allowlisted(self, host: str, registered_domain: str | None = None) -> bool:
        """The site is on an allowlisted domain (or a subdomain of one)."""
        names = {host.lower().rstrip(".")}
        if registered_domain:
            names.add(registered_domain.lower())
        return any(n == d or n.endswith("." + d) for n in names for d in self.allowlist)

    def opted_out(self, contact: Contact, family: str) -> bool:
        """The contact does not want this kind of notice (or any)."""
        return self.opted_out_values(
            contact.email, contact.suppressed, contact.optout_types, family
        )

    def opted_out_values(
        self,
        email: str,
        suppressed: bool,
        optout_types: list[str] | tuple[str, ...] | None,
        family: str,
    ) -> bool:
        """:meth:`opted_out` from a contact's column values (the composer reads plain rows)."""
        if suppressed:
            return True
        email = email.lower()
        if email in self.optout_all:
            return True
        kinds = self.optout_types.get(email, set()) | {t.lower() for t in optout_types or []}
        return bool(kinds & {family.lower(), xarf_type(family)})

    def allowance(self, session: Session, contact_ids: list[int], now: datetime) -> dict[int, int]:
        """How many more messages each contact may get today (absent: no limit)."""
        if self.rate_per_day <= 0 or not contact_ids:
            return {}
        since = now - timedelta(days=1)
        counts = dict(
            session.execute(
                select(Notice.contact_id, func.count())
                .where(
                    Notice.contact_id.in_(contact_ids),
                    Notice.created_at > since,
                    Notice.kind != "digest",
                )
                .group_by(Notice.contact_id)
            ).all()
        )
        return {cid: max(self.rate_per_day - counts.get(cid, 0), 0) for cid in contact_ids}
