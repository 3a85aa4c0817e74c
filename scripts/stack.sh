#!/usr/bin/env bash
# The embedded stack: Airflow (LocalExecutor) and an MLflow server, in the background, state under .local/.
#   scripts/stack.sh start | stop | status
# Each server runs in its own session (services.sh), so stop can end everything it started, including
# LocalExecutor workers that ignore SIGTERM and an API server that outlives its parent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
PY="$ROOT/.venv/bin"
SERVICES=(mlflow airflow)

port_of() { case "$1" in mlflow) echo "$MLFLOW_PORT" ;; airflow) echo "$AIRFLOW__API__PORT" ;; esac; }
health_url() {
  case "$1" in
    mlflow) echo "http://127.0.0.1:$MLFLOW_PORT/health" ;;
    airflow) echo "http://127.0.0.1:$AIRFLOW__API__PORT/api/v2/monitor/health" ;;
  esac
}
healthy() { curl -fsS --max-time 3 "$(health_url "$1")" >/dev/null 2>&1; }

# start_service NAME CMD...: launch, unless NAME's port is taken by another program.
start_service() {
  local name=$1 port; port=$(port_of "$1")
  if port_busy "$port"; then
    echo "error: port $port is taken by another program; $name cannot start (free it or set ${name^^}_PORT)" >&2
    return 1
  fi
  launch "$@"
}

start() {
  mkdir -p "$RUN" "$LOGS" "$AIRFLOW_HOME" "$LOCAL/mlflow/artifacts"
  local all_up=1
  for s in "${SERVICES[@]}"; do alive "$s" || all_up=0; done
  if [ $all_up = 1 ]; then
    echo "The stack is already running (make stop to stop it)."
    summary
    return 0
  fi
  # Fixed local login; the passwords file is the simple auth manager's own format.
  [ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] ||
    echo '{"admin": "admin"}' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  alive mlflow || start_service mlflow "$PY/mlflow" server \
    --backend-store-uri "sqlite:///$LOCAL/mlflow/mlflow.db" \
    --artifacts-destination "$LOCAL/mlflow/artifacts" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1
  # Airflow's components, as `airflow standalone` would run them, in one session: the scheduler and
  # the triggerer without their log servers, which bind every interface; on one machine the API
  # server reads the task logs from the shared log folder.
  alive airflow || start_service airflow bash -c '
    set -e
    "$0/airflow" db migrate
    "$0/airflow" scheduler --skip-serve-logs &
    "$0/airflow" dag-processor &
    "$0/airflow" triggerer --skip-serve-logs &
    exec "$0/airflow" api-server' "$PY"
  local deadline=$((SECONDS + ${STACK_START_TIMEOUT:-240}))
  for s in "${SERVICES[@]}"; do
    until healthy "$s"; do
      if ! alive "$s"; then
        echo "error: $s exited during start; last lines of $LOGS/$s.log:" >&2
        tail -n 20 "$LOGS/$s.log" >&2
        return 1
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "error: $s did not answer $(health_url "$s") in time; see $LOGS/$s.log" >&2
        return 1
      fi
      sleep 2
    done
  done
  summary
}

summary() {
  cat <<TXT
Airflow  http://127.0.0.1:$AIRFLOW__API__PORT   (login admin / admin)
MLflow   http://127.0.0.1:$MLFLOW_PORT
Lake     $MLOPS_LAKE_ROOT
Logs     $LOGS
TXT
}

stop() {
  local s
  # Airflow first, so no task is still writing to MLflow when it goes.
  for s in airflow mlflow; do
    [ -n "$(STOP_WAIT_S=20 stop_sessions "$s")" ] && echo "$s stopped"
  done
  return 0
}

status() {
  for s in "${SERVICES[@]}"; do
    if alive "$s"; then
      if healthy "$s"; then echo "$s: running, healthy"; else echo "$s: running, not answering yet"; fi
    else
      echo "$s: stopped"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
