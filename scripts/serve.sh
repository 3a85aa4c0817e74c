#!/usr/bin/env bash
# Serve a pipeline's champion model over HTTP, in the foreground (Ctrl-C stops it):
#   scripts/serve.sh            # or: make serve [PIPELINE=churn] [SERVE_PORT=5001]
# `mlflow models serve` on models:/<pipeline>@champion from the embedded stack's registry
# (MLFLOW_TRACKING_URI, default http://127.0.0.1:$MLFLOW_PORT), in this venv (--env-manager local),
# from a copy of the version verified against its signature (python -m mlops signing fetch).
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
    curl -fsS --max-time 5 "${MLFLOW_TRACKING_URI%/}/health" >/dev/null 2>&1 ||
      die "the MLflow tracking server at $MLFLOW_TRACKING_URI does not answer (start the stack: make run)" ;;
esac
# The registry's own lookup (mlops.registry.champion) through the mlflow_default connection and its credentials.
rc=0
VERSION=$(python -m mlops registry champion "$PIPELINE") || rc=$?
case "$rc" in
  0) MODEL_URI="models:/$PIPELINE/$VERSION" ;;  # the version resolved now, not the moving alias
  3) die "no champion yet: run ${PIPELINE}_train first ($MODEL_URI not found in $MLFLOW_TRACKING_URI)" ;;
  *) die "could not look up $MODEL_URI in $MLFLOW_TRACKING_URI (see the error above)" ;;
esac

if (echo >"/dev/tcp/127.0.0.1/$SERVE_PORT") 2>/dev/null; then
  die "port $SERVE_PORT is taken by another program; free it or set SERVE_PORT"
fi

# Verified before anything is unpickled: the version's files are downloaded and checked against
# their signature (key: the mlops_signing connection), and the server loads that checked copy.
MODEL_DIR="$LOCAL/serve/$PIPELINE-v$VERSION"
rm -rf "$MODEL_DIR" && mkdir -p "$MODEL_DIR"
MODEL_PATH=$(python -m mlops signing fetch --pipeline "$PIPELINE" --version "$VERSION" --dest "$MODEL_DIR") ||
  die "refusing to serve $MODEL_URI: it does not verify (see the error above)"

echo "Serving $MODEL_URI from $MLFLOW_TRACKING_URI on http://127.0.0.1:$SERVE_PORT (Ctrl-C stops it)"
# PYTHONPATH (from env.sh) has plugins/, so the model's mlops code resolves; the model also ships
# its own copy (code_paths). --port is explicit: the CLI would otherwise read MLFLOW_PORT.
exec mlflow models serve -m "$MODEL_PATH" --env-manager local --host 127.0.0.1 --port "$SERVE_PORT"
