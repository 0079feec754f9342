"""The sandbox's mail relay (aiosmtpd): keeps every message, replies as scripted.

Three listeners share one message store:

- ``127.25.0.1``: plain SMTP; offers STARTTLS and (after it) AUTH, requires neither;
- ``127.25.0.2``: requires STARTTLS and AUTH (``smtp.starttls`` plus credentials);
- ``127.25.0.3``: implicit TLS (``smtp.ssl``), AUTH required.

Per-recipient scripts decide the reply to RCPT TO: ``"421 ..."`` once then
accept, a permanent ``"550 ..."``, or ``"bounce"``/``"delay"``/``"reply"``/``"ooo"``,
which accept the message and then drop an RFC 3464 DSN (failed 5.1.1, or
delayed 4.4.1), a human reply quoting
the subject, or an out-of-office auto-reply into :attr:`SmtpServer.maildir`
(for ``tocsin inbox``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tocsin.sandbox.web import free_port

ADDRESSES = {"plain": "127.25.0.1", "starttls": "127.25.0.2", "ssl": "127.25.0.3"}
USERNAME = "tocsin"
PASSWORD = "sandbox-secret"
MTA_NAME = "mx.sandbox-relay.net"
ACTIONS = ("accept", "bounce", "delay", "reply", "ooo")


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the envelope, the raw bytes, and how it arrived."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    listener: str  # plain | starttls | ssl
    tls: bool
    auth_user: str | None
    peer: str
    time: float

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", "")).strip()

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))


@dataclass
class _Script:
    replies: list[str]
    repeat_last: bool = False
    used: int = 0

    def next(self) -> str:
        if self.used < len(self.replies):
            reply = self.replies[self.used]
            self.used += 1
            return reply
        if self.repeat_last and self.replies:
            return self.replies[-1]
        return "accept"


@dataclass
class _Attempt:
    recipient: str
    reply: str
    time: float = field(default_factory=time.time)


class SmtpServer:
    """Message store, scripts, and the aiosmtpd handler hooks."""

    def __init__(self, workdir: Path, tls_context: ssl.SSLContext) -> None:
        self.tls_context = tls_context
        self.maildir_path = workdir / "mail" / "inbox"
        self.maildir_path.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(self.maildir_path, create=True)
        self.ports: dict[str, int] = {}
        self.host = ADDRESSES["plain"]
        self.username = USERNAME
        self.password = PASSWORD
        self._messages: list[ReceivedMessage] = []
        self._scripts: dict[str, _Script] = {}
        self.attempts: list[_Attempt] = []
        self._lock = threading.Lock()
        self._servers: list[Any] = []
        self._hold: tuple[int, float] | None = None
        self._waiting = 0

    # ------------------------------------------------------------------ public helpers

    @property
    def port(self) -> int:
        return self.ports["plain"]

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def to(self, address: str) -> list[ReceivedMessage]:
        """Messages whose envelope includes ``address``."""
        address = address.lower()
        return [m for m in self.messages if address in (r.lower() for r in m.rcpt_tos)]

    def script(self, recipient: str, *replies: str, repeat_last: bool = False) -> None:
        """Script the replies to RCPT TO for ``recipient``, one per attempt, then accept.

        Each reply is an SMTP line (``"421 4.7.0 Try again later"``,
        ``"550 5.1.1 User unknown"``) or one of ``accept``, ``bounce``,
        ``reply``, ``ooo``. ``repeat_last`` keeps answering the last one.
        """
        for reply in replies:
            if reply not in ACTIONS and not (reply[:3].isdigit() and reply[0] in "2345"):
                raise ValueError(f"not an SMTP reply or action: {reply!r}")
        with self._lock:
            self._scripts[recipient.lower()] = _Script(list(replies), repeat_last)

    def hold_data(self, concurrent: int, timeout: float = 8.0) -> None:
        """Hold each DATA reply until ``concurrent`` clients are in DATA at once.

        Concurrency tests use it to prove several senders really overlapped,
        however fast the first one would otherwise finish alone. After
        ``timeout`` seconds a held client is let through regardless.
        """
        with self._lock:
            self._hold = (concurrent, timeout)
            self._waiting = 0

    async def wait_for_peers(self) -> None:
        with self._lock:
            hold = self._hold
            self._waiting += 1
        if hold is None:
            return
        concurrent, timeout = hold
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._waiting >= concurrent:
                    self._hold = None  # released: the overlap happened
                    return
            await asyncio.sleep(0.02)

    def config(self, mode: str = "plain") -> dict[str, Any]:
        """The ``[smtp]`` table for one listener: plain, starttls or ssl."""
        table: dict[str, Any] = {"host": ADDRESSES[mode], "port": self.ports[mode]}
        if mode != "plain":
            table.update(
                starttls=mode == "starttls",
                ssl=mode == "ssl",
                username=USERNAME,
                password=PASSWORD,
            )
        return table

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._scripts.clear()
            self.attempts.clear()
            self._hold = None
            self._waiting = 0
        for key in list(self.maildir.keys()):
            self.maildir.discard(key)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, loop: Any) -> None:
        for mode in ("plain", "starttls", "ssl"):
            address = ADDRESSES[mode]
            for _attempt in range(10):
                port = free_port(address)
                try:
                    server = await loop.create_server(
                        lambda mode=mode: self._protocol(mode),
                        address,
                        port,
                        ssl=self.tls_context if mode == "ssl" else None,
                    )
                except OSError:
                    continue
                self.ports[mode] = port
                self._servers.append(server)
                break
            else:
                raise OSError(f"sandbox: no free SMTP port on {address}")

    def _protocol(self, mode: str) -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS: AUTH is required and the link is already encrypted.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return self._smtp(mode)

    def _smtp(self, mode: str) -> SMTP:
        return SMTP(
            _Handler(self, mode),
            hostname=MTA_NAME,
            tls_context=self.tls_context if mode != "ssl" else None,
            require_starttls=mode == "starttls",
            auth_required=mode != "plain",
            auth_require_tls=mode != "ssl",  # implicit TLS is already encrypted
            authenticator=_authenticate,
            timeout=30,
        )

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            # Drop connected clients too, so nothing lingers after stop().
            close_clients = getattr(server, "close_clients", None)
            if close_clients is not None:
                close_clients()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # ------------------------------------------------------------------ hooks

    def rcpt_reply(self, recipient: str) -> str:
        with self._lock:
            script = self._scripts.get(recipient.lower())
            reply = script.next() if script else "accept"
            self.attempts.append(_Attempt(recipient, reply))
        return reply

    def deliver(self, envelope: Any, session: Any, mode: str, actions: dict[str, str]) -> None:
        message = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content or b""),
            listener=mode,
            tls=mode == "ssl" or bool(session.ssl),
            auth_user=_auth_user(session),
            peer=str(session.peer[0]) if session.peer else "",
            time=time.time(),
        )
        with self._lock:
            self._messages.append(message)
        for recipient, action in actions.items():
            if action in ("bounce", "delay"):
                self.maildir.add(dsn(message, recipient, delayed=action == "delay"))
            elif action == "reply":
                self.maildir.add(auto_reply(message, recipient, out_of_office=False))
            elif action == "ooo":
                self.maildir.add(auto_reply(message, recipient, out_of_office=True))


def _auth_user(session: Any) -> str | None:
    data = getattr(session, "auth_data", None)
    if isinstance(data, LoginPassword):
        return data.login.decode()
    return None


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _Handler:
    def __init__(self, store: SmtpServer, mode: str) -> None:
        self.store = store
        self.mode = mode
        self.actions: dict[str, str] = {}

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.actions = {}
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.store.rcpt_reply(address)
        if reply in ACTIONS:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            self.actions[address] = reply
            return "250 OK"
        return reply

    async def handle_DATA(self, server, session, envelope):
        await self.store.wait_for_peers()
        self.store.deliver(envelope, session, self.mode, dict(self.actions))
        self.actions = {}
        return "250 2.0.0 Ok: queued"


# --------------------------------------------------------------------------- generated mail


def _original_headers(original: ReceivedMessage) -> bytes:
    head = original.data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"


def dsn(original: ReceivedMessage, recipient: str, *, delayed: bool = False) -> Message:
    """An RFC 3464 delivery status notification for ``recipient``, to the envelope sender:
    a hard bounce (failed, 5.1.1), or with ``delayed`` a warning (delayed, 4.4.1)."""
    domain = recipient.split("@")[-1]
    if delayed:
        action, status, code = "delayed", "4.4.1", "451 4.4.1 Connection timed out"
        said = "delivery temporarily suspended: connect to mx.{0}: Connection timed out"
        subject = "Delayed Mail (still being retried)"
    else:
        action, status, code = "failed", "5.1.1", "550 5.1.1 User unknown"
        said = "host mx.{0} said: 550 5.1.1 <{1}>: Recipient address rejected"
        said += ": User unknown in virtual mailbox table"
        subject = "Undelivered Mail Returned to Sender"
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{MTA_NAME}>"
    report["To"] = original.mail_from
    report["Subject"] = subject
    report["Date"] = format_datetime(_now())
    report["Message-ID"] = make_msgid(domain=MTA_NAME)
    report["Auto-Submitted"] = "auto-replied"
    report.attach(
        MIMEText(
            f"This is the mail system at host {MTA_NAME}.\n\n"
            "Your message could not be delivered to one or more recipients"
            + (" yet; it will be retried.\n\n" if delayed else ".\n\n")
            + f"<{recipient}>: "
            + said.format(domain, recipient)
            + "\n"
        )
    )
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {MTA_NAME}"
    per_message["Arrival-Date"] = format_datetime(_now())
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = f"dns; mx.{domain}"
    per_recipient["Diagnostic-Code"] = f"smtp; {code}"
    status = MIMEBase("message", "delivery-status")
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    headers = MIMEBase("text", "rfc822-headers")
    headers.set_payload(_original_headers(original).decode("utf-8", "replace"))
    report.attach(headers)
    return report


def auto_reply(original: ReceivedMessage, recipient: str, *, out_of_office: bool) -> Message:
    """A reply from ``recipient`` quoting the original subject (with its ticket id)."""
    msg = original.message
    reply = EmailMessage()
    reply["From"] = recipient
    reply_to = parseaddr(str(msg.get("Reply-To") or msg.get("From") or original.mail_from))[1]
    reply["To"] = reply_to or original.mail_from
    subject = str(msg.get("Subject", ""))
    reply["Date"] = format_datetime(_now())
    reply["Message-ID"] = make_msgid(domain=recipient.split("@")[-1])
    if original.message_id:
        reply["In-Reply-To"] = original.message_id
        reply["References"] = original.message_id
    if out_of_office:
        reply["Subject"] = f"Automatic reply: {subject}"
        reply["Auto-Submitted"] = "auto-replied"
        reply["X-Autoreply"] = "yes"
        reply.set_content(
            "I am out of the office until next Monday with limited access to email.\n"
            "For urgent matters please contact our support desk.\n"
        )
    else:
        reply["Subject"] = f"Re: {subject}"
        reply.set_content(
            "Hello,\n\nThank you for the report. We have contacted the customer and the "
            "site has been suspended while they clean it up.\n\nRegards,\nAbuse desk\n\n"
            f"> {subject}\n"
        )
    return reply


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)  # a mail header's Date is wall-clock by nature
