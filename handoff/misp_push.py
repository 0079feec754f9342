"""Add or update a campaign's event on a MISP instance (``tocsin export --push misp``).

The event is found by its uuid (``HEAD /events/view/<uuid>``): present, it is edited
(``POST /events/edit/<uuid>``, attributes matched by their own uuids, so nothing is
duplicated); absent, it is added (``POST /events/add``). The MISP URL and key are the
operator's configuration, not attacker input; TLS is verified unless
``misp.verify_tls`` is false. Tested against a loopback stand-in, not a real MISP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pymisp import MISPEvent, PyMISP

from tocsin.config import MispConfig
from tocsin.errors import TocsinError, UsageError


class MispPushError(TocsinError):
    """MISP refused or could not be reached; the message never holds the key."""


@dataclass
class PushResult:
    uuid: str
    action: str  # added | updated
    event_id: str | None


class MispClient:
    """One connection to the configured MISP instance, for a run's pushes."""

    def __init__(self, config: MispConfig) -> None:
        if not (config.url and config.key):
            raise UsageError("export --push misp: set misp.url and misp.key first")
        self.key = config.key
        # PyMISP logs refusals itself (a 5xx with the whole request body); tocsin reports
        # each failure once, as one line, so its own log stays quiet.
        logging.getLogger("pymisp").setLevel(logging.CRITICAL + 1)
        try:
            self.misp = PyMISP(
                config.url,
                config.key,
                ssl=config.verify_tls,
                timeout=config.timeout.total_seconds(),
                tool="tocsin",
            )
        except Exception as exc:  # PyMISP wraps requests' errors in its own, or not at all
            raise MispPushError(self._one_line(f"cannot use MISP at {config.url}: {exc}")) from None

    def push(self, event: MISPEvent) -> PushResult:
        """Edit the event when MISP has its uuid, else add it."""
        try:
            exists = self.misp.event_exists(event.uuid)
            if exists:
                answer = self.misp.update_event(event, event_id=event.uuid)
            else:
                answer = self.misp.add_event(event)
        except Exception as exc:
            raise MispPushError(
                self._one_line(f"MISP push of {event.uuid} failed: {exc}")
            ) from None
        if not isinstance(answer, dict) or "errors" in answer:
            problem = answer.get("errors") if isinstance(answer, dict) else answer
            raise MispPushError(self._one_line(f"MISP refused event {event.uuid}: {problem}"))
        stored: dict[str, Any] = answer.get("Event", answer)
        return PushResult(
            event.uuid, "updated" if exists else "added", str(stored.get("id") or "") or None
        )

    def _one_line(self, text: str) -> str:
        text = " ".join(text.split())[:500]
        return text.replace(self.key, "***") if self.key else text
