"""RFC 3161 trusted timestamps over a package's manifest, with ``rfc3161-client``.

The token proves that the manifest (and so every hash in it) existed at the
TSA's time. ``package.tsa_url`` is the operator's own choice of service, not
attacker input, so it is fetched directly (no redirects, bounded size and time).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from tocsin.config import PackageConfig
from tocsin.errors import ConfigError, TocsinError

MAX_REPLY = 1024 * 1024


class TimestampError(TocsinError):
    """The TSA did not give a valid token, or a token does not verify."""


@dataclass(frozen=True)
class Stamp:
    """What a verified token says."""

    time: datetime
    serial: int
    tsa: str  # the TSA's name in the token, or its certificate's subject


def load_roots(path: str) -> list[x509.Certificate]:
    """The CA certificates of ``package.tsa_ca`` (one PEM file, one or more certificates)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError("package.tsa_ca", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError("package.tsa_ca", f"no PEM certificate in {path}") from None


def request_token(config: PackageConfig, data: bytes) -> bytes:
    """A timestamp token (the TSA's whole response, DER) over sha256(``data``).

    The answer is checked before it is kept: granted, our nonce, our hash, and
    (when ``package.tsa_ca`` is set) signed by a certificate that chains to it.
    """
    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    timeout = config.tsa_timeout.total_seconds()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream(
                "POST",
                config.tsa_url,
                content=request.as_bytes(),
                headers={"Content-Type": "application/timestamp-query"},
            ) as reply,
        ):
            body = b""
            for chunk in reply.iter_bytes():
                body += chunk
                if len(body) > MAX_REPLY:
                    raise TimestampError(f"the TSA {config.tsa_url} sent more than 1 MiB")
            status = reply.status_code
    except httpx.HTTPError as exc:
        raise TimestampError(f"the TSA {config.tsa_url} did not answer: {exc}") from None
    if status != 200:
        raise TimestampError(f"the TSA {config.tsa_url} answered HTTP {status}")
    try:
        response = decode_timestamp_response(body)
    except ValueError as exc:
        raise TimestampError(f"the TSA {config.tsa_url} sent no timestamp reply: {exc}") from None
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"the TSA {config.tsa_url} refused: {response.status_string}")
    if response.tst_info.nonce != request.nonce:
        raise TimestampError(f"the TSA {config.tsa_url} answered another request (nonce)")
    if response.tst_info.message_imprint.message != hashlib.sha256(data).digest():
        raise TimestampError(f"the TSA {config.tsa_url} timestamped other data")
    if config.tsa_ca:
        verify_token(body, data, load_roots(config.tsa_ca))
    return body


def verify_token(token: bytes, data: bytes, roots: list[x509.Certificate]) -> Stamp:
    """Check that ``token`` covers sha256(``data``) and is signed by a TSA certificate
    (critical extendedKeyUsage timeStamping) that chains to one of ``roots``."""
    try:
        response = decode_timestamp_response(token)
    except ValueError as exc:
        raise TimestampError(f"not an RFC 3161 timestamp reply: {exc}") from None
    if not roots:
        raise TimestampError("no CA certificate to check the timestamp against")
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(response, hashlib.sha256(data).digest())
    except VerificationError as exc:
        raise TimestampError(f"the timestamp does not verify: {exc}") from None
    info = response.tst_info
    name = ""
    try:
        name = info.name.value.rfc4514_string() if info.name is not None else ""
    except (AttributeError, ValueError):
        name = ""
    return Stamp(time=info.gen_time, serial=info.serial_number, tsa=name)
