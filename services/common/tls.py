"""MLLP over TLS, the client's side and the file layout the local stack writes (``.stack/tls/``).

The gateway's own context lives in ``services/gateway/tls.py``; engines (the simulator, tests,
benchmarks) connect with ``client_context``: the GHT's CA to check the gateway, and the
establishment's own certificate to be recognised by it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """The PKI of one folder: ``ca.pem``, ``gateway.pem`` + ``gateway-key.pem``, and
    ``<code>.pem`` + ``<code>-key.pem`` per establishment."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """Kept beside the CA so that a new establishment's certificate can be issued later."""
        return self.folder / "ca-key.pem"

    @property
    def gateway_cert(self) -> Path:
        return self.folder / "gateway.pem"

    @property
    def gateway_key(self) -> Path:
        return self.folder / "gateway-key.pem"

    def client_cert(self, code: str) -> Path:
        return self.folder / f"{code}.pem"

    def client_key(self, code: str) -> Path:
        return self.folder / f"{code}-key.pem"

    def gateway_environment(self) -> dict[str, str]:
        """The gateway's settings pointing at these files."""
        return {
            "MLLP_TLS_CERT": str(self.gateway_cert),
            "MLLP_TLS_KEY": str(self.gateway_key),
            "MLLP_TLS_CLIENT_CA": str(self.ca),
        }

    def client_context(self, code: str) -> ssl.SSLContext:
        """What establishment ``code``'s engine connects with."""
        return client_context(self.ca, self.client_cert(code), self.client_key(code))


def client_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """TLS 1.2 or newer, the gateway checked against ``ca``; ``cert`` is the engine's own (None
    only to show that the gateway refuses a client without one)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context
