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
# The login; a test stack adds users (user:role) to tell who triggers a run from who approves it.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
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
# The model-signing key (mlops.registry.signing): generated once per state directory, readable by its owner
# only, never committed and never sent to MLflow. Rotating it: docs/security.md. A marker beside
# secrets/ records that a key was issued here: a key that goes missing afterwards stops everything
# with the way to restore it, since a new key would leave every signed version and record unusable.
if [ -z "${AIRFLOW_CONN_MLOPS_SIGNING:-}" ]; then
  MLOPS_SIGNING_KEY_FILE="$LOCAL/secrets/model-signing.key"
  MLOPS_SIGNING_MARKER="$LOCAL/model-signing.issued"
  if [ ! -s "$MLOPS_SIGNING_KEY_FILE" ]; then
    if [ -e "$MLOPS_SIGNING_MARKER" ] || [ -s "$LOCAL/mlflow/mlflow.db" ]; then
      cat >&2 <<EOF
error: the model-signing key $MLOPS_SIGNING_KEY_FILE is missing, but a key was issued in this
state directory ($MLOPS_SIGNING_MARKER: $(cat "$MLOPS_SIGNING_MARKER" 2>/dev/null || echo "absent, but $LOCAL/mlflow holds a registry")).
Not generating a new one: every model version and champion move signed with the old key would be refused.
- Restore the key: copy it back to $MLOPS_SIGNING_KEY_FILE (mode 600), or set
  AIRFLOW_CONN_MLOPS_SIGNING to the mlops_signing connection that holds it.
- Only if it is lost for good: write a new key there yourself
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' >"$MLOPS_SIGNING_KEY_FILE"), then re-sign each
  version once its files are known to be good: python -m mlops signing sign --pipeline P --version N --force
EOF
      return 1 2>/dev/null || exit 1
    fi
    mkdir -p "$LOCAL/secrets"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$MLOPS_SIGNING_KEY_FILE")
  fi
  [ -e "$MLOPS_SIGNING_MARKER" ] || date -u +%Y-%m-%dT%H:%M:%SZ >"$MLOPS_SIGNING_MARKER"
  export AIRFLOW_CONN_MLOPS_SIGNING="{\"conn_type\": \"generic\", \"password\": \"$(cat "$MLOPS_SIGNING_KEY_FILE")\"}"
fi
