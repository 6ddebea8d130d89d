"""What notify remembers to say nothing of a stay or a patient, in its PostgreSQL schema
(migration 009): each stay's protection indicators and the opposition register.

- Protection: PD1-12 (the patient) and PV2-22 (the stay), as the stay's events said them. A
  message that does not say keeps what an earlier one said; only an explicit N lifts a Y (the
  establishment's engine is the one that knows the patient changed their mind).
- Opposition: an active objection by the patient's qualified INS (every establishment) or by the
  establishment and IPP (that establishment). The operator records it (``harpicoop opposition``,
  through the migration's functions); waiting notices of the patient are then withdrawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.common.outbox import Conn, change_and_announce
from services.common.records import StayEvent
from services.common.skip_reasons import SkipReason
from services.notify.status import STATUS_COLUMNS, StatusRecorder

_OPPOSED = (
    "EXISTS (SELECT 1 FROM opposition o WHERE o.lifted_at IS NULL AND (o.ins = s.ins OR "
    "(o.ipp IS NOT NULL AND o.establishment = s.establishment AND o.ipp = s.ipp)))"
)


@dataclass(frozen=True)
class StayPrivacy:
    protected: bool
    opposed: bool


def remember_stay(conn: Conn, event: StayEvent) -> StayPrivacy:
    """Record what the event says of its stay's protection and patient; what now holds."""
    patient = event.patient
    row = conn.execute(
        "WITH s AS ("
        "  INSERT INTO stay_privacy AS old (stay_key, establishment, ipp, ins, patient_protected,"
        "    stay_protected, protected_since)"
        "  VALUES (%(stay)s, %(establishment)s, %(ipp)s, %(ins)s, %(patient)s, %(visit)s,"
        "    CASE WHEN coalesce(%(patient)s, false) OR coalesce(%(visit)s, false) THEN now() END)"
        "  ON CONFLICT (stay_key) DO UPDATE SET ipp = EXCLUDED.ipp,"
        "    ins = coalesce(EXCLUDED.ins, old.ins),"
        "    patient_protected = coalesce(EXCLUDED.patient_protected, old.patient_protected),"
        "    stay_protected = coalesce(EXCLUDED.stay_protected, old.stay_protected),"
        "    protected_since = CASE WHEN"
        "      coalesce(EXCLUDED.patient_protected, old.patient_protected, false)"
        "      OR coalesce(EXCLUDED.stay_protected, old.stay_protected, false)"
        "      THEN coalesce(old.protected_since, now()) END,"
        "    updated_at = now()"
        "  RETURNING stay_key, establishment, ipp, ins, protected_since)"
        f" SELECT s.protected_since IS NOT NULL, {_OPPOSED} FROM s",
        {
            "stay": event.stay_key,
            "establishment": event.establishment,
            "ipp": patient.ipp,
            "ins": patient.ins,
            "patient": event.patient_protected,
            "visit": event.stay_protected,
        },
    ).fetchone()
    assert row is not None  # an upsert always returns its row
    return StayPrivacy(bool(row[0]), bool(row[1]))


def stay_privacy(conn: Conn, stay_key: str) -> StayPrivacy:
    """What holds for a stay already seen (a Covid-19 follow-up's); nothing for one never seen."""
    row = conn.execute(
        f"SELECT s.protected_since IS NOT NULL, {_OPPOSED} FROM stay_privacy s "
        "WHERE s.stay_key = %s",
        (stay_key,),
    ).fetchone()
    return StayPrivacy(bool(row[0]), bool(row[1])) if row else StayPrivacy(False, False)


def withdraw_withheld(conn: Conn, statuses: StatusRecorder, stay_key: str | None = None) -> int:
    """Notices still waiting to go for a protected stay or an opposed patient become skipped,
    with the reason, each status published (all such stays, or only ``stay_key``)."""
    only, stay = ("", ()) if stay_key is None else (" AND n.stay_key = %s", (stay_key,))
    withdrawn = 0
    protected = "SELECT stay_key FROM stay_privacy WHERE protected_since IS NOT NULL"
    for reason, stays in (
        (SkipReason.PROTECTED, protected),
        (SkipReason.OPPOSED, "SELECT stay_key FROM opposed_stay"),
    ):
        withdrawn += change_and_announce(
            conn,
            "UPDATE notification n SET state = 'skipped', detail = %s, updated_at = now() "
            f"WHERE n.state IN ('pending', 'retrying') AND n.stay_key IN ({stays}){only}",
            (reason.sentence, *stay),
            STATUS_COLUMNS,
            statuses.record,
        )
    return withdrawn


# The operator's side of the register (``harpicoop opposition``): through the migration's
# functions only, named with notify's schema (the operator's role has no search path of its own).


@dataclass(frozen=True)
class Recorded:
    opposition_id: int
    created: bool
    """False: the patient's objection was already in the register (this id)."""
    held: int
    """Waiting notices held at once, to be recorded as skipped by notify."""


@dataclass(frozen=True)
class Opposition:
    opposition_id: int
    establishment: str
    ins: str | None
    ipp: str | None
    recorded_at: dt.datetime


def record_opposition(conn: Conn, establishment: str, ins: str | None, ipp: str | None) -> Recorded:
    row = conn.execute(
        "SELECT opposition_id, created, held FROM notify.record_opposition(%s, %s, %s)",
        (establishment, ins, ipp),
    ).fetchone()
    assert row is not None  # the function always returns one row
    return Recorded(int(row[0]), bool(row[1]), int(row[2]))


def lift_opposition(conn: Conn, opposition_id: int) -> bool:
    row = conn.execute("SELECT notify.lift_opposition(%s)", (opposition_id,)).fetchone()
    return bool(row and row[0])


def list_oppositions(conn: Conn) -> list[Opposition]:
    rows = conn.execute(
        "SELECT opposition_id, establishment, ins, ipp, recorded_at FROM notify.list_oppositions()"
    ).fetchall()
    return [Opposition(int(row[0]), row[1], row[2], row[3], row[4]) for row in rows]


def purge_stays(conn: Conn, retention: dt.timedelta, limit: int) -> int:
    """Forget, in one transaction, up to ``limit`` stays nothing was heard of for ``retention``
    (their patient's identifiers go with them); how many. The opposition register is kept: it is
    the patient's standing request, lifted only when they withdraw it."""
    with conn.transaction():
        return conn.execute(
            "DELETE FROM stay_privacy WHERE stay_key IN ("
            "  SELECT stay_key FROM stay_privacy WHERE updated_at < now() - %s"
            "  ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED)",
            (retention, limit),
        ).rowcount
