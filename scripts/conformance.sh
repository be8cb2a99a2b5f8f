#!/usr/bin/env bash
# `make conformance`: runs Tempest's API tests against the running all-in-one
# (`make start` first, with the same environment) and prints per service
# passed / failed / skipped. Tempest gets its own virtualenv; its workspace,
# tempest.conf, logs and results stay under $STRATUS_VAR_DIR/tempest.
#   CONFORMANCE_REGEX   which tests (default: the API tests of every service Stratus serves)
#   CONFORMANCE_CONCURRENCY  workers (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPEST_VERSION=47.0.0
VAR_DIR=${STRATUS_VAR_DIR:-var}
TEMPEST_VENV=${TEMPEST_VENV:-$VAR_DIR/tempest-venv}
WORKSPACE=$VAR_DIR/tempest
REGEX=${CONFORMANCE_REGEX:-'^tempest\.api\.(identity|compute|image|network|volume|object_storage)\.'}
CONCURRENCY=${CONFORMANCE_CONCURRENCY:-2}

installed=$("$TEMPEST_VENV/bin/pip" show tempest 2>/dev/null || true)
if ! grep -qx "Version: $TEMPEST_VERSION" <<<"$installed"; then
  echo "==> installing tempest $TEMPEST_VERSION in $TEMPEST_VENV"
  python3 -m venv "$TEMPEST_VENV"
  "$TEMPEST_VENV/bin/pip" install -q "tempest==$TEMPEST_VERSION"
fi
TEMPEST_VENV=$(cd "$TEMPEST_VENV" && pwd)

if [ ! -f "$WORKSPACE/.stestr.conf" ]; then
  rm -rf "$WORKSPACE"
  # The workspace registry stays in this var dir: Tempest's default one is
  # per user, where another cloud's workspace already holds the name.
  "$TEMPEST_VENV/bin/tempest" init --workspace-path "$VAR_DIR/tempest-workspaces.yaml" "$WORKSPACE"
fi
echo "==> writing $WORKSPACE/etc/tempest.conf"
.venv/bin/python scripts/tempest_conf.py "$WORKSPACE/etc/tempest.conf"

echo "==> tempest run --regex '$REGEX' --concurrency $CONCURRENCY"
# Only this run's results count: an earlier run's are not shown as this one's
# when this one runs nothing (a regex that matches no test).
rm -rf "$WORKSPACE/.stestr"
status=0
(cd "$WORKSPACE" && "$TEMPEST_VENV/bin/tempest" run --regex "$REGEX" --concurrency "$CONCURRENCY") \
  > "$WORKSPACE/run.log" 2>&1 || status=$?
(cd "$WORKSPACE" && "$TEMPEST_VENV/bin/stestr" last --subunit) > "$WORKSPACE/results.subunit" || true
"$TEMPEST_VENV/bin/python" scripts/conformance_summary.py --list "$WORKSPACE/results.subunit" \
  > "$WORKSPACE/summary.txt"
grep -v '^\(fail\|skip\|success\) ' "$WORKSPACE/summary.txt"
echo "every failed and skipped test: $WORKSPACE/summary.txt; the run's output: $WORKSPACE/run.log"
exit $status
