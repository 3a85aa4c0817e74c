# Environment of the embedded stack, sourced by scripts/stack.sh and the Makefile's targets.
# Scaling out changes these values (see docker-compose.yaml), never the code.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="${MLOPS_LOCAL_DIR:-$ROOT/.local}"
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONPATH="$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$LOCAL/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${MLOPS_DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
# Sized for a small machine: two cores, a few tasks at a time.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG="${AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG:-4}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${AIRFLOW_PORT:-8080}/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
# Every server of the stack listens on the loopback only (tests/listening.py checks it).
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
export MLFLOW_PORT="${MLFLOW_PORT:-5000}"
export MLOPS_LAKE_ROOT="${MLOPS_LAKE_ROOT:-$LOCAL/lake}"
export MLOPS_LANDING_ROOT="${MLOPS_LANDING_ROOT:-$LOCAL/landing}"
export AIRFLOW_CONN_MLFLOW_DEFAULT="${AIRFLOW_CONN_MLFLOW_DEFAULT:-{\"conn_type\": \"http\", \"host\": \"http://127.0.0.1:$MLFLOW_PORT\"\}}"
# aws_default only when S3 is configured: set MLOPS_S3_ENDPOINT (and the keys) to use one.
if [ -n "${MLOPS_S3_ENDPOINT:-}" ]; then
  export AIRFLOW_CONN_AWS_DEFAULT="{\"conn_type\": \"aws\", \"login\": \"${AWS_ACCESS_KEY_ID:-}\", \"password\": \"${AWS_SECRET_ACCESS_KEY:-}\", \"extra\": {\"endpoint_url\": \"$MLOPS_S3_ENDPOINT\", \"region_name\": \"${AWS_DEFAULT_REGION:-us-east-1}\"}}"
fi
# The model-signing key (mlops.signing): generated once per state directory, readable by its owner
# only, never committed and never sent to MLflow. Rotating it: README, "Security".
if [ -z "${AIRFLOW_CONN_MLOPS_SIGNING:-}" ]; then
  MLOPS_SIGNING_KEY_FILE="$LOCAL/secrets/model-signing.key"
  if [ ! -s "$MLOPS_SIGNING_KEY_FILE" ]; then
    mkdir -p "$LOCAL/secrets"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$MLOPS_SIGNING_KEY_FILE")
  fi
  export AIRFLOW_CONN_MLOPS_SIGNING="{\"conn_type\": \"generic\", \"password\": \"$(cat "$MLOPS_SIGNING_KEY_FILE")\"}"
fi
