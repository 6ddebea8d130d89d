-- One follow-up case per discharge with a POSITIVE or SUSPECTED Covid-19 status.
-- The patient is recognised across establishments by INS when qualified, else by an identity
-- key (normalised names, birth date, sex): IPPs are per establishment.
CREATE TABLE covid_case (
    case_id            uuid        PRIMARY KEY,
    stay_key           text        NOT NULL,
    establishment      text        NOT NULL,
    discharge_event_id text        NOT NULL,
    movement_key       text        NOT NULL,
    ins                text,
    identity_key       text        NOT NULL,
    patient            jsonb       NOT NULL,
    gp                 jsonb,
    covid_status       text        NOT NULL,
    state              text        NOT NULL CHECK (state IN ('OPEN', 'REMINDED', 'CLOSED')),
    opened_at          timestamptz NOT NULL,
    discharged_at      timestamptz NOT NULL,
    remind_at          timestamptz,
    complete_at        timestamptz,
    reminders_sent     integer     NOT NULL DEFAULT 0,
    closed_at          timestamptz,
    close_reason       text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX covid_case_open_by_ins ON covid_case (ins) WHERE state <> 'CLOSED';
CREATE INDEX covid_case_open_by_identity ON covid_case (identity_key) WHERE state <> 'CLOSED';
CREATE INDEX covid_case_due ON covid_case (remind_at) WHERE state = 'OPEN';
CREATE INDEX covid_case_by_movement ON covid_case (movement_key);
