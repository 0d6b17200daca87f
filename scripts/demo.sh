#!/usr/bin/env bash
# The whole promotion story on the local workspace emulator (`make demo`), in three releases
# whose test notebooks really run (as one-time job runs the emulator executes):
#   v1 passes its tests in test and is promoted; prod's smoke test passes;
#   v2 breaks a helper: its test fails in test, and prod refuses it;
#   v3 passes in test but fails prod's smoke test: prod rolls back to v1 by itself.
# Prod's permissions are code: a person's token reads Prod and is refused a write, and a
# grant made by hand on a Prod notebook is reported by status and removed by the next deploy.
# Then status, history and status --check (what the nightly pipeline runs).
#
# Run from the repository root with dbx-promote on PATH. Everything it writes lives in
# $DBX_PROMOTE_DEMO_DIR (default .demo/), recreated on every run.
set -euo pipefail

cd "$(dirname "$0")/.."
DEMO="${DBX_PROMOTE_DEMO_DIR:-.demo}"
rm -rf "$DEMO"
mkdir -p "$DEMO"

EMU_PID=""
stop_emulator() {
  if [[ -n "$EMU_PID" ]] && kill -0 "$EMU_PID" 2>/dev/null; then
    kill "$EMU_PID" 2>/dev/null || true
    wait "$EMU_PID" 2>/dev/null || true
  fi
}
trap stop_emulator EXIT

if [[ -t 1 ]]; then
  section() { printf '\n\033[1m=== %s ===\033[0m\n' "$*"; }
else
  section() { printf '\n=== %s ===\n' "$*"; }
  # Piped or in CI: give the tables room (a terminal keeps its own width).
  export COLUMNS="${COLUMNS:-120}"
fi
show() {
  printf '$ dbx-promote %s\n' "$*"
  dbx-promote "$@"
}

# Who is who in the emulated workspace (tokens are demo stand-ins, not secrets): the
# pipeline's service principal (the application id the sample config grants CAN_MANAGE),
# a person in the readers group, and a workspace admin.
SP="9f0c2d5e-4b1a-4c3e-8d7f-0a1b2c3d4e5f"
PIPELINE_TOKEN="dapi-demo-not-a-secret"
READER_TOKEN="dapi-demo-reader"
ADMIN_TOKEN="dapi-demo-admin"

section "Start the workspace emulator"
: >"$DEMO/emulator.log"
dbx-promote emulator serve --port 0 --state "$DEMO/workspace" \
  --principal "$PIPELINE_TOKEN=$SP:deployers" \
  --principal "$READER_TOKEN=reader@example.com:sales-readers" \
  --principal "$ADMIN_TOKEN=admin@example.com:admins" >"$DEMO/emulator.log" 2>&1 &
EMU_PID=$!
URL=""
for _ in $(seq 150); do
  URL="$(sed -n 's/^Emulator listening on \(http[^ ]*\)$/\1/p' "$DEMO/emulator.log" || true)"
  [[ -n "$URL" ]] && break
  if ! kill -0 "$EMU_PID" 2>/dev/null; then
    echo "the emulator exited:" >&2
    cat "$DEMO/emulator.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$URL" ]]; then
  echo "the emulator did not report its URL within 15 s:" >&2
  cat "$DEMO/emulator.log" >&2
  exit 1
fi
echo "emulator at $URL (state in $DEMO/workspace)"

export DATABRICKS_HOST="$URL"
export DATABRICKS_TOKEN="$PIPELINE_TOKEN"  # dbx-promote runs as the pipeline does
export DATABRICKS_CONFIG_FILE=/nonexistent
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
unset DBX_PROMOTE_CONFIG DATABRICKS_CONFIG_PROFILE TF_BUILD

V1="$DEMO/dist/sales-analytics-1.0.0.zip"
V2="$DEMO/dist/sales-analytics-1.1.0.zip"
V3="$DEMO/dist/sales-analytics-1.2.0.zip"

# `expect_failure CMD...`: a step of the story that must fail with exit 1.
expect_failure() {
  printf '$ dbx-promote %s\n' "$*"
  local code=0
  dbx-promote "$@" || code=$?
  if [[ $code -ne 1 ]]; then
    echo "expected exit 1, got $code" >&2
    exit 1
  fi
  echo "(exit 1, as it should)"
}

# `as_person WHO TOKEN ACTION PATH...`: what a person does in the workspace UI (the SDK).
as_person() {
  local who=$1 token=$2
  shift 2
  printf '# %s: %s\n' "$who" "$*"
  DATABRICKS_TOKEN="$token" python scripts/demo_person.py "$@"
}

# `new_version DIR`: a copy of the project (notebooks and config) to change and build.
new_version() {
  mkdir -p "$1"
  cp dbx-promote.yml "$1/"
  cp -R notebooks "$1/notebooks"
}

# `edit FILE SED-EXPRESSION`: change one line of a copied file (no backup file left behind:
# the build would package it).
edit() {
  sed "$2" "$1" >"$1.new"
  mv "$1.new" "$1"
}

section "Story 1: build v1 once"
show build --out "$DEMO/dist" --version 1.0.0

section "Deploy v1 to test: its test notebooks run there as job runs"
show deploy "$V1" --env test

section "Promote v1 to prod (the same bytes, tests passed): prod's smoke test watches it"
show promote --from test --to prod --yes

section "Prod's permissions are code: people read it, only the pipeline writes it"
PROD_ROOT="/Users/$SP/prod/sales-analytics"
as_person reader "$READER_TOKEN" read "$PROD_ROOT/ingest/load_orders"
as_person reader "$READER_TOKEN" write "$PROD_ROOT/ingest/load_orders"
as_person admin "$ADMIN_TOKEN" grant "$PROD_ROOT/ingest/load_orders" admin@example.com CAN_EDIT
echo "(a hand grant on a managed notebook is permission drift; the next deploy removes it)"
show status --env prod

section "Story 2: v2 has a bug in a shared helper (the USD rate)"
new_version "$DEMO/src-v2"
edit "$DEMO/src-v2/notebooks/lib/helpers.py" 's/"USD": 0.92/"USD": 9.2/'
show --config "$DEMO/src-v2/dbx-promote.yml" build --out "$DEMO/dist" --version 1.1.0

section "Deploy v2 to test: a test fails, v2 stays there and cannot be promoted"
expect_failure deploy "$V2" --env test --junit "$DEMO/TEST-dbx-test.xml"
echo "JUnit results for the pipeline: $DEMO/TEST-dbx-test.xml"

section "prod refuses v2: it did not pass its tests in test"
expect_failure promote --from test --to prod --yes

section "Story 3: v3 fixes the rate and needs a new setting; only test's config got it"
new_version "$DEMO/src-v3"
edit "$DEMO/src-v3/notebooks/lib/helpers.py" \
  's/REQUIRED_SETTINGS = ("catalog", "alert_email")/REQUIRED_SETTINGS = ("catalog", "alert_email", "orders_table")/'
edit "$DEMO/src-v3/dbx-promote.yml" \
  's/alert_email: data-test@example.com}/alert_email: data-test@example.com, orders_table: test_catalog.sales.orders}/'
V3_CONFIG="$DEMO/src-v3/dbx-promote.yml"
show --config "$V3_CONFIG" build --out "$DEMO/dist" --version 1.2.0

section "Deploy v3 to test: every test passes"
show --config "$V3_CONFIG" deploy "$V3" --env test

section "Promote v3 to prod: the smoke test fails there, prod rolls back by itself"
expect_failure --config "$V3_CONFIG" promote --from test --to prod --yes

section "Status of every environment"
show status

section "History of prod, newest first"
show history --env prod

section "The nightly watch: every shared environment clean? (exit 1 names each problem)"
show status --check

section "Done"
echo "the workspace stays in $DEMO/workspace; run \`make demo\` again to start over"
