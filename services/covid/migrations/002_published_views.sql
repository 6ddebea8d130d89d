-- What covid publishes to other principals (the dashboard, the run summary and its checks):
-- each follow-up case's ids, status, state and times. Never the patient, the INS, the identity
-- key or the GP. Readers are the members of covid_reader (deploy/access.toml, `views_of`); the
-- view runs with covid's rights, so they need none on the cases themselves.
CREATE VIEW v_cases AS
SELECT case_id, establishment, movement_key, covid_status, state, opened_at, discharged_at,
       reminders_sent, closed_at, close_reason
FROM covid_case;

GRANT SELECT ON v_cases TO covid_reader;
