"""The gateway's TLS: its server context (TLS 1.2 or newer, a client certificate signed by the
GHT's CA required) and which establishment a connection's certificate belongs to.

Settings: ``MLLP_TLS_CERT``, ``MLLP_TLS_KEY``, ``MLLP_TLS_CLIENT_CA``; ``MLLP_TLS=off`` is the only
way to listen in clear, and the gateway warns when it does.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.establishments import Establishment
from services.common.settings import SettingsError, read_config, setting


@dataclass(frozen=True)
class MllpTls:
    mode: str = setting("on", "MLLP_TLS")
    """``on`` (the default) or ``off``."""
    cert: Path | None = setting(None, "MLLP_TLS_CERT")
    key: Path | None = setting(None, "MLLP_TLS_KEY")
    client_ca: Path | None = setting(None, "MLLP_TLS_CLIENT_CA")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MllpTls:
        tls = read_config(cls, environ)
        if tls.mode.strip().lower() not in ("on", "off"):
            raise SettingsError(f"MLLP_TLS={tls.mode!r}: use on or off")
        return tls

    @property
    def enabled(self) -> bool:
        return self.mode.strip().lower() != "off"

    def server_context(self) -> ssl.SSLContext | None:
        """None when TLS is off; raises ``SettingsError`` saying what to set when a file is
        missing."""
        if not self.enabled:
            return None
        named = {"MLLP_TLS_CERT": self.cert, "MLLP_TLS_KEY": self.key}
        named["MLLP_TLS_CLIENT_CA"] = self.client_ca
        missing = [
            f"{name} ({'not set' if path is None else f'{path} not found'})"
            for name, path in named.items()
            if path is None or not path.is_file()
        ]
        if missing:
            raise SettingsError(
                "MLLP over TLS needs the gateway's certificate, its key and the CA of the "
                f"establishments' certificates: set {', '.join(missing)}; or MLLP_TLS=off to "
                "listen in clear"
            )
        assert self.cert is not None and self.key is not None and self.client_ca is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.client_ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED  # no certificate, no connection
        context.load_cert_chain(self.cert, self.key)
        return context


class UnknownClient(Exception):
    """A certificate signed by the CA but bound to no establishment."""


@dataclass(frozen=True)
class ClientBinding:
    """Client certificate CN → the establishment it speaks for (``establishments.csv``)."""

    by_cn: Mapping[str, Establishment]

    def establishment_of(self, writer: asyncio.StreamWriter) -> str | None:
        """The code of the establishment whose certificate opened this connection; None on a
        connection in clear. Raises ``UnknownClient`` for a certificate bound to none."""
        if writer.get_extra_info("ssl_object") is None:
            return None
        cn = peer_common_name(writer.get_extra_info("peercert"))
        establishment = self.by_cn.get(cn) if cn is not None else None
        if establishment is None:
            raise UnknownClient(cn or "no CN")
        return establishment.code


def peer_common_name(certificate: object) -> str | None:
    """The subject CN of a certificate as ``ssl.SSLSocket.getpeercert()`` gives it."""
    if not isinstance(certificate, dict):
        return None
    for rdn in certificate.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None
