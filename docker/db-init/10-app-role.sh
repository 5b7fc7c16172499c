#!/bin/sh
# Run once by the postgres image when the data volume is new (docker-entrypoint-initdb.d), as
# the superuser. The app gets a role of its own that owns its database and nothing else: no
# superuser, no creating databases or roles. Migrations need only the database's owner.
#
# The password reaches psql through its environment (a backtick \set), never a command line,
# where `ps` would show it. ROBODASH_DB_ROLE and ROBODASH_DB_NAME are for the tests.
set -eu
: "${ROBODASH_DB_PASSWORD:?set ROBODASH_DB_PASSWORD in .env}"
export ROBODASH_DB_ROLE="${ROBODASH_DB_ROLE:-robodash}" ROBODASH_DB_NAME="${ROBODASH_DB_NAME:-robodash}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\set app_password `printf '%s' "$ROBODASH_DB_PASSWORD"`
\set app_role `printf '%s' "$ROBODASH_DB_ROLE"`
\set app_db `printf '%s' "$ROBODASH_DB_NAME"`
CREATE ROLE :"app_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'app_password';
CREATE DATABASE :"app_db" OWNER :"app_role";
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
SQL
