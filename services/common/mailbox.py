"""Whether a secure messaging address may be written to: one strict check for every service.

An address is taken only when it is exactly one plain addr-spec (a conservative subset of
RFC 5321: dot-atom local part, host name domain; no display name, comment, quoting or route) and,
to be sendable, when its domain is in the MSSanté trust space. Anything looser lets a directory
value such as ``a,b@x.mssante.fr`` be read by a mail library as another address (``a``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# MSSanté is a closed trust space whose mail domains are mssante.fr and its sub-domains.
MSSANTE_DOMAIN = "mssante.fr"

# RFC 5322 atext without "%" and "!", which some relays still read as source routes.
_ATOM = r"[A-Za-z0-9#$&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)

_MAX_LOCAL_PART = 64
_MAX_DOMAIN = 253
_MAX_ADDRESS = 254


def plain_address(address: object) -> str | None:
    """The address with its domain lower-cased when it is exactly one plain addr-spec, else None.

    Nothing is stripped or unfolded: a space, a control character or a second ``@`` anywhere
    refuses the address rather than being repaired.
    """
    if not isinstance(address, str) or not address.isascii() or len(address) > _MAX_ADDRESS:
        return None
    local_part, at, domain = address.partition("@")
    if not at or "@" in domain:
        return None
    if len(local_part) > _MAX_LOCAL_PART or not _LOCAL_PART.fullmatch(local_part):
        return None
    labels = domain.split(".")
    if len(domain) > _MAX_DOMAIN or len(labels) < 2:
        return None
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return f"{local_part}@{domain.lower()}"


def in_trust_space(domain: str, extra_domains: Iterable[str] = ()) -> bool:
    """True for mssante.fr, its sub-domains, and the same for each domain an operator added."""
    domain = domain.lower()
    trusted = {MSSANTE_DOMAIN, *(item.strip().strip(".").lower() for item in extra_domains)}
    trusted.discard("")
    return any(domain == item or domain.endswith(f".{item}") for item in trusted)


def secure_address(address: object, extra_domains: Iterable[str] = ()) -> str | None:
    """The address, domain lower-cased, when it is plain and in the trust space, else None."""
    plain = plain_address(address)
    if plain is None or not in_trust_space(plain.rpartition("@")[2], extra_domains):
        return None
    return plain
