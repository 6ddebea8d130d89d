-- What the directory publishes to other principals (the operator): when it was last imported and
-- what changed. Readers are the members of directory_reader (deploy/access.toml, `views_of`).
CREATE VIEW v_imports AS
SELECT imported_at, rows_read, bad_rows, added, changed, removed, practitioners, mailboxes
FROM directory_import;

GRANT SELECT ON v_imports TO directory_reader;
