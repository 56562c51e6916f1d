#!/bin/sh
# The Temporal server's two PostgreSQL databases and their schemas, with the sql tool of the
# admin-tools image (its embedded schemas: the same commands as sandbox/temporal-server.ts). Safe to
# run again (test/e2e/production-temporal.test.ts does): the tool keeps an existing database and
# schema, and `update-schema` applies only what is missing. Any failure stops the step.
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
export SQL_PASSWORD

tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:postgresql/v12/temporal temporal_visibility:postgresql/v12/visibility; do
  db=${pair%%:*}
  schema=${pair#*:}
  tool --db "$db" create-database
  tool --db "$db" setup-schema -v 0.0
  tool --db "$db" update-schema --schema-name "$schema"
  echo "database $db: schema $schema up to date"
done
echo 'PostgreSQL schemas are set up'
