"""The evidence store: content-addressed blobs under ``evidence.dir``.

A blob lives at ``<dir>/ab/cd/<sha256>`` where ``abcd`` are the first hex digits
of its own sha256, so identical blobs are stored once and a path is never made
from anything a page sent. Blobs are written atomically (temporary file, then
rename) and bounded by ``evidence.max_blob``. Rows in ``evidence`` tie blobs to
checks.

Payloads are kept the way analysts expect them: inside a ZIP encrypted with
AES and the password ``infected``, so no scanner or careless click runs them.
An AES zip differs on every write (random salt), so a payload already zipped
is found by the sha256 of its content (``Evidence.content_sha256``) and reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyzipper
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Evidence
from tocsin.config import Config

ZIP_PASSWORD = b"infected"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    truncated: bool


class EvidenceStore:
    """Blobs by sha256 under one folder."""

    def __init__(self, root: str | Path, max_blob: int) -> None:
        self.root = Path(root)
        self.max_blob = max_blob

    @classmethod
    def from_config(cls, config: Config) -> EvidenceStore:
        return cls(config.evidence.dir, config.evidence.max_blob)

    def path_for(self, sha256: str) -> Path:
        """Where the blob ``sha256`` lives; refuses anything that is not a sha256."""
        if not _SHA256.match(sha256 or ""):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> StoredBlob:
        """Store ``data`` (cut at ``max_blob``) once; returns its address."""
        truncated = len(data) > self.max_blob
        if truncated:
            data = data[: self.max_blob]
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return StoredBlob(sha, len(data), truncated)

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()


def safe_member_name(name: str) -> str:
    """A zip member name from a page-supplied file name: one harmless path component."""
    name = re.sub(r"[^\w.\-]+", "_", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = name.strip("._")[:100]
    return name or "payload"


def zip_payload(data: bytes, name: str) -> bytes:
    """``data`` in an AES-encrypted ZIP whose password is ``infected``."""
    out = io.BytesIO()
    with pyzipper.AESZipFile(
        out, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(ZIP_PASSWORD)
        archive.writestr(safe_member_name(name) + ".bin", data)
    return out.getvalue()


def unzip_payload(blob: bytes) -> dict[str, bytes]:
    """The members of a payload zip (for tests and analysts' tooling)."""
    with pyzipper.AESZipFile(io.BytesIO(blob)) as archive:
        archive.setpassword(ZIP_PASSWORD)
        return {name: archive.read(name) for name in archive.namelist()}


def existing_zip(session: Session, content_sha256: str) -> Evidence | None:
    """An earlier zip of the same payload, to reuse instead of zipping again."""
    return session.scalars(
        select(Evidence)
        .where(Evidence.kind == "payload_zip", Evidence.content_sha256 == content_sha256)
        .limit(1)
    ).first()


def record(
    session: Session,
    *,
    check_id: int,
    kind: str,
    sha256: str,
    size: int,
    media_type: str,
    now: datetime,
    note: str | None = None,
    content_sha256: str | None = None,
) -> Evidence:
    """Add an evidence row (unique per check, kind and blob)."""
    row = Evidence(
        check_id=check_id,
        kind=kind,
        sha256=sha256,
        size=size,
        media_type=media_type,
        note=note,
        content_sha256=content_sha256,
        created_at=now,
    )
    session.add(row)
    return row
