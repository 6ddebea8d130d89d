-- A resend changes the ledger: only the principals that operate notify (deploy/access.toml,
-- `operates`, members of notify_operator) may ask for one. PostgreSQL lets PUBLIC execute every
-- new function, so a reader of the published views (the dashboard) could have resent notices.
REVOKE EXECUTE ON FUNCTION request_resend(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION request_resend(uuid, boolean) TO notify_operator;
