#!/usr/bin/env bash
# The store's unit cases (tests/unit/store_test.cc) on a real PostgreSQL:
# the same rows, keys and rules as on SQLite, none skipped.
source "$(dirname "$0")/../lib.sh"
source "$E2E_DIR/postgres/lib.sh"
: "${UNIT_TESTS:?UNIT_TESTS must point to the unit-tests binary}"
start_postgres
CLONEKIT_TEST_PG_URL=$PG_URL "$UNIT_TESTS" --gtest_filter='*Store*' >unit.log 2>&1 && st=0 || st=$?
cat unit.log | grep -E '^\[ *(OK|FAILED|SKIPPED) ' || true
check "the store's cases pass on PostgreSQL" test "$st" -eq 0
check "none of them was skipped" bash -c "! grep -q '^\[  SKIPPED \]' unit.log"
check "the PostgreSQL cases ran" grep -q 'StoreTest.JobKeepsEveryFieldAcrossAReopen/postgresql' unit.log
finish
