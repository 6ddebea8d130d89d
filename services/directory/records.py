"""A practitioner's stored state as the value of the ``practitioners`` topic (``Practitioner``).

Pure: a mapping of the database's columns in, the record out. The topic is compacted and keyed
by RPPS, so each record is the whole current state, never a delta.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from services.common import records
from services.common.preferences import choices_of
from services.common.records import Mailbox, MailboxType, NotificationPreferences, Practitioner

MAILBOX_TYPES: Mapping[str, MailboxType] = {kind.value: kind for kind in MailboxType}


def practitioner_record(state: Mapping[str, Any]) -> Practitioner:
    """The ``Practitioner`` record of one practitioner's row, mailboxes and preferences.

    A preferred address that is no longer among the practitioner's secure mailboxes is not
    carried: consumers may rely on ``preferred_address`` being one of ``mailboxes``.
    """
    mailboxes = tuple(
        Mailbox(
            address=mailbox["address"],
            mailbox_type=MAILBOX_TYPES.get(mailbox["mailbox_type"], MailboxType.OTHER),
            domain=mailbox["domain"],
        )
        for mailbox in sorted(state.get("mailboxes") or [], key=lambda item: item["address"])
    )
    preferred = state.get("preferred_address")
    if preferred not in {mailbox.address for mailbox in mailboxes}:
        preferred = None
    updated_at = state["updated_at"]
    if isinstance(updated_at, dt.datetime) and updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=dt.UTC)
    return Practitioner(
        rpps=state["rpps"],
        civility=state.get("civility"),
        family_name=state["family_name"],
        given_name=state["given_name"],
        profession_code=state.get("profession_code"),
        profession=state.get("profession"),
        specialty_code=state.get("specialty_code"),
        specialty=state.get("specialty"),
        structure_name=state.get("structure_name"),
        city=state.get("city"),
        postcode=state.get("postcode"),
        mailboxes=mailboxes,
        preferences=NotificationPreferences(
            opted_out=bool(state.get("opted_out")),
            preferred_address=preferred,
            # The row's columns are those of the record; NULL ones are the defaults.
            delivery=records.DeliveryChoices.from_avro(choices_of(state).record()),
        ),
        updated_at=updated_at,
    )
