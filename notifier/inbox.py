"""Reading what came back: bounces (RFC 3464 DSNs), replies, out-of-office noise.

- A DSN whose recipient ``failed`` with a 5.x.x status marks the contact
  bounced and moves each incident of the returned notice to the next ladder
  level at once (the same path as a 5xx at send time).
- A reply that names a ticket (in its plus-addressed recipient, subject,
  references or body) joins each matching incident's timeline as an
  ``incident.reply`` event; the contact's reply counter goes up.
- Auto-replies (RFC 3834 ``Auto-Submitted``, the usual vendor headers and
  subjects) are recognised and ignored.

Every message read is remembered by the hash of its Message-ID, so reading
the same mailbox twice changes nothing the second time. Message text is
attacker-controlled like any page: it is cut down to one bounded line before
it is stored.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.policy
import hashlib
import imaplib
import logging
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from notifier import bounces
from notifier.outbox import bounce_contact
from notifier.safety import one_line, server_text
from store import eventlog
from store.models import Contact, InboxMessage, Incident, Notice, NoticeItem
from tocsin.app import App
from tocsin.errors import NotifyError, UsageError

log = logging.getLogger(__name__)

MAX_MESSAGE = 20 * 1024 * 1024
IMAP_TIMEOUT = 60  # seconds per IMAP operation: a stuck server must not hang a cron job
TICKET = re.compile(r"\bTCS-[A-Z2-9]{4}-[A-Z2-9]{4}\b", re.IGNORECASE)
MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}@[^<>\s]{1,250}>")
AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[\s_-]*(reply|response|antwort)|out of (the )?office|abwesen|absence|"
    r"absent|r[ée]ponse automatique|自動返信|自動応答|不在)",
    re.IGNORECASE,
)


@dataclass
class InboxStats:
    read: int = 0
    bounces: int = 0
    delayed: int = 0
    escalated: int = 0
    replies: int = 0
    auto: int = 0
    unmatched: int = 0
    duplicates: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


# -- sources ---------------------------------------------------------------------------


def delivery_order(entry: Path) -> list[int | str]:
    """Sort key of a maildir file: its name with the numbers compared as numbers.

    Maildir names start with the delivery time (``1765080000.M99999P12Q1.host``), but
    the microseconds are not zero-padded, so a plain sort puts ``M100000`` before
    ``M99999``: replies would join the timeline out of the order they came in.
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", entry.name)]


def read_path(path: str | Path) -> Iterator[bytes]:
    """Raw messages of a maildir (a folder with cur/ and new/) or an mbox file."""
    path = Path(path)
    if path.is_dir():
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            raise UsageError(f"inbox: {path} is a folder but not a maildir (no cur/ or new/)")
        for sub in ("new", "cur"):
            folder = path / sub
            if not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir(), key=delivery_order):
                if entry.is_file() and entry.stat().st_size <= MAX_MESSAGE:
                    yield entry.read_bytes()
        return
    if not path.is_file():
        raise UsageError(f"inbox: no such maildir or mbox: {path}")
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            data = box.get_bytes(key)
            if len(data) <= MAX_MESSAGE:
                yield data
    finally:
        box.close()


def read_imap(app: App) -> Iterator[bytes]:
    """Unseen messages of ``notify.imap_folder``; each is flagged seen once processed."""
    cfg = app.config.notify
    if not cfg.imap_host:
        raise UsageError("inbox: give a maildir or mbox PATH, or set notify.imap_host")
    cls = imaplib.IMAP4_SSL if cfg.imap_ssl else imaplib.IMAP4
    try:
        conn = cls(cfg.imap_host, cfg.imap_port, timeout=IMAP_TIMEOUT)
    except OSError as exc:
        raise NotifyError(f"IMAP: cannot reach {cfg.imap_host}:{cfg.imap_port}: {exc}") from None
    try:
        if cfg.imap_username:
            conn.login(cfg.imap_username, cfg.imap_password)
        status, _ = conn.select(cfg.imap_folder)
        if status != "OK":
            raise NotifyError(f"no folder {cfg.imap_folder!r} on {cfg.imap_host}")
        _, found = conn.uid("SEARCH", "UNSEEN")
        for uid in found[0].split():
            _, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in data if isinstance(part, tuple)), b"")
            if raw and len(raw) <= MAX_MESSAGE:
                yield raw
            else:
                log.warning(
                    "inbox: IMAP message %s is empty or over %d bytes; skipped", uid, MAX_MESSAGE
                )
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")  # only once it is processed
    except (imaplib.IMAP4.error, OSError) as exc:
        said = server_text(exc.args[0] if exc.args else str(exc))
        raise NotifyError(f"IMAP {cfg.imap_host}: {said}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


# -- classification --------------------------------------------------------------------


@dataclass
class Dsn:
    failed: list[tuple[str, str, str]]  # (recipient, status, diagnostic)
    delayed: list[str]
    original_id: str | None
    original_ticket: str | None
    # (recipient, status, diagnostic) of the delayed ones: a soft bounce per contact.
    delayed_detail: list[tuple[str, str, str]] = field(default_factory=list)


def parse_dsn(msg: Message) -> Dsn | None:
    """The delivery-status report of an RFC 3464 DSN, or None if ``msg`` is not one."""
    if msg.get_content_type() != "multipart/report":
        return None
    if (msg.get_param("report-type") or "").lower() != "delivery-status":
        return None
    failed: list[tuple[str, str, str]] = []
    delayed: list[str] = []
    delayed_detail: list[tuple[str, str, str]] = []
    original_id = original_ticket = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _status_blocks(part):
                recipient = str(
                    block.get("Final-Recipient") or block.get("Original-Recipient") or ""
                )
                recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
                action = str(block.get("Action") or "").strip().lower()
                status = str(block.get("Status") or "").strip()
                diagnostic = one_line(block.get("Diagnostic-Code") or "", 300)
                if not recipient:
                    continue
                if action == "failed" and status.startswith("5"):
                    failed.append((recipient, status, diagnostic))
                elif action in ("delayed", "failed"):
                    delayed.append(recipient)
                    delayed_detail.append((recipient, status, diagnostic))
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/global-headers"):
            headers = _original_headers(part)
            if headers is not None:
                original_id = original_id or _first_id(headers.get("Message-ID"))
                original_ticket = original_ticket or _ticket(headers.get("X-Tocsin-Ticket"))
    return Dsn(failed, delayed, original_id, original_ticket, delayed_detail)


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True) or b""
    blocks = re.split(rb"\r?\n\r?\n", text)
    return [email.message_from_bytes(b, policy=email.policy.compat32) for b in blocks if b.strip()]


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    if isinstance(payload, str):
        return email.message_from_string(payload, policy=email.policy.compat32)
    return None


def _first_id(value: Any) -> str | None:
    match = MESSAGE_ID.search(str(value or ""))
    return match.group(0) if match else None


def _ticket(value: Any) -> str | None:
    match = TICKET.search(str(value or ""))
    return match.group(0).upper() if match else None


def is_auto_reply(msg: Message) -> bool:
    """An out-of-office or other automatic answer (RFC 3834 and common practice)."""
    auto = str(msg.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return True
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if msg.get(header) is not None:
            return True
    precedence = str(msg.get("Precedence") or msg.get("X-Precedence") or "").strip().lower()
    if precedence in ("auto_reply", "bulk", "junk", "list"):
        return True
    return bool(AUTO_SUBJECT.match(_decoded(msg.get("Subject"))))


def _text_of(msg: Message, limit: int = 20000) -> str:
    """The first text/plain part (decoded, bounded); the reply's quoted ticket lives there."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            raw = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                return raw[:limit].decode(charset, "replace")
            except LookupError:
                return raw[:limit].decode("utf-8", "replace")
    return ""


# -- processing -------------------------------------------------------------------------


def process(app: App, messages: Iterator[bytes]) -> InboxStats:
    """Classify and apply every message; each in its own transaction."""
    stats = InboxStats()
    for raw in messages:
        stats.read += 1
        try:
            _process_one(app, raw, stats)
        except IntegrityError:
            stats.duplicates += 1  # another run recorded it at the same moment
        except Exception as exc:  # one odd message must not stop the mailbox
            log.warning("inbox: could not process a message: %s", exc)
            stats.skipped += 1
            stats.problems.append(one_line(exc, 200))
    return stats


def _process_one(app: App, raw: bytes, stats: InboxStats) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    message_id = _first_id(msg.get("Message-ID"))
    key = hashlib.sha256((message_id or "").encode() if message_id else raw).hexdigest()
    now = app.clock.now()
    sender = parseaddr(str(msg.get("From") or ""))[1].lower()[:320]
    subject = one_line(_decoded(msg.get("Subject")), 300)
    with app.db.claim() as session:
        if session.scalar(select(InboxMessage.id).where(InboxMessage.key == key)):
            stats.duplicates += 1
            return
        record = InboxMessage(
            key=key,
            message_id=(message_id or "")[:998] or None,
            kind="unmatched",
            sender=sender or None,
            subject=subject or None,
            received_at=now,
            data={},
        )
        session.add(record)
        dsn = parse_dsn(msg)
        if dsn is not None:
            record.kind = "dsn"
            _apply_dsn(session, dsn, record, now, stats)
        elif is_auto_reply(msg):
            record.kind = "auto"
            stats.auto += 1
        else:
            _apply_reply(session, msg, record, sender, subject, now, stats)
        session.flush()


def _decoded(value: Any) -> str:
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return str(value)


def _apply_dsn(session, dsn: Dsn, record: InboxMessage, now, stats: InboxStats) -> None:
    if not dsn.failed:
        stats.delayed += 1
        record.data = {"delayed": dsn.delayed[:20]}
        for notice in _dsn_notices(session, dsn, dsn.delayed_detail):
            record.notice_id = notice.id
            status, diagnostic = next(
                ((s, d) for r, s, d in dsn.delayed_detail if r == notice.recipient.lower()),
                ("", ""),
            )
            contact = session.get(Contact, notice.contact_id)
            if contact is not None:
                reason = f"DSN delayed {status} {diagnostic}".strip()
                bounces.record_soft(contact, now, reason)
                eventlog.record(
                    session,
                    now,
                    "contact.deferred",
                    subject=("contact", contact.id),
                    notice=notice.ticket,
                    source="dsn",
                    reason=reason[:500],
                )
        return
    notices = _dsn_notices(session, dsn, dsn.failed)
    record.data = {"failed": [list(f) for f in dsn.failed[:20]], "original": dsn.original_id}
    if not notices:
        stats.unmatched += 1
        return
    for notice in notices:
        record.notice_id = notice.id
        status, diagnostic = next(
            ((s, d) for r, s, d in dsn.failed if r == notice.recipient.lower()),
            (dsn.failed[0][1], dsn.failed[0][2]),
        )
        if notice.state in ("sent", "sending", "unknown", "queued"):
            notice.state = "bounced"
        notice.last_error = one_line(f"DSN {status} {diagnostic}", 500)
        stats.escalated += bounce_contact(
            session, notice, now, reason=notice.last_error, source="dsn"
        )
        stats.bounces += 1


def _dsn_notices(session, dsn: Dsn, recipients: list[tuple[str, str, str]]) -> list[Notice]:
    """The notices a DSN is about: by the returned Message-ID, else the ticket, else
    the last notice sent to each of its recipients."""
    notices: list[Notice] = []
    if dsn.original_id:
        notices = list(session.scalars(select(Notice).where(Notice.message_id == dsn.original_id)))
    if not notices and dsn.original_ticket:
        notices = list(session.scalars(select(Notice).where(Notice.ticket == dsn.original_ticket)))
    if not notices:  # the original was not returned: the last notice to that address
        for recipient, _, _ in recipients:
            last = session.scalars(
                select(Notice)
                .where(Notice.recipient == recipient, Notice.state == "sent")
                .order_by(Notice.sent_at.desc(), Notice.id.desc())
                .limit(1)
            ).first()
            if last is not None:
                notices.append(last)
    return notices


def _apply_reply(
    session, msg: Message, record: InboxMessage, sender: str, subject: str, now, stats: InboxStats
) -> None:
    references = " ".join(str(msg.get(h) or "") for h in ("In-Reply-To", "References"))
    ids = MESSAGE_ID.findall(references)[:50]
    addressed = " ".join(
        a for _, a in getaddresses([str(msg.get(h) or "") for h in ("To", "Cc", "Delivered-To")])
    )
    text = _text_of(msg)
    tickets = {t.upper() for t in TICKET.findall(" ".join((addressed, subject, text)))}

    notices: dict[int, Notice] = {}
    if ids:
        for n in session.scalars(select(Notice).where(Notice.message_id.in_(ids))):
            notices[n.id] = n
    if tickets:
        for n in session.scalars(select(Notice).where(Notice.ticket.in_(sorted(tickets)))):
            notices[n.id] = n
    incidents: dict[int, Incident] = {}
    if tickets:
        for i in session.scalars(select(Incident).where(Incident.public_id.in_(sorted(tickets)))):
            incidents[i.id] = i
    if notices:
        for incident_id in session.scalars(
            select(NoticeItem.incident_id).where(NoticeItem.notice_id.in_(sorted(notices)))
        ):
            incidents.setdefault(incident_id, session.get(Incident, incident_id))
    if not incidents:
        stats.unmatched += 1
        record.data = {"tickets": sorted(tickets)[:20]}
        return
    record.kind = "reply"
    record.notice_id = min(notices) if notices else None
    snippet = one_line(_strip_quoted(text), 500)
    for incident_id in sorted(incidents):
        eventlog.record(
            session,
            now,
            "incident.reply",
            incident_id=incident_id,
            actor="inbox",
            sender=sender,
            mail_subject=subject,
            snippet=snippet,
            notice=notices[record.notice_id].ticket if record.notice_id else None,
        )
    contacts = set(
        session.scalars(select(Contact).where(Contact.email == sender)) if sender else []
    ) or {session.get(Contact, n.contact_id) for n in notices.values()}
    for contact in sorted((c for c in contacts if c is not None), key=lambda c: c.id):
        contact.replies = (contact.replies or 0) + 1
    record.data = {"tickets": sorted(tickets)[:20], "incidents": sorted(incidents)[:50]}
    stats.replies += 1


def _strip_quoted(text: str) -> str:
    """The reply's own words: quoted lines and everything after a reply header dropped."""
    kept = []
    for line in text.splitlines():
        if line.lstrip().startswith(">") or re.match(r"^On .+ wrote:$", line.strip()):
            break
        kept.append(line)
    return "\n".join(kept)
