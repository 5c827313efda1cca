#!/usr/bin/env bash
# Serve the admin with a Celery worker and beat on the configured broker.
# Ctrl-C stops every process this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# A development server on this machine: DEBUG on unless set (settings refuse DEBUG off without a SECRET_KEY).
export DEBUG="${DEBUG:-true}"
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
$BIN/python manage.py runserver 127.0.0.1:8000 &
pids+=($!)
echo "Jobs is up at http://127.0.0.1:8000/ (Ctrl-C to stop)"
wait -n "${pids[@]}"
