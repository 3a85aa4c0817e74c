"""The model-signing key, read through Airflow's secrets backend (never from MLflow).

The key is the password of the ``mlops_signing`` connection: an ``AIRFLOW_CONN_MLOPS_SIGNING``
environment variable, the metadata database, or any secrets backend the deployment configures.
"""

from __future__ import annotations

from mlops.signing import SigningKey

SIGNING_CONN_ID = "mlops_signing"


def signing_key(conn_id: str = SIGNING_CONN_ID) -> SigningKey:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ValueError(
            f"no connection {conn_id!r}: models are signed and verified with the key in its password "
            f"(set AIRFLOW_CONN_{conn_id.upper()} or add it in Admin > Connections)"
        ) from None
    return SigningKey.from_text(conn.password or "", source=f"connection {conn_id!r} (its password)")
