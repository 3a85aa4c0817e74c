#!/usr/bin/env bash
# MLflow's role and database beside Airflow's, on the one PostgreSQL server of docker-compose.yaml.
# The postgres image runs this once, when it initialises an empty data volume: a change here needs a
# fresh volume (`docker compose down -v`, which deletes the data) or the same statements run with psql.
# \getenv keeps the password off psql's command line; :"name" and :'value' quote what they insert.
set -e
: "${MLFLOW_DB_NAME:?}" "${MLFLOW_DB_USER:?}" "${MLFLOW_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv mlflow_db MLFLOW_DB_NAME
\getenv mlflow_user MLFLOW_DB_USER
\getenv mlflow_password MLFLOW_DB_PASSWORD
CREATE ROLE :"mlflow_user" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE :"mlflow_db" OWNER :"mlflow_user";
SQL
