"""The model-signing key, read through Airflow's secrets backend (never from MLflow).

The key is the password of the ``mlops_signing`` connection: an ``AIRFLOW_CONN_MLOPS_SIGNING``
environment variable, the metadata database, or any secrets backend the deployment configures.
"""

from __future__ import annotations

from mlops.registry.signing import SigningKey

SIGNING_CONN_ID = "mlops_signing"


def signing_key(conn_id: str = SIGNING_CONN_ID) -> SigningKey:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ValueError(
            f"no connection {conn_id!r}: models and champion moves are signed and verified with the "
            f"key in its password (set AIRFLOW_CONN_{conn_id.upper()} or add it in Admin > "
            f"Connections). If this deployment had a key, restore that one: a new key leaves every "
            f"signed version and move refused (docs/security.md)"
        ) from None
    return SigningKey.from_text(conn.password or "", source=f"connection {conn_id!r} (its password)")
