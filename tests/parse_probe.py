"""Parse the DAG folder in a fresh interpreter and report what parsing touched, as JSON.

Run by the DAG integrity test: database statements, connection lookups, network connects and
heavy modules imported while the DAG files load. Counting starts after Airflow itself is loaded.
"""

from __future__ import annotations

import json
import socket
import sys

HEAVY = ("pandas", "numpy", "great_expectations", "xgboost", "mlflow", "sklearn", "scipy", "boto3", "pyarrow")


def main() -> None:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.connection import Connection
    from airflow.sdk import BaseHook
    from sqlalchemy import event

    before = {m for m in sys.modules if m.split(".")[0] in HEAVY}
    touched: dict[str, list[str]] = {"queries": [], "connections": [], "network": []}

    if settings.engine is not None:
        event.listen(
            settings.engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_a: touched["queries"].append(statement[:80]),
        )

    def lookup(conn_id: str, *_a, **_k):
        touched["connections"].append(conn_id)
        raise RuntimeError("connection lookup during parsing")

    Connection.get_connection_from_secrets = classmethod(lambda cls, conn_id: lookup(conn_id))
    BaseHook.get_connection = classmethod(lambda cls, conn_id: lookup(conn_id))
    real_connect = socket.socket.connect

    def connect(self, address):
        touched["network"].append(str(address))
        return real_connect(self, address)

    socket.socket.connect = connect

    bag = DagBag(dag_folder=settings.DAGS_FOLDER)
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY and m not in before)
    print(
        json.dumps(
            {
                **touched,
                "heavy": sorted({m.split(".")[0] for m in heavy}),
                "heavy_before": sorted({m.split(".")[0] for m in before}),
                "dags": sorted(bag.dags),
                "errors": {k: str(v) for k, v in bag.import_errors.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
