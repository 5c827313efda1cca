#!/usr/bin/env bash
# Serve the admin with a Celery worker and beat on the configured broker.
# Ctrl-C stops every process this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# A development server on this machine: DEBUG on unless set (settings refuse DEBUG off without a SECRET_KEY).
export DEBUG="${DEBUG:-true}"
# The port to serve on: PORT, default 8000 (a number, never more than that).
PORT="${PORT:-8000}"
if ! [[ "$PORT" =~ ^[0-9]{1,5}$ ]] || (( 10#$PORT < 1 || 10#$PORT > 65535 )); then
  echo "PORT: must be a number from 1 to 65535, not '$PORT'" >&2
  exit 2
fi
export PORT=$((10#$PORT))
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping web server, worker and beat..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT
$BIN/celery -A jobs_project worker --loglevel=info --concurrency=2 &
pids+=($!)
$BIN/celery -A jobs_project beat --loglevel=info &
pids+=($!)
$BIN/python manage.py runserver "127.0.0.1:$PORT" &
pids+=($!)
echo "Jobs is up at http://127.0.0.1:$PORT/ (Ctrl-C to stop)"
wait -n "${pids[@]}"
