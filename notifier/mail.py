"""Building the RFC 5322 message of a notice, and signing it (DKIM).

The message is built once, stored in the outbox row and sent byte for byte,
so a notice re-sent after a crash is the same message with the same
Message-ID. Header values are single lines twice over: every value passed in
went through :func:`notifier.safety.one_line`, and :func:`_header` refuses a
CR, LF or NUL anyway; the recipient is checked with
:func:`notifier.safety.valid_address`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from pathlib import Path

from notifier.safety import one_line, valid_address
from tocsin.config import NotifyConfig
from tocsin.errors import ConfigError, NotifyError

SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"auto-submitted",
    b"in-reply-to",
    b"references",
]


@dataclass
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


@dataclass
class Outgoing:
    """Everything a notice message is made of."""

    to_addr: str
    subject: str
    text: str
    message_id: str
    date: datetime
    ticket: str
    language: str
    html: str | None = None
    in_reply_to: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


def sender_address(config: NotifyConfig) -> str:
    """``notify.from_addr``, or a local placeholder in outbox mode (smtp refuses to run)."""
    return config.from_addr or "tocsin@localhost"


def reply_address(config: NotifyConfig, ticket: str) -> str:
    """``notify.reply_to`` (else from_addr) plus-addressed with the ticket id."""
    base = config.reply_to or sender_address(config)
    local, _, domain = base.rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}+{ticket}@{domain}"


def new_message_id(config: NotifyConfig, ticket: str) -> str:
    domain = sender_address(config).rpartition("@")[2] or "localhost"
    return f"<{ticket.lower()}.{secrets.token_hex(8)}@{domain}>"


def build(config: NotifyConfig, out: Outgoing) -> bytes:
    """The whole message as bytes (CRLF line ends), DKIM-signed when configured.

    The MIME structure is assembled here rather than by ``email.message``:
    at 5,000 messages of 20 attachments each the stdlib's header registry
    costs more than everything else a notice needs. The pieces are simple and
    fixed (our own boundaries and ASCII file names, quoted-printable text,
    base64 attachments), headers are folded and encoded by ``email.header``,
    and the tests read every message back with the stdlib parser.
    """
    if not valid_address(out.to_addr):
        raise NotifyError(f"refusing to write to a malformed address {out.to_addr!r}")
    boundary = f"=_tocsin_{secrets.token_hex(12)}"
    headers: list[tuple[str, str]] = [
        ("From", email.utils.formataddr((one_line(config.org_name, 100), sender_address(config)))),
        ("To", out.to_addr),
        ("Subject", one_line(out.subject, 250)),
        ("Date", email.utils.format_datetime(out.date)),
        ("Message-ID", out.message_id),
        ("Reply-To", reply_address(config, out.ticket)),
    ]
    if out.in_reply_to:
        headers += [("In-Reply-To", out.in_reply_to), ("References", out.in_reply_to)]
    headers += [
        ("Auto-Submitted", "auto-generated"),
        # Ask Exchange and friends not to answer with out-of-office and receipts.
        ("X-Auto-Response-Suppress", "OOF, AutoReply, DR, RN, NRN"),
        ("X-Tocsin-Ticket", out.ticket),
        ("Content-Language", out.language),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
    ]
    body = [_text_part("plain", out.text)]
    if out.html:
        inner = f"=_tocsin_alt_{secrets.token_hex(12)}"
        body = [
            f'Content-Type: multipart/alternative; boundary="{inner}"{CRLF}{CRLF}'.encode()
            + _multipart(inner, [body[0], _text_part("html", out.html)])
        ]
    body += [_attachment(a) for a in out.attachments]
    head = b"".join(_header(name, value) for name, value in headers)
    data = head + CRLF.encode() + _multipart(boundary, body)
    return sign(config, data)


CRLF = "\r\n"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _header(name: str, value: str) -> bytes:
    """One header field, folded, non-ASCII as RFC 2047 encoded words; never two lines."""
    if any(ch in value for ch in "\r\n\0"):
        raise NotifyError(f"refusing a {name} header with a line break in it")
    if value.isascii() and len(name) + len(value) < 76:
        return f"{name}: {value}{CRLF}".encode("ascii")
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset, header_name=name).encode(linesep=CRLF)
    return f"{name}: {folded}{CRLF}".encode("ascii")


def _text_part(subtype: str, text: str) -> bytes:
    encoded = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True)
    encoded = encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
    ).encode() + encoded


def _attachment(part: Attachment) -> bytes:
    name = _SAFE_NAME.sub("_", part.filename)[:100] or "attachment"
    charset = '; charset="utf-8"' if part.maintype == "text" else ""
    encoded = _base64_lines(part.content)
    return (
        f'Content-Type: {part.maintype}/{part.subtype}{charset}; name="{name}"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}"
        f'Content-Disposition: attachment; filename="{name}"{CRLF}{CRLF}'
    ).encode() + encoded


def _base64_lines(content: bytes) -> bytes:
    """Base64 in CRLF-ended lines of 76 characters (RFC 2045), as encodebytes with CRLF."""
    encoded = base64.b64encode(content)
    lines = [encoded[n : n + 76] for n in range(0, len(encoded), 76)]
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    delimiter = f"--{boundary}{CRLF}".encode()
    out = [b"This is a multi-part message in MIME format." + CRLF.encode()]
    for part in parts:
        out += [delimiter, part if part.endswith(b"\r\n") else part + CRLF.encode()]
    out.append(f"--{boundary}--{CRLF}".encode())
    return b"".join(out)


def sign(config: NotifyConfig, data: bytes) -> bytes:
    """Prepend a DKIM-Signature when ``notify.dkim_*`` are all set."""
    if not (config.dkim_selector and config.dkim_domain and config.dkim_key_file):
        return data
    import dkim

    try:
        key = Path(config.dkim_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError("notify.dkim_key_file", f"cannot read it: {exc}") from None
    try:
        signature = dkim.sign(
            data,
            config.dkim_selector.encode(),
            config.dkim_domain.encode(),
            key,
            include_headers=SIGNED_HEADERS,
        )
    except dkim.DKIMException as exc:
        raise ConfigError("notify.dkim_key_file", f"cannot sign with it: {exc}") from None
    return signature + data
