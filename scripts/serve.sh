#!/usr/bin/env bash
# Serve a pipeline's champion model over HTTP, in the foreground (Ctrl-C stops it):
#   scripts/serve.sh            # or: make serve [PIPELINE=churn] [SERVE_PORT=5001]
# `mlflow models serve` on models:/<pipeline>@champion from the embedded stack's registry
# (MLFLOW_TRACKING_URI, default http://127.0.0.1:$MLFLOW_PORT), in this venv (--env-manager local).
#   curl -s http://127.0.0.1:5001/ping
#   curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \
#     -d '{"dataframe_split": {"columns": ["tenure_months", ...], "data": [[12, ...]]}}'
# Numeric and boolean features as numbers (booleans 0/1), categories as strings, missing as null.
# The champion is resolved once, at start: restart to serve a newly promoted one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PIPELINE="${PIPELINE:-churn}"
SERVE_PORT="${SERVE_PORT:-5001}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$MLFLOW_PORT}"
MODEL_URI="models:/$PIPELINE@champion"

die() {
  echo "error: $*" >&2
  exit 1
}

[[ "$PIPELINE" =~ ^[a-z][a-z0-9_]*$ ]] || die "PIPELINE must be a pipeline name, got '$PIPELINE'"
[[ "$SERVE_PORT" =~ ^[0-9]+$ ]] && [ "$SERVE_PORT" -ge 1 ] && [ "$SERVE_PORT" -le 65535 ] ||
  die "SERVE_PORT must be a port number, got '$SERVE_PORT'"

case "$MLFLOW_TRACKING_URI" in
  http://* | https://*)
    base="${MLFLOW_TRACKING_URI%/}"
    auth=()  # the credentials MLflow's client would send, for a server that asks for them
    [ -z "${MLFLOW_TRACKING_TOKEN:-}" ] || auth=(-H "Authorization: Bearer $MLFLOW_TRACKING_TOKEN")
    [ -z "${MLFLOW_TRACKING_USERNAME:-}" ] ||
      auth=(-u "$MLFLOW_TRACKING_USERNAME:${MLFLOW_TRACKING_PASSWORD:-}")
    curl -fsS --max-time 5 "$base/health" >/dev/null 2>&1 ||
      die "the MLflow tracking server at $base does not answer (start the stack: make run)"
    # 200 when the alias exists; no registered model is RESOURCE_DOES_NOT_EXIST (404), a model
    # without the alias INVALID_PARAMETER_VALUE "... alias champion not found." (400).
    body=$(curl -sS --max-time 10 "${auth[@]}" -w '\n%{http_code}' -G \
      --data-urlencode "name=$PIPELINE" --data-urlencode "alias=champion" \
      "$base/api/2.0/mlflow/registered-models/alias" 2>&1) || true
    code="${body##*$'\n'}"
    if [ "$code" != 200 ]; then
      case "$body" in
        *RESOURCE_DOES_NOT_EXIST* | *"not found"*)
          die "no champion yet: run ${PIPELINE}_train first ($MODEL_URI not found in $base)" ;;
        *) die "could not look up $MODEL_URI in $base (HTTP $code): ${body%$'\n'*}" ;;
      esac
    fi
    ;;
  *)
    # A local store (sqlite:, file:): ask through MLflow's client (exit 3: no such alias).
    rc=0
    python - "$PIPELINE" <<'PY' || rc=$?
import sys

from mlflow import MlflowClient

from mlops.registry import CHAMPION, alias_version

sys.exit(0 if alias_version(MlflowClient(), sys.argv[1], CHAMPION) else 3)
PY
    case "$rc" in
      0) ;;
      3) die "no champion yet: run ${PIPELINE}_train first ($MODEL_URI not found in $MLFLOW_TRACKING_URI)" ;;
      *) die "could not look up $MODEL_URI in $MLFLOW_TRACKING_URI (see the error above)" ;;
    esac
    ;;
esac

if (echo >"/dev/tcp/127.0.0.1/$SERVE_PORT") 2>/dev/null; then
  die "port $SERVE_PORT is taken by another program; free it or set SERVE_PORT"
fi

echo "Serving $MODEL_URI from $MLFLOW_TRACKING_URI on http://127.0.0.1:$SERVE_PORT (Ctrl-C stops it)"
# PYTHONPATH (from env.sh) has plugins/, so the model's mlops code resolves; the model also ships
# its own copy (code_paths). --port is explicit: the CLI would otherwise read MLFLOW_PORT.
exec mlflow models serve -m "$MODEL_URI" --env-manager local --host 127.0.0.1 --port "$SERVE_PORT"
