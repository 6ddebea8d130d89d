"""The local GHT CA and the certificates it issues, under ``.stack/tls/``: the gateway's (SAN
localhost and 127.0.0.1) and one client certificate per establishment (CN from
``establishments.csv``). Files still valid are kept, so running it again changes nothing."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.establishments import Establishment, load_establishments
from services.common.tls import TlsFiles

CA_NAME = "Harpicoop local GHT CA"
GATEWAY_CN = "localhost"
VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)
"""A certificate this close to its end is issued again."""

PrivateKey = ec.EllipticCurvePrivateKey


def _write_key(path: Path, key: PrivateKey) -> None:
    path.unlink(missing_ok=True)
    # Created 0600 from the start: a key is never readable by others, even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _valid(cert_path: Path, key_path: Path, ca: x509.Certificate | None) -> bool:
    """The pair exists, matches, is not about to expire, and (unless it is the CA) was signed
    by ``ca``."""
    if not cert_path.exists() or not key_path.exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if cert.public_key() != key.public_key():
            return False
        if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
            return False
        if ca is not None:
            cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issue(
    subject: str,
    key: PrivateKey,
    issuer: tuple[x509.Certificate, PrivateKey] | None,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(signing_key, hashes.SHA256())


def _leaf(
    cert_path: Path,
    key_path: Path,
    subject: str,
    ca: tuple[x509.Certificate, PrivateKey],
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> bool:
    if _valid(cert_path, key_path, ca[0]):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        *extensions,
    ]
    cert = _issue(subject, key, ca, leaf_extensions)
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def ensure_tls(folder: Path, establishments: list[Establishment] | None = None) -> list[str]:
    """Create what is missing or no longer valid; the names of the files written."""
    files = TlsFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    written: list[str] = []
    if _valid(files.ca, files.ca_key, None):
        ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _issue(
            CA_NAME,
            ca_key,
            None,
            [
                (x509.BasicConstraints(ca=True, path_length=0), True),
                (
                    x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                    True,
                ),
            ],
        )
        _write_key(files.ca_key, ca_key)
        files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        written.append(files.ca.name)
    ca = (ca_cert, ca_key)
    gateway_names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    if _leaf(
        files.gateway_cert,
        files.gateway_key,
        GATEWAY_CN,
        ca,
        [
            (x509.SubjectAlternativeName(gateway_names), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    ):
        written.append(files.gateway_cert.name)
    for establishment in load_establishments() if establishments is None else establishments:
        if not establishment.tls_client_cn:
            continue
        if _leaf(
            files.client_cert(establishment.code),
            files.client_key(establishment.code),
            establishment.tls_client_cn,
            ca,
            [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
        ):
            written.append(files.client_cert(establishment.code).name)
    return written
