-- The practitioner directory as of the last import, the practitioners' own preferences, and the
-- outbox of changes still to publish on the `practitioners` topic.

CREATE TABLE practitioner (
    rpps            text        PRIMARY KEY,
    civility        text,
    family_name     text        NOT NULL,
    given_name      text        NOT NULL,
    profession_code text,
    profession      text,
    specialty_code  text,
    specialty       text,
    structure_name  text,
    city            text,
    postcode        text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Secure mailboxes only: an address is here because the MSSanté extract lists it.
CREATE TABLE mailbox (
    rpps         text NOT NULL REFERENCES practitioner ON DELETE CASCADE,
    address      text NOT NULL,
    mailbox_type text NOT NULL CHECK (mailbox_type IN ('PER', 'ORG', 'APP', 'CAB', 'OTHER')),
    domain       text NOT NULL,
    PRIMARY KEY (rpps, address)
);

-- The practitioner's choices, which no extract carries. Kept when the practitioner leaves the
-- directory: if they come back, an opt-out still holds.
CREATE TABLE practitioner_preferences (
    rpps              text        PRIMARY KEY,
    opted_out         boolean     NOT NULL DEFAULT false,
    preferred_address text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- RPPS numbers whose current state (or absence: a tombstone) is still to be published. Written
-- in the transaction that changes the state; a row is deleted only once Kafka has acknowledged
-- the record.
CREATE TABLE practitioner_outbox (
    id          bigserial   PRIMARY KEY,
    rpps        text        NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);

-- One row per successful import, for "when was the directory last refreshed, from what".
CREATE TABLE directory_import (
    id                 bigserial   PRIMARY KEY,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    personnes_file     text        NOT NULL,
    mssante_file       text        NOT NULL,
    rows_read          bigint      NOT NULL,
    bad_rows           bigint      NOT NULL,
    added              integer     NOT NULL,
    changed            integer     NOT NULL,
    removed            integer     NOT NULL,
    practitioners      integer     NOT NULL,
    mailboxes          integer     NOT NULL
);
