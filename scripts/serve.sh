#!/usr/bin/env bash
# Serve a pipeline's champion over HTTP, in the foreground (Ctrl-C stops it):
#   scripts/serve.sh            # or: make serve [PIPELINE=churn] [SERVE_PORT=5001] [SERVE_WORKERS=1]
# The package's serving service (python -m mlops serve, docs/serving.md) on the embedded stack's
# registry (the mlflow_default connection, http://127.0.0.1:$MLFLOW_PORT) and lake. It serves the
# champion of the registry's signed history, verified against its signature before it is loaded,
# and follows it: a promotion or a rollback is in force within serving.poll_seconds, no restart.
#   curl -s http://127.0.0.1:5001/ready
#   curl -s http://127.0.0.1:5001/churn/predict -H 'Content-Type: application/json' \
#     -d '{"records": [{"tenure_months": 12, "plan": "basic", ...}]}'
#   curl -s http://127.0.0.1:5001/metrics
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PIPELINE="${PIPELINE:-churn}"
SERVE_PORT="${SERVE_PORT:-5001}"
SERVE_WORKERS="${SERVE_WORKERS:-1}"
MLFLOW_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$MLFLOW_PORT}"

die() {
  echo "error: $*" >&2
  exit 1
}

[[ "$PIPELINE" =~ ^[a-z][a-z0-9_]*$ ]] || die "PIPELINE must be a pipeline name, got '$PIPELINE'"
[[ "$SERVE_PORT" =~ ^[0-9]+$ ]] && [ "$SERVE_PORT" -ge 1 ] && [ "$SERVE_PORT" -le 65535 ] ||
  die "SERVE_PORT must be a port number, got '$SERVE_PORT'"
[[ "$SERVE_WORKERS" =~ ^[1-9][0-9]*$ ]] || die "SERVE_WORKERS must be a number of processes, got '$SERVE_WORKERS'"

case "$MLFLOW_URI" in
  http://* | https://*)
    curl -fsS --max-time 5 "${MLFLOW_URI%/}/health" >/dev/null 2>&1 ||
      die "the MLflow tracking server at $MLFLOW_URI does not answer (start the stack: make run)" ;;
esac

if (echo >"/dev/tcp/127.0.0.1/$SERVE_PORT") 2>/dev/null; then
  die "port $SERVE_PORT is taken by another program; free it or set SERVE_PORT"
fi

# Not fatal: the service starts anyway, answers 503 (and /ready says why) until a champion is promoted.
rc=0
python -m mlops registry champion "$PIPELINE" >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] && echo "note: $PIPELINE has no champion yet (run ${PIPELINE}_train): the service answers 503 until one is promoted" >&2

exec python -m mlops serve --pipeline "$PIPELINE" --host 127.0.0.1 --port "$SERVE_PORT" --workers "$SERVE_WORKERS"
