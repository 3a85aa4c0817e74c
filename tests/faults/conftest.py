"""Real servers behind a fault proxy, and writers in processes of their own that a test can kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The distributed suite's clients, on whichever ``stack`` a test module here provides.
from tests.distributed.conftest import mlflow_client, s3  # noqa: F401
from tests.embedded_stack import free_port
from tests.faults.fault_proxy import FaultProxy, forward

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUCKET = "faults-lake"


def aws_connection(endpoint: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )


@dataclass
class S3Behind:
    """A moto S3 server (state kept) reached through ``proxy``; ``direct`` bypasses the proxy."""

    proxy: FaultProxy
    direct: str

    @property
    def root(self) -> str:
        return f"s3://{BUCKET}/lake"


@pytest.fixture(scope="module")
def s3_behind_proxy(start_moto) -> Iterator[S3Behind]:
    import boto3

    with start_moto() as endpoint:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        proxy = FaultProxy(upstream=endpoint, port=free_port()).start()
        # The test process reads through the proxy too, as ``aws_default``: what a task would see.
        saved = os.environ.get("AIRFLOW_CONN_AWS_DEFAULT")
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(proxy.url)
        try:
            yield S3Behind(proxy=proxy, direct=endpoint)
        finally:
            proxy.stop()
            if saved is None:
                os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)
            else:
                os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = saved


@pytest.fixture
def healthy_proxy(s3_behind_proxy: S3Behind) -> Iterator[S3Behind]:
    """The proxy forwarding everything at the start and the end of the test, whatever it did."""
    proxy = s3_behind_proxy.proxy
    proxy.policy, proxy.seen[:] = forward, []
    if proxy._server is None:
        proxy.start()
    yield s3_behind_proxy
    proxy.policy = forward
    if proxy._server is None:
        proxy.start()


def start_writer(
    root: str, directory: str, tag: str, files: int, commits: int = 1, *, step: bool = False
) -> subprocess.Popen[str]:
    """``lake_writer.py`` in a process of its own, with ``aws_default`` as the test process has it;
    ``step``: it waits for a line on its stdin after each write."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    env["LAKE_WRITER_STEP"] = "1" if step else "0"
    return subprocess.Popen(
        [sys.executable, str(HERE / "lake_writer.py"), root, directory, tag, str(files), str(commits)],
        env=env,
        stdin=subprocess.PIPE if step else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
