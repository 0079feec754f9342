"""All models, importable from one place: ``from store.models import Url``.

They are split by area (feeds, crawl, sites, incidents, notices, events);
each stage writes mainly to its own area.
"""

from store.models.base import Base
from store.models.board import (
    TOKEN_ROLES,
    USER_ROLES,
    ApiToken,
    BoardFailure,
    BoardSession,
    BoardUser,
    Submission,
)
from store.models.crawl import VERDICTS, Check, Evidence, Url
from store.models.events import Event
from store.models.feeds import FeedSubmission, IngestRun, Reject
from store.models.incidents import INCIDENT_STATES, Campaign, Incident, IncidentUrl, Recipient
from store.models.jobs import JobLease
from store.models.notices import (
    NOTICE_STATES,
    InboxMessage,
    Notice,
    NoticeItem,
    PortalToken,
    RelayJournal,
)
from store.models.sites import CONTACT_ROLES, Contact, RdapCache, Site, SiteContact

__all__ = [
    "CONTACT_ROLES",
    "INCIDENT_STATES",
    "NOTICE_STATES",
    "TOKEN_ROLES",
    "USER_ROLES",
    "VERDICTS",
    "ApiToken",
    "Base",
    "BoardFailure",
    "BoardSession",
    "BoardUser",
    "Campaign",
    "Check",
    "Contact",
    "Event",
    "Evidence",
    "FeedSubmission",
    "InboxMessage",
    "Incident",
    "IncidentUrl",
    "IngestRun",
    "JobLease",
    "Notice",
    "NoticeItem",
    "PortalToken",
    "RdapCache",
    "Recipient",
    "Reject",
    "RelayJournal",
    "Site",
    "SiteContact",
    "Submission",
    "Url",
]
