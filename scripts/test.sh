#!/usr/bin/env bash
# Run the suite on the configured services and say plainly what did not run.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
if [ -n "${DATABASE_URL:-}" ] || [ -n "${CELERY_BROKER_URL:-}" ]; then
  where="PostgreSQL + Redis (DATABASE_URL=${DATABASE_URL:-unset}, CELERY_BROKER_URL=${CELERY_BROKER_URL:-unset})"
else
  where="the embedded default (SQLite + filesystem broker)"
fi
echo "== Test suite on $where"
$BIN/pytest "$@"
status=$?
echo
if [ -z "${DATABASE_URL:-}" ]; then
  echo "Not run here: the same suite on PostgreSQL + Redis. To run it:"
  echo "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs CELERY_BROKER_URL=redis://127.0.0.1:6379/0 make test"
fi
if ! command -v "${JOBS_CHROMIUM:-/usr/bin/chromium}" >/dev/null 2>&1; then
  echo "Not run here: the browser tests (no Chromium). To run them: apt-get install chromium, then make test."
fi
exit $status
