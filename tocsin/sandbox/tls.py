"""A throwaway certificate authority, one server certificate for every sandbox name,
and the time-stamping authority's certificate.

tocsin ignores TLS errors when crawling (attackers' certificates are often
bad), but a client that wants to verify can trust :attr:`Certs.ca_path`. The
TSA certificate (``tsa.pem``) has the critical extendedKeyUsage timeStamping
that RFC 3161 asks for, so the sandbox TSA's tokens verify against the same CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Certs:
    ca_path: Path
    cert_path: Path
    key_path: Path
    tsa_cert_path: Path
    tsa_key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A context that verifies against the sandbox CA (for tests)."""
        return ssl.create_default_context(cafile=str(self.ca_path))


def make_certs(folder: Path, names: list[str], ips: list[str]) -> Certs:
    """Create the CA and a leaf certificate for ``names`` and ``ips`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    # The validity window is wall-clock by nature: TLS clients check it against the real time.
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    later = now + dt.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tocsin sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "tocsin sandbox throwaway CA"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(set(names))]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(set(ips))]

    def issued(
        subject: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        """What every certificate the CA issues has: issuer, validity, not a CA, its key id."""
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )

    leaf = (
        issued(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tocsin sandbox")]),
            key.public_key(),
        )
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        issued(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tocsin sandbox"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "tocsin sandbox TSA"),
                ]
            ),
            tsa_key.public_key(),
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certs(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "tsa.pem",
        folder / "tsa.key",
    )
    certs.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.tsa_cert_path.write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    certs.cert_path.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    )
    for path, private in ((certs.key_path, key), (certs.tsa_key_path, tsa_key)):
        path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
    return certs
