#!/usr/bin/env bash
# The whole promotion story on the local workspace emulator (`make demo`):
# build v1 -> deploy test -> promote prod -> build v2 (one notebook changed) -> prod refuses
# v2 straight from the build -> deploy test -> plan prod -> promote prod -> status ->
# rollback prod -> status -> history -> status --check (what the nightly pipeline runs).
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

section "Start the workspace emulator"
: >"$DEMO/emulator.log"
dbx-promote emulator serve --port 0 --state "$DEMO/workspace" >"$DEMO/emulator.log" 2>&1 &
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
export DATABRICKS_TOKEN="dapi-demo-not-a-secret"
export DATABRICKS_CONFIG_FILE=/nonexistent
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
unset DBX_PROMOTE_CONFIG DATABRICKS_CONFIG_PROFILE TF_BUILD

V1="$DEMO/dist/sales-analytics-1.0.0.zip"
V2="$DEMO/dist/sales-analytics-1.1.0.zip"

section "Build v1 once"
show build --out "$DEMO/dist" --version 1.0.0

section "Deploy v1 to test"
show deploy "$V1" --env test

section "Promote what test verified to prod (the same bytes)"
show promote --from test --to prod --yes

section "Build v2: one notebook changed"
mkdir -p "$DEMO/src-v2"
cp dbx-promote.yml "$DEMO/src-v2/"
cp -R notebooks "$DEMO/src-v2/notebooks"
cat >>"$DEMO/src-v2/notebooks/transform/daily_revenue.sql" <<'SQL'

-- COMMAND ----------

-- v1.1.0: revenue per order, for the dashboard
SELECT order_date, region, revenue_eur / orders AS revenue_per_order_eur
FROM sales.daily_revenue
SQL
show --config "$DEMO/src-v2/dbx-promote.yml" build --out "$DEMO/dist" --version 1.1.0

section "prod only takes what test verified: v2 straight from the build is refused"
printf '$ dbx-promote deploy %s --env prod\n' "$V2"
if dbx-promote deploy "$V2" --env prod; then
  echo "prod accepted an artifact that test never verified" >&2
  exit 1
else
  echo "(refused with exit $?, prod untouched)"
fi

section "Deploy v2 to test"
show deploy "$V2" --env test

section "What promoting v2 would change in prod (dry run: nothing written)"
show promote --from test --to prod --dry-run

section "Promote v2 to prod"
show promote --from test --to prod --yes

section "Status of every environment"
show status

section "Prod is unhappy: roll back to the previous release"
show rollback --env prod

section "Status of prod after the rollback"
show status --env prod

section "History of prod, newest first"
show history --env prod

section "The nightly watch: every shared environment clean? (exit 1 names each problem)"
show status --check

section "Done"
echo "the workspace stays in $DEMO/workspace; run \`make demo\` again to start over"
