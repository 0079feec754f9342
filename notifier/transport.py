"""Handing a stored message to its relay: a maildir (outbox mode) or SMTP.

Each transport can also answer, after a crash, "did the relay take message
M?", which is what lets the outbox reconcile a notice left in ``sending``
without ever silently sending it twice:

- the maildir names each file after the Message-ID and moves it into ``new/``
  with an atomic link, so the answer is whether the file is there;
- SMTP records ``begin`` in the store's relay journal (committed) just before
  DATA and ``accepted`` right after the relay's 250. No entry: DATA never
  started, safe to send. ``accepted``: it went. ``begin`` alone: the relay may or may not have
  it; the notice becomes ``unknown`` and is reported, not re-sent (unless the
  operator asks: ``notify --resend-unknown``, same Message-ID).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from notifier import faults
from notifier.safety import server_text
from store.db import Database
from store.dburl import mask_password
from store.models import RelayJournal
from tocsin.config import Config
from tocsin.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

# "unreachable": nothing was handed over, and not for the recipient's fault: no session
# with the relay (refused, timed out, TLS or log-in failed), or the outbox or the relay
# journal cannot be written (a full disk, a read-only store). The notice goes back to the
# queue untouched (no attempt counted, no back-off), the run stops and says why in one
# line, and the next run after the cause is fixed sends it, once.
Status = Literal["accepted", "temporary", "permanent", "ambiguous", "unreachable"]
Lookup = Literal["accepted", "begun", "absent"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    code: int | None = None
    error: str = ""
    stop: bool = False  # the relay is unreachable: stop sending this run


class Transport(Protocol):
    name: str
    authoritative: bool  # can answer lookup() for messages another host handed over

    def deliver(self, message_id: str, recipient: str, data: bytes) -> Outcome: ...

    def lookup(self, message_id: str) -> Lookup: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def file_name(message_id: str) -> str:
    """The maildir file name of a message: derived from its Message-ID, never from input."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:40] + ".tocsin"


class MaildirTransport:
    """``notify.mode = "outbox"``: every message becomes a file in a maildir."""

    name = "outbox"
    authoritative = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):
            try:
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    "notify.outbox_dir", f"cannot make {self.path / sub}: {exc.strerror}"
                ) from None

    def lookup(self, message_id: str) -> Lookup:
        name = file_name(message_id)
        if os.path.exists(self.path / "new" / name):
            return "accepted"
        # A mail client moves read messages to cur/, adding ":2,FLAGS" to the name.
        try:
            with os.scandir(self.path / "cur") as entries:
                if any(entry.name.startswith(name) for entry in entries):
                    return "accepted"
        except FileNotFoundError:
            pass
        return "absent"

    def deliver(self, message_id: str, recipient: str, data: bytes) -> Outcome:
        name = file_name(message_id)
        if self.lookup(message_id) == "accepted":
            return Outcome("accepted")  # already there: delivering is idempotent
        tmp = self.path / "tmp" / f"{name}.{os.getpid()}"
        try:
            try:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(tmp, self.path / "new" / name)  # atomic; fails if it exists
            except FileExistsError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
        except OSError as exc:  # a full disk, a read-only folder: the same for every message
            problem = f"cannot write the outbox {self.path}: {exc.strerror or exc}"
            return Outcome("unreachable", error=problem, stop=True)
        return Outcome("accepted")

    def flush(self) -> None:
        """Make the links of this batch durable before the outbox marks them sent."""
        _fsync_dir(self.path / "new")

    def close(self) -> None:
        pass


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """What the SMTP relay was handed, per Message-ID, kept in the store.

    Each state is written in its own committed transaction: ``begin`` before
    DATA, ``accepted`` after the relay's 250. It is in the database, not in a
    file, because a file named relative to the working directory was not found
    by a rerun from another folder (cron), which then re-sent what the relay
    already had (issue 12); the store is what every run, from any folder or
    host, already shares. ``notify.journal`` may name the file journal of an
    older tocsin: it is read (never written) so rows it covers are settled too.
    """

    def __init__(self, db: Database, legacy: str | Path = "") -> None:
        self.db = db
        self.legacy = Path(legacy).expanduser() if legacy else None
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def write(self, state: str, message_id: str) -> None:
        """Record a state, committed before this returns (raises on a store error)."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            updated = session.execute(
                update(RelayJournal)
                .where(RelayJournal.message_id == message_id)
                .values(state=state, worker=self.worker, at=now)
            ).rowcount
            if not updated:
                session.add(
                    RelayJournal(message_id=message_id, state=state, worker=self.worker, at=now)
                )

    def states(self, wanted: set[str]) -> dict[str, str]:
        """The journalled state of each wanted Message-ID; raises StoreError if unreadable."""
        found: dict[str, str] = {}
        try:
            with self.db.session() as session:
                for chunk in _chunks(sorted(wanted), 500):
                    rows = session.execute(
                        select(RelayJournal.message_id, RelayJournal.state).where(
                            RelayJournal.message_id.in_(chunk)
                        )
                    )
                    found.update({message_id: state for message_id, state in rows})
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(f"cannot read the relay journal in the store: {reason}") from None
        for message_id, state in self._legacy_states(wanted).items():
            if found.get(message_id) != "accepted":
                found[message_id] = state
        return found

    def _legacy_states(self, wanted: set[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.legacy is None:
            return found
        try:
            with open(self.legacy, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    parts = line.rstrip("\n").split(" ", 3)
                    if len(parts) != 4:
                        continue  # a torn last line after a crash
                    _, state, _, message_id = parts
                    if message_id in wanted and found.get(message_id) != "accepted":
                        found[message_id] = state
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigError(
                "notify.journal", f"cannot read {self.legacy}: {exc.strerror}"
            ) from None
        return found


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SmtpTransport:
    """``notify.mode = "smtp"``: one connection per run, STARTTLS or TLS, AUTH when set."""

    name = "smtp"
    authoritative = False

    def __init__(self, config: Config, db: Database) -> None:
        if not config.notify.from_addr:
            raise ConfigError("notify.from_addr", "required when notify.mode is smtp")
        self.smtp_config = config.smtp
        self.from_addr = config.notify.from_addr
        self.journal = Journal(db, config.notify.journal)
        self._conn: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.smtp_config.ca_file or None)
        if not self.smtp_config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        cfg = self.smtp_config
        timeout = cfg.timeout.total_seconds()
        conn: smtplib.SMTP
        if cfg.ssl:
            conn = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=self._context())
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        try:
            conn.ehlo()
            if cfg.starttls and not cfg.ssl:
                conn.starttls(context=self._context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password)
        except BaseException:
            _quietly_close(conn)
            raise
        self._conn = conn
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            _quietly_close(self._conn)
        self._conn = None

    def lookup(self, message_id: str) -> Lookup:
        state = self.journal.states({message_id}).get(message_id)  # StoreError: refuse
        if state == "accepted":
            return "accepted"
        if state == "begin":
            return "begun"
        return "absent"

    def deliver(self, message_id: str, recipient: str, data: bytes) -> Outcome:
        try:
            conn = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            return self._unreachable(
                exc.smtp_code, server_text(exc.smtp_error), "refused the log-in"
            )
        except smtplib.SMTPResponseException as exc:
            self._drop()
            return self._unreachable(exc.smtp_code, server_text(exc.smtp_error))
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return self._unreachable(None, server_text(str(exc) or type(exc).__name__))
        try:
            code, reply = conn.mail(self.from_addr)
            if code != 250:
                return self._refused(conn, code, reply)
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                return self._refused(conn, code, reply)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return Outcome("temporary", None, f"connection lost before DATA: {exc}")
        try:
            self.journal.write("begin", message_id)  # committed before DATA starts
        except SQLAlchemyError as exc:
            # Nothing was handed over (RSET), and without ``begin`` no message may go:
            # a crash during DATA would leave no trace and the next run would send it
            # again. The store's trouble is every message's, so the run stops.
            _reset(conn)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            reason = mask_password(reason, self.journal.db.url)
            return Outcome("unreachable", None, f"cannot write the relay journal: {reason}", True)
        faults.point("during-data")
        try:
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as exc:
            self._note("rejected", message_id)
            if exc.smtp_code in (-1, 421):
                self._drop()
            else:
                _reset(conn)
            return _classify(exc.smtp_code, server_text(exc.smtp_error))
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return Outcome("ambiguous", None, f"connection lost during DATA: {exc}", stop=True)
        self._note("accepted", message_id)
        return Outcome("accepted", code, server_text(reply))

    def _note(self, state: str, message_id: str) -> None:
        """Journal an outcome; if the store refuses, the row stays ``begin`` and a
        crash before marking leaves the notice ``unknown``, never re-sent."""
        try:
            self.journal.write(state, message_id)
        except SQLAlchemyError as exc:
            log.warning("cannot journal %s for %s: %s", state, message_id, exc)

    @property
    def address(self) -> str:
        """``host:port`` of the relay, for the one-line error (from config, not the network)."""
        host = self.smtp_config.host
        return (
            f"[{host}]:{self.smtp_config.port}"
            if ":" in host
            else f"{host}:{self.smtp_config.port}"
        )

    def _unreachable(self, code: int | None, error: str, what: str = "unreachable") -> Outcome:
        detail = f"{code} {error}" if code else error
        message = server_text(f"SMTP relay {self.address} {what}: {detail}")
        return Outcome("unreachable", code, message, stop=True)

    def flush(self) -> None:
        pass  # each journal state is committed as it is written

    def _refused(self, conn: smtplib.SMTP, code: int, reply: bytes) -> Outcome:
        if code in (-1, 421):  # the relay is closing the channel: reconnect for the next
            self._drop()
        else:
            _reset(conn)
        return _classify(code, server_text(reply))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
        self._conn = None


def _classify(code: int, text: str) -> Outcome:
    if 500 <= code < 600:
        return Outcome("permanent", code, text)
    return Outcome("temporary", code, text)


def _reset(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        conn.rset()


def _quietly_close(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        conn.close()


def make(config: Config, db: Database) -> Transport:
    """The transport ``notify.mode`` asks for (smtp refuses to run without from_addr)."""
    if config.notify.mode == "smtp":
        return SmtpTransport(config, db)
    return MaildirTransport(config.notify.outbox_dir)
