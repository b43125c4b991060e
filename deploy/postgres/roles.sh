#!/bin/sh
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d): creates the login roles roamclear's services connect as, with
# the passwords from deploy/.env. The migrations (`roamclear migrate`) find them there, keep
# them, and grant each exactly its privileges (settlement/store/migrations/post-apply.sql).
# To change a password later: ALTER ROLE … PASSWORD (deploy/README.md, "Passwords").
set -eu
psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set worker="$DB_PASSWORD_WORKER" \
    --set closer="$DB_PASSWORD_CLOSER" \
    --set api="$DB_PASSWORD_API" \
    --set reader="$DB_PASSWORD_READER" \
    --set operator="$DB_PASSWORD_OPERATOR" \
    --set deliverer="$DB_PASSWORD_DELIVERER" <<'SQL'
CREATE ROLE roamclear_worker LOGIN PASSWORD :'worker';
CREATE ROLE roamclear_closer LOGIN PASSWORD :'closer';
CREATE ROLE roamclear_api LOGIN PASSWORD :'api';
CREATE ROLE roamclear_reader LOGIN PASSWORD :'reader';
CREATE ROLE roamclear_operator LOGIN PASSWORD :'operator';
CREATE ROLE roamclear_deliverer LOGIN PASSWORD :'deliverer';
SQL
