#!/usr/bin/env bash
# Writes schema/structure.sql again: pg_dump of a freshly migrated database, made by the test that checks it
# (server/tests/structure.rs), so both go one way. Review and commit the change with the migration behind it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_postgres

# The test cluster is stopped when this ends, however it ends, as the test script does.
trap stop_test_cluster EXIT

step "Writing schema/structure.sql from the migrations"
LOYALTY_WRITE_SCHEMA=1 cargo test --locked -p server --test structure
echo "schema/structure.sql written: review the change (git diff schema/) before committing it"
