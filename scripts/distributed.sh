#!/usr/bin/env bash
# The scaled-out topology on one machine, without Docker: what `make test-distributed` runs.
#   scripts/distributed.sh up | down | status | kill SERVICE | stop SERVICE | start SERVICE
# PostgreSQL (Airflow's and MLflow's databases), Redis (the Celery broker), an S3 server (moto),
# MLflow on PostgreSQL with S3 artifacts, and Airflow on the CeleryExecutor as separate processes:
# scheduler, dag-processor, api-server, triggerer, worker.
# Everything is private: loopback ports of its own, state under .local/distributed/ (DIST_DIR).
# Each service runs in its own session (setsid) with a pid file and a log, so `down` can end all
# of it whatever state `up` died in, and then checks that nothing it started is left.
# Afterwards `source .local/distributed/env.sh` points a shell (airflow CLI, python) at the stack.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${DIST_DIR:-$ROOT/.local/distributed}"
RUN="$STATE/run"
LOGS="$STATE/logs"
PGDIR="$STATE/postgres"
ENV_FILE="$STATE/env.sh"
SECRETS="$STATE/secrets.env"
PY="$ROOT/.venv/bin"
# shellcheck source=services.sh
source "$ROOT/scripts/services.sh"

PG_PORT="${DIST_PG_PORT:-55432}"
REDIS_PORT="${DIST_REDIS_PORT:-56379}"
S3_PORT="${DIST_S3_PORT:-55900}"
MLFLOW_PORT="${DIST_MLFLOW_PORT:-55500}"
API_PORT="${DIST_AIRFLOW_PORT:-58080}"
WORKER_LOG_PORT="${DIST_WORKER_LOG_PORT:-58793}"
TRIGGERER_LOG_PORT="${DIST_TRIGGERER_LOG_PORT:-58794}"
START_TIMEOUT="${DIST_START_TIMEOUT:-300}"
WORKER_CONCURRENCY="${DIST_WORKER_CONCURRENCY:-2}"
BUCKET_LANDING=mlops-landing
BUCKET_LAKE=mlops-lake
BUCKET_MLFLOW=mlflow-artifacts

# Stopped in reverse order: Airflow first, so nothing is still writing when the stores go away.
SERVICES=(postgres redis s3 mlflow scheduler dag-processor api-server triggerer worker)
AIRFLOW_SERVICES=(scheduler dag-processor api-server triggerer worker)

log() { echo "distributed: $*"; }
die() { echo "distributed: error: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
sudo_() { if is_root; then "$@"; else sudo "$@"; fi; }
# initdb and postgres refuse to run as root: run them as the postgres user then.
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

log_of() {
  case "$1" in postgres) echo "$PGDIR/postgres.log" ;; *) echo "$LOGS/$1.log" ;; esac
}

pg_bin() {
  local dir
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
}

# ---------------------------------------------------------------------------------------------
# up

install_missing() {
  local packages=()
  command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
  [ -n "$(pg_bin)" ] || packages+=(postgresql)
  [ ${#packages[@]} = 0 ] && return 0
  log "installing ${packages[*]} (apt-get)"
  mkdir -p "$LOGS"
  { sudo_ apt-get update -qq && sudo_ env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l \
      apt-get install -y -qq "${packages[@]}"; } >"$LOGS/apt.log" 2>&1 || fail_service apt "failed"
  command -v redis-server >/dev/null 2>&1 || die "redis-server is still missing after apt-get install"
  [ -n "$(pg_bin)" ] || die "PostgreSQL's initdb is still missing after apt-get install"
}

check_ports() {
  local name port taken=()
  for pair in postgres:$PG_PORT redis:$REDIS_PORT s3:$S3_PORT mlflow:$MLFLOW_PORT api-server:$API_PORT \
    worker-log-server:$WORKER_LOG_PORT triggerer-log-server:$TRIGGERER_LOG_PORT; do
    name=${pair%%:*} port=${pair##*:}
    port_busy "$port" && taken+=("$port ($name)")
  done
  if [ ${#taken[@]} -gt 0 ]; then
    die "port(s) ${taken[*]} already taken by another program; free them or set DIST_PG_PORT, DIST_REDIS_PORT, DIST_S3_PORT, DIST_MLFLOW_PORT, DIST_AIRFLOW_PORT, DIST_WORKER_LOG_PORT, DIST_TRIGGERER_LOG_PORT"
  fi
}

fail_service() {
  local name=$1 why=$2
  echo "distributed: error: $name $why; last lines of $(log_of "$name"):" >&2
  tail -n 30 "$(log_of "$name")" >&2 2>/dev/null || true
  echo "distributed: (scripts/distributed.sh down stops what was started)" >&2
  exit 1
}

# wait_for NAME WHAT CMD...: until CMD succeeds; fails naming NAME if it exits or the deadline passes.
wait_for() {
  local name=$1 what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_service "$name" "exited while starting"
    [ $SECONDS -lt $DEADLINE ] || fail_service "$name" "did not become ready ($what) in ${START_TIMEOUT}s"
    sleep 1
  done
}

secrets() {
  # Once per state dir: database passwords, S3 keys, Airflow's fernet key, JWT and API secrets.
  [ -f "$SECRETS" ] && return 0
  (umask 077 && PYTHONPATH="$ROOT/plugins" "$PY/python" -m mlops stack-tools secrets >"$SECRETS")
}

start_postgres() {
  local bin; bin=$(pg_bin)
  mkdir -p "$PGDIR/socket"
  is_root && chown -R postgres:postgres "$PGDIR"
  chmod 700 "$PGDIR/socket"
  if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
    log "initdb $PGDIR/data"
    as_pg "$bin/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --no-locale -E UTF8 >"$LOGS/initdb.log" 2>&1 || fail_service initdb "failed"
  fi
  # A throwaway test instance: durability traded for speed (no fsync).
  as_pg "$bin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PGDIR/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >"$LOGS/pg_ctl.log" 2>&1 || fail_service postgres "did not start"
  # pg_ctl starts the postmaster in a session of its own; its pid is that session's id.
  head -n 1 "$PGDIR/data/postmaster.pid" >"$RUN/postgres.pid"
  # Fresh databases on every up: S3 (moto) is in memory, so metadata surviving a restart would
  # point at runs, partitions and model artifacts that no longer exist.
  "$bin/psql" -v ON_ERROR_STOP=1 -q -h "$PGDIR/socket" -p "$PG_PORT" -U postgres -d postgres \
    >"$LOGS/psql.log" 2>&1 <<SQL || fail_service psql "could not create the databases"
DROP DATABASE IF EXISTS airflow WITH (FORCE);
DROP DATABASE IF EXISTS mlflow WITH (FORCE);
DO \$\$ BEGIN CREATE ROLE airflow LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
DO \$\$ BEGIN CREATE ROLE mlflow LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
ALTER ROLE airflow PASSWORD '$PG_AIRFLOW_PASSWORD';
ALTER ROLE mlflow PASSWORD '$PG_MLFLOW_PASSWORD';
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE mlflow OWNER mlflow;
SQL
}

start_s3() {
  # moto accepts any key here: with its key checking on, it fails the presigned URLs that MLflow
  # clients download model files with (tests/unit/test_preflight.py checks a wrong key's 403).
  launch s3 "$PY/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  wait_for s3 "GET /moto-api/" curl -fsS --max-time 2 "http://127.0.0.1:$S3_PORT/moto-api/"
  PYTHONPATH="$ROOT/plugins" "$PY/python" -m mlops stack-tools buckets "http://127.0.0.1:$S3_PORT" \
    "$BUCKET_LANDING" "$BUCKET_LAKE" "$BUCKET_MLFLOW" >"$LOGS/s3-setup.log" 2>&1 ||
    fail_service s3-setup "could not create the buckets"
}

# The pipeline config for a short run: the repo's YAML with what ~10 days of data need.
generate_include() {
  local include="$STATE/include"
  rm -rf "$include" && mkdir -p "$include/pipelines"
  # Runs are triggered through the API, day by day: no catch-up behind the test's back. The data
  # is there before a run starts: a missing file fails in minutes. A failure is the result to look
  # at, not something to retry. The suites are generated from the copies (they carry a fingerprint).
  # DIST_PIPELINE_SETS adds settings of its own ("--set retries=1 ...").
  PYTHONPATH="$ROOT/plugins" "$PY/python" -m mlops stack-tools pipelines "$ROOT/include" "$include" \
    --only churn --set schedules.catchup=false --set schedules.max_active_ingest_runs=2 \
    --set source.poke_interval_seconds=5 --set source.wait_timeout_minutes=2 \
    --set training.window=8 --set training.validation=2 --set training.holdout=2 \
    --set training.min_partitions=5 --set training.n_trials=2 --set training.wait_timeout_minutes=2 \
    --set training.params.n_estimators=100 --set retries=0 \
    --set schedules.settle_poke_seconds=10 --set schedules.settle_timeout_minutes=5 \
    ${DIST_PIPELINE_SETS:-} \
    >"$LOGS/suites.log" 2>&1 || fail_service suites "could not write the short-run pipelines and suites"
}

write_env() {
  # shellcheck disable=SC1090
  source "$SECRETS"
  local pg="127.0.0.1:$PG_PORT"
  (umask 077 && cat >"$ENV_FILE" <<EOF
# Generated by scripts/distributed.sh up: the environment of the distributed stack's services.
# \`source\` it to point a shell (airflow CLI, python -m mlops...) at the running stack.
unset AIRFLOW_HOME AIRFLOW_CONN_MLFLOW_DEFAULT AIRFLOW_CONN_AWS_DEFAULT AIRFLOW_CONN_MLOPS_SIGNING
export MLOPS_LOCAL_DIR="$STATE"
export AIRFLOW_HOME="$STATE/airflow"
export AIRFLOW_PORT=$API_PORT
export MLFLOW_PORT=$MLFLOW_PORT
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export MLOPS_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
export AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
export AWS_DEFAULT_REGION=us-east-1
export MLOPS_LAKE_ROOT="s3://$BUCKET_LAKE/lake"
export MLOPS_LANDING_ROOT="s3://$BUCKET_LANDING/landing"
export MLOPS_INCLUDE_DIR="${DIST_INCLUDE_DIR:-$STATE/include}"
export MLOPS_MLFLOW_ARTIFACTS="s3://$BUCKET_MLFLOW/artifacts"
source "$ROOT/scripts/env.sh"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://airflow:$PG_AIRFLOW_PASSWORD@$pg/airflow"
export AIRFLOW__CELERY__BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed: name the driver.
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql+psycopg2://airflow:$PG_AIRFLOW_PASSWORD@$pg/airflow"
export AIRFLOW__CELERY__WORKER_CONCURRENCY=$WORKER_CONCURRENCY
# Sending a task to the broker may take more than the default second on a busy 2-core machine.
export AIRFLOW__CELERY__OPERATION_TIMEOUT=10
# Shared by every process: tokens the scheduler signs must verify in the API server and the
# worker's log server, and connections encrypted by one must decrypt in the others.
export AIRFLOW__CORE__FERNET_KEY="$FERNET_KEY"
export AIRFLOW__API_AUTH__JWT_SECRET="$JWT_SECRET"
export AIRFLOW__API__SECRET_KEY="$API_SECRET_KEY"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$WORKER_LOG_PORT
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$TRIGGERER_LOG_PORT
# The API's /monitor/health reports the scheduler; no extra port for its own health server.
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=False
# DAGs start paused: the test (or you) unpauses what should run.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
EOF
  )
}

start_mlflow() {
  # Clients upload through the server (mlflow-artifacts:/ URIs) and download from presigned S3
  # URLs it hands out, so the S3 endpoint it is given must be one the workers reach as well.
  # The store URI (it holds a password) goes in the environment, not on the command line.
  launch mlflow env MLFLOW_S3_ENDPOINT_URL="$MLOPS_S3_ENDPOINT" AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" AWS_DEFAULT_REGION=us-east-1 \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://mlflow:$PG_MLFLOW_PASSWORD@127.0.0.1:$PG_PORT/mlflow" \
    "$PY/mlflow" server \
    --artifacts-destination "$MLOPS_MLFLOW_ARTIFACTS" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1
}

# No log servers: Airflow binds them to every interface, and on one machine the API server reads
# the task logs from the shared log folder.
launch_airflow() {
  case "$1" in
    worker)
      launch worker "$PY/airflow" celery worker --skip-serve-logs --concurrency "$WORKER_CONCURRENCY" \
        --celery-hostname "mlops-worker@%h" --without-gossip --without-mingle ;;
    triggerer) launch triggerer "$PY/airflow" triggerer --skip-serve-logs ;;
    *) launch "$1" "$PY/airflow" "$1" ;;
  esac
}

api_healthy() {
  # Every component the API server reports on: metadatabase, scheduler, triggerer, dag processor.
  curl -fsS --max-time 3 "http://127.0.0.1:$API_PORT/api/v2/monitor/health" |
    PYTHONPATH="$ROOT/plugins" "$PY/python" -m mlops stack-tools healthy
}

up() {
  mkdir -p "$RUN" "$LOGS"
  local running=() stopped=() s
  for s in "${SERVICES[@]}"; do if alive "$s"; then running+=("$s"); else stopped+=("$s"); fi; done
  if [ ${#stopped[@]} = 0 ]; then
    log "already up"
    summary
    return 0
  fi
  if [ ${#running[@]} -gt 0 ]; then
    die "partly running (up: ${running[*]}; down: ${stopped[*]}); run scripts/distributed.sh down first"
  fi
  [ -x "$PY/airflow" ] || die "$PY/airflow is missing: run make install first"
  check_ports
  install_missing
  rm -f "$RUN"/*.pid
  DEADLINE=$((SECONDS + START_TIMEOUT))
  secrets
  # shellcheck disable=SC1090
  source "$SECRETS"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

  log "starting PostgreSQL on 127.0.0.1:$PG_PORT, Redis on :$REDIS_PORT, S3 (moto) on :$S3_PORT"
  start_postgres
  mkdir -p "$STATE/redis"
  launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$STATE/redis" --daemonize no
  start_s3
  wait_for redis "PING" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping

  generate_include
  write_env
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  mkdir -p "$AIRFLOW_HOME"
  echo '{"admin": "admin"}' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

  log "starting MLflow on :$MLFLOW_PORT (PostgreSQL store, artifacts in $MLOPS_MLFLOW_ARTIFACTS)"
  start_mlflow
  wait_for mlflow "GET /health" curl -fsS --max-time 2 "http://127.0.0.1:$MLFLOW_PORT/health"

  log "preflight"
  "$PY/python" -m mlops preflight --bucket "$BUCKET_MLFLOW" || die "preflight failed (see above); Airflow not started"

  log "airflow db migrate"
  # In a session of its own too, so that down also ends it if up dies meanwhile.
  launch db-migrate "$PY/airflow" db migrate
  wait "$(pid_of db-migrate)" || fail_service db-migrate "failed"
  rm -f "$RUN/db-migrate.pid"

  log "starting Airflow (CeleryExecutor): ${AIRFLOW_SERVICES[*]}"
  for s in "${AIRFLOW_SERVICES[@]}"; do launch_airflow "$s"; done
  wait_for worker "Celery worker ready" grep -q "mlops-worker@.* ready" "$LOGS/worker.log"
  wait_for api-server "GET /api/v2/monitor/health" curl -fsS --max-time 3 \
    "http://127.0.0.1:$API_PORT/api/v2/monitor/health"
  local s
  for s in scheduler dag-processor triggerer; do alive "$s" || fail_service "$s" "exited while starting"; done
  until api_healthy; do
    for s in "${AIRFLOW_SERVICES[@]}"; do alive "$s" || fail_service "$s" "exited while starting"; done
    [ $SECONDS -lt $DEADLINE ] || fail_service scheduler "not all components healthy in ${START_TIMEOUT}s: $(curl -s "http://127.0.0.1:$API_PORT/api/v2/monitor/health")"
    sleep 2
  done
  log "up in ${SECONDS}s"
  summary
}

summary() {
  cat <<TXT
Airflow API  http://127.0.0.1:$API_PORT   (login admin / admin; CeleryExecutor, worker concurrency $WORKER_CONCURRENCY)
MLflow       http://127.0.0.1:$MLFLOW_PORT
S3 (moto)    http://127.0.0.1:$S3_PORT   buckets $BUCKET_LANDING, $BUCKET_LAKE, $BUCKET_MLFLOW
PostgreSQL   127.0.0.1:$PG_PORT   Redis 127.0.0.1:$REDIS_PORT
Environment  source $ENV_FILE
Logs         $LOGS (PostgreSQL: $PGDIR/postgres.log)
TXT
}

# ---------------------------------------------------------------------------------------------
# down

# stop_group NAME...: stop these services' sessions together (services.sh), PostgreSQL through
# pg_ctl first; remembers each session in STOPPED for down's final check.
stop_group() {
  local pair
  if [[ " $* " == *" postgres "* ]] && [ -f "$PGDIR/data/postmaster.pid" ]; then
    # pg_ctl starts the postmaster as a session leader: without a pid file, its pid is the session.
    mkdir -p "$RUN"
    [ -n "$(pid_of postgres)" ] || head -n 1 "$PGDIR/data/postmaster.pid" >"$RUN/postgres.pid"
    as_pg "$(pg_bin)/pg_ctl" -D "$PGDIR/data" stop -m fast -w -t 30 >/dev/null 2>&1 || true
  fi
  for pair in $(stop_sessions "$@"); do STOPPED+=("$pair"); done
}

down() {
  local s pidfile others=() survivors="" pair
  STOPPED=()
  # Whatever left a pid file besides the services (db-migrate) goes first, with Airflow; then
  # MLflow and the stores Airflow wrote to; PostgreSQL last (pg_ctl stop -m fast, then its session).
  for pidfile in "$RUN"/*.pid; do
    [ -e "$pidfile" ] || continue
    s=$(basename "$pidfile" .pid)
    [[ " ${SERVICES[*]} " == *" $s "* ]] || others+=("$s")
  done
  stop_group "${others[@]}" "${AIRFLOW_SERVICES[@]}"
  stop_group mlflow s3 redis
  stop_group postgres
  sleep 0.5
  for pair in "${STOPPED[@]}"; do
    if pgrep -s "${pair##*:}" >/dev/null 2>&1; then
      survivors+="  ${pair%%:*}: $(pgrep -a -s "${pair##*:}" | tr '\n' ';')"$'\n'
    fi
  done
  if [ -n "$survivors" ]; then
    echo "distributed: error: processes still running after down:" >&2
    printf '%s' "$survivors" >&2
    exit 1
  fi
  log "down: stopped ${#STOPPED[@]} service session(s); nothing of them is left running"
}

status() {
  local s state=0
  for s in "${SERVICES[@]}"; do
    if alive "$s"; then echo "$s: running (pid $(pid_of "$s"))"; else echo "$s: stopped"; state=3; fi
  done
  if alive api-server; then
    echo "health: $(curl -s --max-time 3 "http://127.0.0.1:$API_PORT/api/v2/monitor/health" || echo 'no answer')"
  fi
  return $state
}

# ---------------------------------------------------------------------------------------------
# One service of a running stack: what an operator does in an outage, and what the fault tests do.

# kill SERVICE: SIGKILL the service's whole session at once, as a crash or the OOM killer would.
kill_service() {
  alive "$1" || die "$1 is not running"
  pkill -KILL -s "$(pid_of "$1")" 2>/dev/null || true
  rm -f "$RUN/$1.pid"
  log "$1 killed (SIGKILL)"
}

# stop SERVICE: stop one service cleanly (TERM, then KILL after 15 s).
stop_service() {
  alive "$1" || die "$1 is not running"
  stop_sessions "$1" >/dev/null
  log "$1 stopped"
}

# start SERVICE: start one stopped service (MLflow or an Airflow service) again; waits until it is ready.
start_service() {
  local name=$1
  [[ " mlflow ${AIRFLOW_SERVICES[*]} " == *" $name "* ]] ||
    die "start takes mlflow or an Airflow service (${AIRFLOW_SERVICES[*]}); the stores restart with down and up"
  alive "$name" && die "$name is already running"
  alive postgres || die "the stack is not up (run scripts/distributed.sh up)"
  # shellcheck disable=SC1090
  source "$SECRETS"
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  DEADLINE=$((SECONDS + START_TIMEOUT))
  case "$name" in
    mlflow)
      start_mlflow
      wait_for mlflow "GET /health" curl -fsS --max-time 2 "http://127.0.0.1:$MLFLOW_PORT/health" ;;
    worker)
      launch_airflow worker
      wait_for worker "Celery worker ready" grep -q "mlops-worker@.* ready" "$LOGS/worker.log" ;;
    *)
      launch_airflow "$name"
      wait_for "$name" "healthy in /api/v2/monitor/health" api_healthy ;;
  esac
  log "$name started"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kill) kill_service "${2:?usage: $0 kill SERVICE}" ;;
  stop) stop_service "${2:?usage: $0 stop SERVICE}" ;;
  start) start_service "${2:?usage: $0 start SERVICE}" ;;
  *) echo "usage: $0 up|down|status|kill SERVICE|stop SERVICE|start SERVICE" >&2; exit 2 ;;
esac
