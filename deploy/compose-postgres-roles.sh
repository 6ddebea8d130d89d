#!/bin/sh
# Generated from deploy/access.toml by
#     .venv/bin/python -m tests.deploy.generate_access
# Do not edit: tests/deploy/test_access_manifests.py checks that this file is what it implies.
# Run once by the postgres image when compose creates its volume (deploy/compose.yaml): a role
# per principal that connects, with the password of its variable in deploy/.env.
psql --set=ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=notify="$NOTIFY_DATABASE_PASSWORD" \
    --set=analytics="$ANALYTICS_DATABASE_PASSWORD" \
    --set=covid="$COVID_DATABASE_PASSWORD" \
    --set=directory="$DIRECTORY_DATABASE_PASSWORD" \
    --set=dashboard="$DASHBOARD_DATABASE_PASSWORD" \
    --set=operator="$OPERATOR_DATABASE_PASSWORD" \
    --set=registry="$REGISTRY_DATABASE_PASSWORD" \
    <<'SQL'
CREATE ROLE notify LOGIN PASSWORD :'notify';
CREATE ROLE analytics LOGIN PASSWORD :'analytics';
CREATE ROLE covid LOGIN PASSWORD :'covid';
CREATE ROLE directory LOGIN PASSWORD :'directory';
CREATE ROLE dashboard LOGIN PASSWORD :'dashboard';
CREATE ROLE operator LOGIN PASSWORD :'operator';
CREATE ROLE registry LOGIN PASSWORD :'registry';
CREATE SCHEMA notify AUTHORIZATION notify;
CREATE SCHEMA analytics AUTHORIZATION analytics;
CREATE SCHEMA covid AUTHORIZATION covid;
CREATE SCHEMA directory AUTHORIZATION directory;
REVOKE ALL ON DATABASE harpicoop FROM PUBLIC;
GRANT CONNECT ON DATABASE harpicoop TO notify;
GRANT CONNECT ON DATABASE harpicoop TO analytics;
GRANT CONNECT ON DATABASE harpicoop TO covid;
GRANT CONNECT ON DATABASE harpicoop TO directory;
GRANT CONNECT ON DATABASE harpicoop TO dashboard;
GRANT CONNECT ON DATABASE harpicoop TO operator;
GRANT USAGE ON SCHEMA notify, analytics, covid TO dashboard;
GRANT USAGE ON SCHEMA notify, analytics, covid, directory TO operator;
CREATE DATABASE registry OWNER registry;
REVOKE ALL ON DATABASE registry FROM PUBLIC;
SQL
