-- A40 merges: an establishment's patient record (IPP) merged into another. The merged record's
-- open cases move to the survivor (its patient, INS and identity key), and the merge is kept:
-- it comes straight from the gateway, while the merged record's last events come through dedup
-- and enrich, so one of them may arrive after it; it is read as the survivor's too.
CREATE TABLE covid_patient_merge (
    establishment  text        NOT NULL,
    merged_ipp     text        NOT NULL,
    -- The surviving patient; when the survivor is merged in turn, its successor.
    patient        jsonb       NOT NULL,
    merge_event_id text        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (establishment, merged_ipp)
);

CREATE INDEX covid_patient_merge_by_survivor
    ON covid_patient_merge (establishment, (patient ->> 'ipp'));
-- Kept as long as a closed case (COVID_RETENTION_DAYS): it holds the survivor's identity.
CREATE INDEX covid_patient_merge_recorded ON covid_patient_merge (recorded_at);

-- An establishment's record's open cases, as a merge names them.
CREATE INDEX covid_case_open_by_record
    ON covid_case (establishment, (patient ->> 'ipp')) WHERE state <> 'CLOSED';
