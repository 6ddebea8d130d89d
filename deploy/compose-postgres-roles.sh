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
CREATE ROLE "notify" LOGIN;
ALTER ROLE "notify" SET search_path = "notify";
CREATE ROLE "analytics" LOGIN;
ALTER ROLE "analytics" SET search_path = "analytics";
CREATE ROLE "covid" LOGIN;
ALTER ROLE "covid" SET search_path = "covid";
CREATE ROLE "directory" LOGIN;
ALTER ROLE "directory" SET search_path = "directory";
CREATE ROLE "dashboard" LOGIN;
CREATE ROLE "operator" LOGIN;
CREATE ROLE "notify_reader" NOLOGIN;
CREATE ROLE "analytics_reader" NOLOGIN;
CREATE ROLE "covid_reader" NOLOGIN;
CREATE ROLE "directory_reader" NOLOGIN;
GRANT "notify_reader" TO "dashboard";
GRANT "notify_reader" TO "operator";
GRANT "analytics_reader" TO "dashboard";
GRANT "analytics_reader" TO "operator";
GRANT "covid_reader" TO "dashboard";
GRANT "covid_reader" TO "operator";
GRANT "directory_reader" TO "operator";
CREATE ROLE registry LOGIN;
ALTER ROLE notify PASSWORD :'notify';
ALTER ROLE analytics PASSWORD :'analytics';
ALTER ROLE covid PASSWORD :'covid';
ALTER ROLE directory PASSWORD :'directory';
ALTER ROLE dashboard PASSWORD :'dashboard';
ALTER ROLE operator PASSWORD :'operator';
ALTER ROLE registry PASSWORD :'registry';
REVOKE ALL ON DATABASE "harpicoop" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE "harpicoop" TO "notify";
GRANT CONNECT ON DATABASE "harpicoop" TO "analytics";
GRANT CONNECT ON DATABASE "harpicoop" TO "covid";
GRANT CONNECT ON DATABASE "harpicoop" TO "directory";
GRANT CONNECT ON DATABASE "harpicoop" TO "dashboard";
GRANT CONNECT ON DATABASE "harpicoop" TO "operator";
CREATE SCHEMA IF NOT EXISTS "notify" AUTHORIZATION "notify";
ALTER SCHEMA "notify" OWNER TO "notify";
REVOKE ALL ON SCHEMA "notify" FROM PUBLIC;
GRANT USAGE ON SCHEMA "notify" TO "notify_reader";
CREATE SCHEMA IF NOT EXISTS "analytics" AUTHORIZATION "analytics";
ALTER SCHEMA "analytics" OWNER TO "analytics";
REVOKE ALL ON SCHEMA "analytics" FROM PUBLIC;
GRANT USAGE ON SCHEMA "analytics" TO "analytics_reader";
CREATE SCHEMA IF NOT EXISTS "covid" AUTHORIZATION "covid";
ALTER SCHEMA "covid" OWNER TO "covid";
REVOKE ALL ON SCHEMA "covid" FROM PUBLIC;
GRANT USAGE ON SCHEMA "covid" TO "covid_reader";
CREATE SCHEMA IF NOT EXISTS "directory" AUTHORIZATION "directory";
ALTER SCHEMA "directory" OWNER TO "directory";
REVOKE ALL ON SCHEMA "directory" FROM PUBLIC;
GRANT USAGE ON SCHEMA "directory" TO "directory_reader";
CREATE DATABASE registry OWNER registry;
REVOKE ALL ON DATABASE registry FROM PUBLIC;
SQL
