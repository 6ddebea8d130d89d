-- Retention by purpose: a case is deleted COVID_RETENTION_DAYS after it closed, and a tombstone
-- takes it off covid.followups (through the outbox, in the same transaction).
CREATE INDEX covid_case_closed ON covid_case (closed_at) WHERE state = 'CLOSED';

-- The ids of purged cases, and nothing else of them: a case id is derived from its discharge's
-- movement, so a replayed discharge (a dead letter replayed, a re-enrichment) would otherwise
-- open the case again, patient data and all, after it was purged.
CREATE TABLE covid_case_purged (
    case_id   uuid        PRIMARY KEY,
    purged_at timestamptz NOT NULL DEFAULT now()
);
