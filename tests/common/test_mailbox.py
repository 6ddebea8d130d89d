"""Which addresses may be written to: exactly one plain address, in the MSSanté trust space."""

from __future__ import annotations

import pytest

from services.common.mailbox import in_trust_space, plain_address, secure_address

ACCEPTED = [
    ("dr.martin@chru-nancy.mssante.fr", "dr.martin@chru-nancy.mssante.fr"),
    ("A@X.MSSANTE.FR", "A@x.mssante.fr"),
    ("jeanne.martin@medecin.mssante.fr", "jeanne.martin@medecin.mssante.fr"),
    ("secretariat@mssante.fr", "secretariat@mssante.fr"),
    ("o'neil+urgences@ch-toul.mssante.fr", "o'neil+urgences@ch-toul.mssante.fr"),
    ("a" * 64 + "@x.mssante.fr", "a" * 64 + "@x.mssante.fr"),
]

# Each of these is refused whatever the domain: it is not exactly one plain addr-spec.
MALFORMED = [
    "a,b@x.mssante.fr",
    "a@x.mssante.fr>",
    "<a@x.mssante.fr>",
    "Dr Martin <a@x.mssante.fr>",
    '"a b"@x.mssante.fr',
    '"a"@x.mssante.fr',
    "a@x.mssante.fr\r\nRCPT TO:<b@evil.com>",
    "a@x.mssante.fr\n",
    "a\x00@x.mssante.fr",
    "a@x.mssante.fr\x00",
    "a" * 65 + "@x.mssante.fr",
    "a;b@x.mssante.fr",
    "a(comment)@x.mssante.fr",
    "a@[127.0.0.1]",
    "a\\b@x.mssante.fr",
    "a b@x.mssante.fr",
    " a@x.mssante.fr",
    "a@x.mssante.fr ",
    "a@b@x.mssante.fr",
    "a%b@x.mssante.fr",
    "b!a@x.mssante.fr",
    "@x.mssante.fr",
    "a@",
    "no-at-sign",
    ".a@x.mssante.fr",
    "a.@x.mssante.fr",
    "a..b@x.mssante.fr",
    "a@x..mssante.fr",
    "a@x.mssante.fr.",
    "a@-x.mssante.fr",
    "a@x-.mssante.fr",
    "a@x_y.mssante.fr",
    "a@mssante",
    "a@" + "x" * 64 + ".mssante.fr",
    "a@" + "x." * 122 + "mssante.fr",
    "é@x.mssante.fr",
    "a@médecin.mssante.fr",
    "",
]

# Plain addresses whose domain is outside the trust space.
UNTRUSTED = [
    "a@evil-mssante.fr",
    "a@mssante.fr.evil.com",
    "a@notmssante.fr",
    "a@gmail.com",
]


@pytest.mark.parametrize(("address", "sendable"), ACCEPTED)
def test_a_plain_address_of_the_trust_space_is_sendable_with_its_domain_lower_cased(
    address: str, sendable: str
) -> None:
    assert plain_address(address) == sendable
    assert secure_address(address) == sendable


@pytest.mark.parametrize("address", MALFORMED)
def test_anything_but_one_plain_address_is_refused(address: str) -> None:
    assert plain_address(address) is None
    assert secure_address(address) is None
    assert secure_address(address, ["x.mssante.fr", "evil.com"]) is None


@pytest.mark.parametrize("address", UNTRUSTED)
def test_a_plain_address_outside_the_trust_space_is_not_sendable(address: str) -> None:
    assert plain_address(address) == address
    assert secure_address(address) is None


def test_an_address_longer_than_254_octets_is_refused() -> None:
    address = "a" * 64 + "@" + ".".join(["x" * 60] * 3) + ".mssante.fr"
    assert len(address) == 258
    assert plain_address(address) is None


def test_what_is_not_text_is_refused() -> None:
    assert plain_address(None) is None
    assert secure_address(b"a@x.mssante.fr") is None


def test_an_operator_may_add_a_secure_domain_and_its_sub_domains_only() -> None:
    extra = ["Apicrypt.org"]
    assert secure_address("dr@apicrypt.org", extra) == "dr@apicrypt.org"
    assert secure_address("dr@LIST.apicrypt.org", extra) == "dr@list.apicrypt.org"
    assert secure_address("dr@evil-apicrypt.org", extra) is None
    assert secure_address("dr@apicrypt.org.evil.com", extra) is None


def test_an_empty_extra_domain_trusts_nothing_more() -> None:
    assert not in_trust_space("evil.com", ["", " ", "."])
