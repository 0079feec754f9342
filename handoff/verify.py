"""``tocsin package --verify``: every hash, every file, and the timestamp.

A package verifies when every file the manifest lists is there with its
sha256 and size, no other file was added, ``SHA256SUMS`` says the same as the
manifest, and (when the manifest says it was timestamped) the RFC 3161 token
covers the manifest's sha256 and chains to the given CA. Each problem is one
line naming the file. Nothing is extracted: members are hashed as they stream.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from handoff.package import CHUNK, FORMAT, MANIFEST, SUMS, TOKEN
from handoff.timestamp import Stamp, TimestampError, verify_token

MAX_MANIFEST = 256 * 1024 * 1024


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    stamp: Stamp | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _digest(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(name) as member:
        while chunk := member.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify_package(path: Path, roots: list[x509.Certificate] | None) -> Report:
    """Check the package at ``path``; ``roots`` are the TSA's CA certificates, if known."""
    report = Report()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(f"{path.name}: not a readable zip ({exc})")
        return report
    with archive:
        names = archive.namelist()
        seen = set()
        for name in names:
            if name in seen:
                report.problems.append(f"{name}: more than once in the zip")
            seen.add(name)
        try:
            info = archive.getinfo(MANIFEST)
            if info.file_size > MAX_MANIFEST:
                raise ValueError("too large")
            data = archive.read(MANIFEST)
            manifest = json.loads(data)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
        except KeyError:
            report.problems.append(f"{MANIFEST}: missing")
            return report
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            report.problems.append(f"{MANIFEST}: unreadable ({exc})")
            return report
        report.manifest = manifest
        listed: dict[str, dict[str, Any]] = {}
        for entry in manifest.get("files") or []:
            listed[str(entry.get("path"))] = entry
        for name, entry in listed.items():
            if name not in seen:
                report.problems.append(f"{name}: missing")
                continue
            try:
                sha, size = _digest(archive, name)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                report.problems.append(f"{name}: damaged ({exc})")
                continue
            report.files += 1
            if sha != entry.get("sha256") or size != entry.get("size"):
                report.problems.append(f"{name}: sha256 differs from the manifest (changed)")
        for name in sorted(seen - set(listed) - {MANIFEST, SUMS, TOKEN}):
            report.problems.append(f"{name}: not in the manifest (added)")
        expected = "".join(f"{e['sha256']}  {p}\n" for p, e in listed.items()).encode()
        try:
            if archive.read(SUMS) != expected:
                report.problems.append(f"{SUMS}: differs from the manifest (changed)")
        except KeyError:
            report.problems.append(f"{SUMS}: missing")
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            report.problems.append(f"{SUMS}: damaged ({exc})")
        _check_token(archive, seen, data, manifest, roots, report)
    return report


def _check_token(
    archive: zipfile.ZipFile,
    names: set[str],
    manifest_bytes: bytes,
    manifest: dict[str, Any],
    roots: list[x509.Certificate] | None,
    report: Report,
) -> None:
    if TOKEN not in names:
        if manifest.get("timestamp"):
            report.problems.append(f"{TOKEN}: missing (the manifest says it was timestamped)")
        return
    try:
        token = archive.read(TOKEN)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        report.problems.append(f"{TOKEN}: damaged ({exc})")
        return
    if not roots:
        report.problems.append(
            f"{TOKEN}: not checked: give the TSA's CA certificate (--tsa-ca or package.tsa_ca)"
        )
        return
    try:
        report.stamp = verify_token(token, manifest_bytes, roots)
    except TimestampError as exc:
        report.problems.append(f"{TOKEN}: {exc}")
