"""Follow-up cases in PostgreSQL; every state change is published on ``covid.followups``.

The change and its record commit together (the common outbox), and timers are columns
(``remind_at``, ``complete_at``) rather than in-memory schedules: they survive restarts, and
several replicas share them through ``FOR UPDATE SKIP LOCKED``. A case is deleted
``COVID_RETENTION_DAYS`` after it closed, with a tombstone for its key in the same transaction;
only its id is kept, so that a replayed discharge does not open it again.

A patient merge (A40) moves the merged record's open cases to the survivor and is remembered
(``covid_patient_merge``) for the merged record's events that arrive after it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from services.common.movements import movement_key
from services.common.outbox import Conn, change_and_announce, enqueue
from services.common.records import (
    CloseReason,
    CovidFollowup,
    CovidStatus,
    FollowupState,
    Patient,
    Recipient,
    StayEvent,
)
from services.common.serde import RecordSerde
from services.covid.rules import PatientRecord, case_id, identity_key

OUTBOX_OWNER = "covid"


class FollowupPublisher:
    """Turns case rows into CovidFollowup records in the outbox."""

    def __init__(self, serde: RecordSerde[CovidFollowup], topic: str) -> None:
        self.serde = serde
        self.topic = topic

    def publish(self, conn: Conn, row: Mapping[str, Any]) -> None:
        followup = CovidFollowup(
            case_id=str(row["case_id"]),
            stay_key=row["stay_key"],
            establishment=row["establishment"],
            discharge_event_id=row["discharge_event_id"],
            patient=_patient_from_json(row["patient"]),
            covid_status=CovidStatus(row["covid_status"]),
            state=FollowupState(row["state"]),
            gp=Recipient.from_avro(row["gp"]) if row["gp"] else None,
            opened_at=row["opened_at"],
            remind_at=row["remind_at"],
            reminders_sent=row["reminders_sent"],
            closed_at=row["closed_at"],
            close_reason=CloseReason(row["close_reason"]) if row["close_reason"] else None,
            updated_at=row["updated_at"],
        )
        enqueue(
            conn,
            OUTBOX_OWNER,
            self.topic,
            followup.case_id,
            self.serde.serialize(self.topic, followup),
        )

    def forget(self, conn: Conn, row: Mapping[str, Any]) -> None:
        """A tombstone for a purged case: compaction then removes its records from the topic."""
        enqueue(conn, OUTBOX_OWNER, self.topic, str(row["case_id"]), None)


def _patient_to_json(patient: Patient) -> str:
    birth = patient.birth_date
    return json.dumps({**patient.to_avro(), "birth_date": birth.isoformat() if birth else None})


def _patient_from_json(stored: Mapping[str, Any]) -> Patient:
    """A patient as the case table keeps it (JSON of its Avro value, written by any version:
    fields added since take their defaults)."""
    birth = stored.get("birth_date")
    return Patient.from_avro(
        {**stored, "birth_date": dt.date.fromisoformat(birth) if birth else None}
    )


def _changed(conn: Conn, publisher: FollowupPublisher, sql: str, params: tuple[Any, ...]) -> int:
    # Every case a statement changed is published on covid.followups, in the same transaction.
    return change_and_announce(conn, sql, params, "*", publisher.publish)


def open_case(
    conn: Conn,
    publisher: FollowupPublisher,
    event: StayEvent,
    gp: Recipient | None,
    reminder_delay: dt.timedelta,
    complete_after: dt.timedelta,
) -> int:
    """Open the case of a discharge (a replay changes nothing; a correction updates the status).

    A discharge that comes so late (replayed, or sent late by its engine) that its reminder
    would already be due opens without one: the GP gets the follow-up alone, not a follow-up
    and a reminder together, and the case completes ``complete_after`` from now."""
    movement = movement_key(event)
    discharged_at = event.movement.occurred_at
    patient = event.patient
    if conn.execute(
        "SELECT 1 FROM covid_case_purged WHERE case_id = %s", (case_id(movement),)
    ).fetchone():
        return 0  # followed, closed and purged already: a replay of its discharge
    return _changed(
        conn,
        publisher,
        "INSERT INTO covid_case (case_id, stay_key, establishment, discharge_event_id, "
        "movement_key, ins, identity_key, patient, gp, covid_status, state, opened_at, "
        "discharged_at, remind_at, complete_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "'OPEN', now(), %s, CASE WHEN %s > now() THEN %s END, "
        "CASE WHEN %s > now() THEN NULL ELSE now() + %s END) "
        "ON CONFLICT (case_id) DO UPDATE SET covid_status = EXCLUDED.covid_status, "
        "updated_at = now() WHERE covid_case.state <> 'CLOSED' "
        "AND covid_case.covid_status <> EXCLUDED.covid_status",
        (
            case_id(movement),
            event.stay_key,
            event.establishment,
            event.event_id,
            movement,
            patient.ins,
            identity_key(patient),
            _patient_to_json(patient),
            json.dumps(gp.to_avro()) if gp else None,
            str(event.covid_status),
            discharged_at,
            discharged_at + reminder_delay,
            discharged_at + reminder_delay,
            discharged_at + reminder_delay,
            complete_after,
        ),
    )


def close_for_patient(
    conn: Conn,
    publisher: FollowupPublisher,
    event: StayEvent,
    reason: str,
    *,
    strictly_after: bool,
) -> int:
    """Close the patient's open cases opened by a discharge before this event."""
    patient = event.patient
    comparison = ">" if strictly_after else ">="
    return _changed(
        conn,
        publisher,
        "UPDATE covid_case SET state = 'CLOSED', closed_at = now(), close_reason = %s, "
        "remind_at = NULL, complete_at = NULL, updated_at = now() "
        "WHERE state <> 'CLOSED' AND (identity_key = %s OR (ins IS NOT NULL AND ins = %s)) "
        f"AND %s {comparison} discharged_at",
        (reason, identity_key(patient), patient.ins, event.movement.occurred_at),
    )


def close_cancelled(conn: Conn, publisher: FollowupPublisher, event: StayEvent) -> int:
    movement = movement_key(event)
    return _changed(
        conn,
        publisher,
        "UPDATE covid_case SET state = 'CLOSED', closed_at = now(), "
        "close_reason = 'DISCHARGE_CANCELLED', remind_at = NULL, complete_at = NULL, "
        "updated_at = now() WHERE movement_key = %s AND state <> 'CLOSED'",
        (movement,),
    )


def remind_due(conn: Conn, publisher: FollowupPublisher, complete_after: dt.timedelta) -> int:
    """Open cases whose reminder date has come are reminded (once)."""
    with conn.transaction():
        return _changed(
            conn,
            publisher,
            "UPDATE covid_case SET state = 'REMINDED', reminders_sent = reminders_sent + 1, "
            "remind_at = NULL, complete_at = now() + %s, updated_at = now() "
            "WHERE case_id IN (SELECT case_id FROM covid_case WHERE state = 'OPEN' "
            "AND remind_at <= now() ORDER BY remind_at LIMIT 200 FOR UPDATE SKIP LOCKED)",
            (complete_after,),
        )


def complete_due(conn: Conn, publisher: FollowupPublisher) -> int:
    """Reminded cases left untouched long enough are closed as complete, and so are the cases
    opened too late for a reminder (``open_case``)."""
    with conn.transaction():
        return _changed(
            conn,
            publisher,
            "UPDATE covid_case SET state = 'CLOSED', closed_at = now(), "
            "close_reason = 'FOLLOWUP_COMPLETE', complete_at = NULL, updated_at = now() "
            "WHERE case_id IN (SELECT case_id FROM covid_case WHERE state IN ('OPEN', 'REMINDED') "
            "AND complete_at <= now() LIMIT 200 FOR UPDATE SKIP LOCKED)",
            (),
        )


def record_merge(conn: Conn, merged: PatientRecord, survivor: Patient, merge_event_id: str) -> bool:
    """Remember that ``merged`` is ``survivor`` now; records merged earlier into ``merged``
    follow it to its survivor. Whether the merge was new (a replay records nothing)."""
    patient = _patient_to_json(survivor)
    conn.execute(
        "UPDATE covid_patient_merge SET patient = %s WHERE establishment = %s "
        "AND patient ->> 'ipp' = %s",
        (patient, merged.establishment, merged.ipp),
    )
    return (
        conn.execute(
            # clock_timestamp(), not the column's now(): the time of the intake's transaction,
            # which may have begun well before this merge came.
            "INSERT INTO covid_patient_merge "
            "(establishment, merged_ipp, patient, merge_event_id, recorded_at) "
            "VALUES (%s, %s, %s, %s, clock_timestamp()) ON CONFLICT DO NOTHING RETURNING 1",
            (merged.establishment, merged.ipp, patient, merge_event_id),
        ).fetchone()
        is not None
    )


def survivor_of(conn: Conn, record: PatientRecord) -> Patient | None:
    """The patient a merged record is now, or None if it was not merged."""
    row = conn.execute(
        "SELECT patient FROM covid_patient_merge WHERE establishment = %s AND merged_ipp = %s",
        (record.establishment, record.ipp),
    ).fetchone()
    return _patient_from_json(row[0]) if row else None


def move_cases(
    conn: Conn, publisher: FollowupPublisher, merged: PatientRecord, survivor: Patient
) -> int:
    """The merged record's open and reminder-pending cases become the survivor's: its patient
    data, INS and identity key, so that its later events (a readmission, a death) find them.
    A replay finds none left under the merged IPP and changes nothing. Closed cases are history
    and stay as they were."""
    return _changed(
        conn,
        publisher,
        "UPDATE covid_case SET patient = %s, ins = %s, identity_key = %s, updated_at = now() "
        "WHERE state <> 'CLOSED' AND establishment = %s AND patient ->> 'ipp' = %s",
        (
            _patient_to_json(survivor),
            survivor.ins,
            identity_key(survivor),
            merged.establishment,
            merged.ipp,
        ),
    )


def purge_merges(conn: Conn, retention: dt.timedelta, limit: int) -> int:
    """Forget up to ``limit`` merges recorded longer than ``retention`` ago; how many."""
    with conn.transaction():
        return conn.execute(
            "DELETE FROM covid_patient_merge WHERE (establishment, merged_ipp) IN ("
            "SELECT establishment, merged_ipp FROM covid_patient_merge "
            "WHERE recorded_at < now() - %s ORDER BY recorded_at LIMIT %s "
            "FOR UPDATE SKIP LOCKED)",
            (retention, limit),
        ).rowcount


def purge_closed(
    conn: Conn, publisher: FollowupPublisher, retention: dt.timedelta, limit: int
) -> int:
    """Delete, in one transaction, up to ``limit`` cases closed longer than ``retention`` ago,
    each with its tombstone in the outbox and its id kept; how many."""

    def forget(conn: Conn, row: Mapping[str, Any]) -> None:
        conn.execute(
            "INSERT INTO covid_case_purged (case_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (row["case_id"],),
        )
        publisher.forget(conn, row)

    with conn.transaction():
        return change_and_announce(
            conn,
            "DELETE FROM covid_case WHERE case_id IN (SELECT case_id FROM covid_case "
            "WHERE state = 'CLOSED' AND closed_at < now() - %s ORDER BY closed_at LIMIT %s "
            "FOR UPDATE SKIP LOCKED)",
            (retention, limit),
            "case_id",
            forget,
        )
